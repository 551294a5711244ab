"""The browser page (gradio Blocks): its layout, its look on a phone (CSS, HEAD), and which
event of chat.py, history.py and models.py each control triggers. No logic of its own.

Private by default: no analytics; the examples (shown in the empty chat) have pictures made
once into a folder the page serves. Stop can be pressed only while an answer is being
written, the tools' boxes only while Tools is on; the chat pane's trash icon is Clear.
Answers from different browser sessions run at once, up to the engine's batch size, so that
the engine can generate them together; every other event runs one at a time.
"""

from __future__ import annotations

import html
from pathlib import Path

import gradio as gr

from assistant import config, examples
from assistant.chat_view import IMAGES, model_line
from assistant.models import embedded
from assistant.web.chat import ChatEvents
from assistant.web.context import Context
from assistant.web.gate import LOGOUT_FORM
from assistant.web.history import HistoryEvents
from assistant.web.models import ModelEvents

NOTICE_STYLE = ("background:#fff4ce;border:1px solid #e0b400;border-radius:8px;"
                "padding:10px 14px;color:#4a3b00")
# One row of buttons, however narrow the screen; on a phone the chat leaves room for the box.
CSS = """
#actions { flex-wrap: nowrap; gap: 6px; }
#actions > button { flex: 1 1 0; min-width: 0 !important; white-space: nowrap; }
@media (max-width: 640px) {
  #chat { height: 45vh !important; max-height: 45vh; }
  #actions > button { padding: 4px 2px; font-size: 12px; }
}
"""
# A file input keeps the file last chosen, and choosing it again then changes nothing: once
# gradio has read a choice, the input is emptied (the same picture can be attached again).
HEAD = """<script>
document.addEventListener("change", (event) => {
  if (event.target.matches && event.target.matches("input[type=file]"))
    setTimeout(() => { event.target.value = ""; }, 0);
}, true);
</script>"""


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
        if ctx.current.engine.kind == "embedded":
            gr.HTML(f'<details style="{NOTICE_STYLE}"><summary>⚠️ Embedded offline model: '
                    f'simple shapes and colours, little else</summary>{embedded.NOTICE}</details>')
        with gr.Row():
            with gr.Column(scale=4):
                chatbot = gr.Chatbot(label="Chat", height=470, buttons=["copy"],
                                     group_consecutive_messages=False, elem_id="chat",
                                     examples=chat_examples(ctx))
                box = gr.MultimodalTextbox(
                    file_types=["image", ".pdf"], file_count="multiple", show_label=False,
                    sources=["upload"], elem_id="box",
                    placeholder="Ask about an image: attach pictures or PDFs (they become #1, "
                                "#2, ...; a PDF one per page)")
                with gr.Row(elem_id="actions"):
                    buttons = {name: gr.Button(name, size="sm", interactive=name != "Stop",
                                               variant="stop" if name == "Stop" else "secondary")
                               for name in ("Stop", "Regenerate", "Undo", "Edit last", "Clear")}
                status = gr.Markdown()
            with gr.Column(scale=1, min_width=240):
                tools_usable = ctx.agent_on and registry is not None
                use_tools = gr.Checkbox(
                    value=tools_usable, interactive=registry is not None,
                    label="Tools (agent)", info="the model may call tools, step by step"
                    if registry is not None else "no tools in this app")
                tools_on = gr.CheckboxGroup(tool_names, value=tool_names, label="Tools on",
                                            visible=registry is not None,
                                            interactive=tools_usable)
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
                    gr.HTML(LOGOUT_FORM)  # a POST: another site's link cannot log you out
        session = gr.State(None)  # a ChatSession, made on this browser session's first message
        history = gr.State([])  # the messages as shown

        knobs = [use_tools, tools_on, temperature, max_tokens]
        outputs = [chatbot, box, session, history, status, gallery]
        answering = dict(concurrency_id="answer", concurrency_limit=max(1, settings.batch))
        stop = buttons["Stop"]
        # Undo, Edit, Clear and the history's changes run one at a time, in the order they
        # were sent (gradio runs different listeners at once): a Clear then an Undo clicked
        # quickly undo nothing, whichever thread starts first. Each takes milliseconds.
        editing = dict(concurrency_id="edit", concurrency_limit=1)
        page_only = dict(queue=False, api_visibility="private")

        def answer(trigger, fn, inputs, api_name: str):
            """`fn` answers when `trigger` fires, with Stop usable while it runs."""
            event = trigger(chat.busy, None, stop, **page_only) \
                .then(fn, inputs, outputs, api_name=api_name, **answering)
            event.then(chat.idle, None, stop, **page_only)
            return event

        submitted = answer(box.submit, chat.respond, [box, *knobs, session, history], "chat")
        stop.click(chat.stop, [session], None, api_name="stop", queue=False)
        regenerated = answer(buttons["Regenerate"].click, chat.regenerate,
                             [*knobs, session, history], "regenerate")
        undone = buttons["Undo"].click(chat.undo, [session, history], outputs, api_name="undo",
                                       **editing)
        edited = buttons["Edit last"].click(chat.edit_last, [session, history], outputs,
                                            api_name="edit_last", **editing)
        cleared = buttons["Clear"].click(chat.clear, [session], outputs, api_name="clear",
                                         **editing)
        chatbot.clear(chat.clear, [session], outputs, api_visibility="private", **editing)
        chatbot.example_select(chat.example, None, box, **page_only)
        use_tools.change(chat.tools_usable, use_tools, tools_on, **page_only)
        export_btn.click(chat.export, [session], [exported], api_name="export")
        if store is not None:
            open_btn.click(saved.open_chat, [past, session], [*outputs, *knobs],
                           api_name="open_chat", **editing)
            delete_btn.click(saved.delete_chat, [past, session], outputs,
                             api_name="delete_chat", **editing).then(saved.choices, None, past)
            import_btn.upload(saved.import_chat, [import_btn, session], [*outputs, *knobs],
                              api_name="import_chat", **editing).then(saved.choices, None,
                                                                      past)
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


def chat_examples(ctx: Context) -> list[dict]:
    """The examples, shown in the empty chat; everyone may send their pictures."""
    messages = examples.messages(Path(IMAGES) / "examples")
    for message in messages:
        for path in message["files"]:
            ctx.uploads.publish(path)
    return messages
