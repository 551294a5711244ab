"""The browser page (gradio Blocks): its layout, and which event of chat.py, history.py and
models.py each control triggers. No logic of its own.

Private by default: no analytics; the examples' pictures are made once into a folder the page
serves. Answers from different browser sessions run at once, up to the engine's batch size, so
that the engine can generate them together; every other event runs one at a time.
"""

from __future__ import annotations

import html
from pathlib import Path

import gradio as gr

from assistant import config, embedded, examples
from assistant.chat_view import IMAGES, model_line
from assistant.web.chat import ChatEvents
from assistant.web.context import Context
from assistant.web.history import HistoryEvents
from assistant.web.models import ModelEvents

NOTICE_STYLE = ("background:#fff4ce;border:1px solid #e0b400;border-radius:8px;"
                "padding:10px 14px;color:#4a3b00")


def build_page(ctx: Context) -> gr.Blocks:
    chat = ChatEvents(ctx)
    saved = HistoryEvents(ctx, chat)
    models = ModelEvents(ctx, chat)
    settings, registry, store = ctx.settings, ctx.registry, ctx.store
    tool_names = chat.tool_names
    with gr.Blocks(title="Multimodal assistant", analytics_enabled=False) as demo:
        gr.Markdown("## Multimodal assistant")
        header = gr.Markdown(model_line(ctx.current.engine), elem_id="model-line")
        load_error = gr.HTML(notice(ctx.notice), visible=bool(ctx.notice), elem_id="load-error")
        if embedded.is_embedded(settings) or ctx.notice:
            gr.HTML(f'<div style="{NOTICE_STYLE}">⚠️ {embedded.NOTICE}</div>')
        with gr.Row():
            with gr.Column(scale=4):
                chatbot = gr.Chatbot(label="Chat", height=470, buttons=["copy"],
                                     group_consecutive_messages=False)
                box = gr.MultimodalTextbox(
                    file_types=["image"], file_count="multiple", show_label=False,
                    sources=["upload"],
                    placeholder="Ask about an image: attach one or more (they become #1, #2, ...)")
                with gr.Row(equal_height=True):
                    buttons = {name: gr.Button(name, size="sm", scale=0, min_width=90,
                                               variant="stop" if name == "Stop" else "secondary")
                               for name in ("Stop", "Regenerate", "Undo", "Edit last", "Clear")}
                    status = gr.Markdown()
            with gr.Column(scale=1, min_width=240):
                use_tools = gr.Checkbox(
                    value=ctx.agent_on and registry is not None, interactive=registry is not None,
                    label="Tools (agent)", info="the model may call tools, step by step"
                    if registry is not None else "no tools in this app")
                tools_on = gr.CheckboxGroup(tool_names, value=tool_names, label="Tools on",
                                            visible=registry is not None)
                temperature = gr.Slider(0.0, 1.5, value=settings.temperature, step=0.05,
                                        label="Temperature (0: always the likeliest word)")
                max_tokens = gr.Slider(1, chat.most_tokens, step=1,
                                       label="Max tokens per answer",
                                       value=min(settings.max_new_tokens, chat.most_tokens))
                with gr.Accordion("Model", open=False, visible=False) as model_panel:
                    source = gr.Textbox(label="Model: a hub id or a checkpoint directory",
                                        placeholder="empty: the embedded default",
                                        value=settings.model)
                    quant = gr.Radio(list(config.QUANTS), value=settings.quant,
                                     label="Quantization (8bit / 4bit need bitsandbytes)")
                    load_btn = gr.Button("Load model", size="sm")
                gallery = gr.Gallery(label="Images in this chat", columns=2, height=260,
                                     elem_id="gallery")
                with gr.Accordion("History", open=False, visible=store is not None):
                    past = gr.Dropdown(label="Past chats (saved after every answer)",
                                       choices=[], elem_id="past-chats",
                                       allow_custom_value=True)  # chats saved after start
                    with gr.Row():
                        open_btn = gr.Button("Open", size="sm")
                        delete_btn = gr.Button("Delete", size="sm", variant="stop")
                    import_btn = gr.UploadButton("Import a chat (JSON)", size="sm",
                                                 file_types=[".json"], type="filepath")
                export_btn = gr.Button("Export chat (Markdown + JSON)", size="sm")
                exported = gr.File(label="Exported", file_count="multiple", visible=True,
                                   elem_id="exported")
                if ctx.gate.closed:
                    gr.HTML('<a href="/logout">Log out</a>')
        gr.Examples(example_messages(ctx), inputs=[box], label="Try one")
        session = gr.State(None)  # a ChatSession, made on this browser session's first message
        history = gr.State([])  # the messages as shown

        knobs = [use_tools, tools_on, temperature, max_tokens]
        outputs = [chatbot, box, session, history, status, gallery]
        answering = dict(concurrency_id="answer", concurrency_limit=max(1, settings.batch))
        submitted = box.submit(chat.respond, [box, *knobs, session, history], outputs,
                               api_name="chat", **answering)
        buttons["Stop"].click(chat.stop, [session], None, api_name="stop", queue=False)
        regenerated = buttons["Regenerate"].click(chat.regenerate, [*knobs, session, history],
                                                  outputs, api_name="regenerate", **answering)
        undone = buttons["Undo"].click(chat.undo, [session, history], outputs, api_name="undo")
        edited = buttons["Edit last"].click(chat.edit_last, [session, history], outputs,
                                            api_name="edit_last")
        cleared = buttons["Clear"].click(chat.clear, [session], outputs, api_name="clear")
        export_btn.click(chat.export, [session], [exported], api_name="export")
        if store is not None:
            open_btn.click(saved.open_chat, [past, session], [*outputs, *knobs],
                           api_name="open_chat")
            delete_btn.click(saved.delete_chat, [past, session], outputs,
                             api_name="delete_chat").then(saved.choices, None, past)
            import_btn.upload(saved.import_chat, [import_btn, session], [*outputs, *knobs],
                              api_name="import_chat").then(saved.choices, None, past)
            gr.api(saved.chat_ids, api_name="chats")
            demo.load(saved.choices, None, past)
            for event in (submitted, regenerated, undone, edited, cleared):
                event.then(saved.choices, None, past)
        load_btn.click(models.load_model, [source, quant], [header, status, load_error],
                       api_name="load_model")
        demo.load(models.panel, None, model_panel)
    return demo


def notice(text: str) -> str:
    return f'<div style="{NOTICE_STYLE}">⚠️ {html.escape(text)}</div>' if text else ""


def example_messages(ctx: Context) -> list[list[dict]]:
    """The examples' messages; their pictures may be sent back by everyone."""
    messages = examples.messages(Path(IMAGES) / "examples")
    for message in messages:
        for path in message["files"]:
            ctx.uploads.grant(None, path)
    return [[m] for m in messages]
