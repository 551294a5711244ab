"""The browser UI (gradio Blocks), and nothing else: layout, and thin callbacks that hand each
message to the session's `ChatSession` (assistant/session.py) and show what comes back.

`python app.py [--model DIR] [--quant 4bit] [--port N] [--host ADDR] [--no-agent]`. Private
by default: binds 127.0.0.1, no share link, no analytics. The model loads once per process
(under `gr.NO_RELOAD`); the settings panel can load another for every chat of the app. One
server (`server`, uvicorn) holds the page at / and the OpenAI-compatible API at /v1
(assistant/api.py).
"""

from __future__ import annotations

import argparse
import functools
import html
import sys
import tempfile
import time
import weakref
from pathlib import Path

import gradio as gr
import uvicorn
from fastapi import FastAPI

from assistant import api, config, embedded, examples
from assistant.agent import Delta, Final, Note, Step, for_settings
from assistant.chat_view import (
    IMAGES,
    gallery_items,
    image_messages,
    last_user_block,
    model_line,
    replay,
    step_message,
    usage_line,
    user_messages,
    warning,
)
from assistant.engine import Current, Engine, LoadBusy
from assistant.errors import AssistantError
from assistant.export import from_json, to_json, to_markdown
from assistant.session import AgentExchange, ChatSession, NothingToRedo
from assistant.store import Store
from tools.registry import build

REFRESH = 0.05  # seconds between screen updates while an answer streams
NOTICE_STYLE = ("background:#fff4ce;border:1px solid #e0b400;border-radius:8px;"
                "padding:10px 14px;color:#4a3b00")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Chat with a vision-language model in the browser.")
    config.add_arguments(parser)
    parser.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, help="port to serve on (default 7860)")
    parser.add_argument("--history", help="chat history file (SQLite), or 'off' (default: "
                        "history.sqlite3 in the user data folder)")
    parser.add_argument("--agent", action=argparse.BooleanOptionalAction, default=True,
                        help="start chats with tools on: the model may call them (default)")
    config.add_tool_arguments(parser)
    return parser.parse_args(argv)


def build_demo(current: Current, settings: config.Settings, registry=None,
               agent_on: bool = True, store: Store | None = None,
               notice: str = "") -> gr.Blocks:
    """The page, answering with `current`'s engine; every browser session gets its own
    ChatSession. With a tool `registry`, answers may go through the agent (a switch on the
    page, `agent_on` at first), with the tools the user leaves on. With a `store`, chats are
    saved after every answer and can be reopened, deleted and imported. A `notice` (why the
    model asked for did not load) is shown above the chat."""
    engine = current.engine
    most_tokens = min(4096, max(16, engine.context_tokens - 64))  # room for a question
    sessions: weakref.WeakSet[ChatSession] = weakref.WeakSet()  # this page's open chats
    tool_names = registry.names if registry is not None else []

    @functools.lru_cache(maxsize=16)
    def agent_for(engine: Engine, tools: tuple[str, ...], temperature: float, max_tokens: int):
        return for_settings(engine, registry.only(tools),
                            settings.replace(temperature=temperature, max_new_tokens=max_tokens))

    def configure(session: ChatSession | None, use_tools: bool, tools_on: list[str],
                  temperature: float, max_tokens: int) -> ChatSession:
        """This session as the settings panel says, before each answer."""
        engine = current.engine
        if session is None:
            session = ChatSession(engine, settings, store=store)
            sessions.add(session)
        session.engine = engine  # the chat goes on with a newly loaded model
        temperature, max_tokens = float(temperature), int(max_tokens)
        session.params = engine.default_params(temperature=temperature, max_new_tokens=max_tokens)
        chosen = tuple(n for n in tool_names if n in (tools_on or []))
        session.knobs = {"use_tools": bool(use_tools), "tools_on": list(chosen),
                         "temperature": temperature, "max_tokens": max_tokens}
        session.use_agent = bool(use_tools) and bool(chosen)
        session.agent = agent_for(engine, chosen, temperature, max_tokens) \
            if session.use_agent else None
        return session

    def load_model(source: str, quant: str, progress=gr.Progress()):  # noqa: B008 (gradio's way)
        """Load another model for every chat of this app; on failure the current one stays."""
        source = (source or "").strip()
        what = source or "the embedded default"
        progress(0, desc=f"Loading {what}…")
        try:
            engine = current.load(settings.replace(model=source, quant=quant))
        except LoadBusy as e:
            raise gr.Error(str(e)) from None
        except (AssistantError, ValueError, OSError) as e:
            raise gr.Error(f"Could not load {what}: {e} The current model "
                           f"({current.engine.name}) is still in use.") from None
        agent_for.cache_clear()
        for chat in list(sessions):  # no chat keeps the old model alive
            chat.engine, chat.agent = engine, None
            if chat.current is not None and chat.current.finished:
                chat.current = None  # its finished answer held the old model too
        return model_line(engine), f"Loaded {engine.name}."

    def respond(message: dict | None, use_tools: bool, tools_on: list[str], temperature: float,
                max_tokens: int, session: ChatSession | None, history: list):
        session = configure(session, use_tools, tools_on, temperature, max_tokens)
        message = message or {}
        try:
            exchange = session.send(message.get("text", ""), message.get("files", []))
        except AssistantError as e:  # nothing was sent: keep the input so it can be fixed
            history = [*history, warning(e)]
            yield history, gr.MultimodalTextbox(value=message), session, history, "", \
                gallery_items(history)
            return
        yield from stream_answer(exchange, session, [*history, *user_messages(exchange)],
                                 restore=message)

    def regenerate(use_tools: bool, tools_on: list[str], temperature: float, max_tokens: int,
                   session: ChatSession | None, history: list):
        session = configure(session, use_tools, tools_on, temperature, max_tokens)
        try:
            exchange = session.regenerate()
        except AssistantError as e:
            history = [*history, warning(e)]
            yield history, gr.MultimodalTextbox(), session, history, "", gallery_items(history)
            return
        start = last_user_block(history)
        kept = history[:start]
        kept += [m for m in history[start:] if m["role"] == "user"]  # the message, not its answer
        yield from stream_answer(exchange, session, kept)

    def stream_answer(exchange, session: ChatSession, history: list, restore: dict | None = None):
        """Show the answer as it comes. If it fails, the chat is shown as it was kept: a new
        message that failed leaves the chat and goes back into the box (`restore`)."""
        if exchange.notice:
            history.append({"role": "assistant", "content": exchange.notice,
                            "metadata": {"title": "Context trimmed"}})
        answer = {"role": "assistant", "content": ""}
        history.append(answer)
        locked = gr.MultimodalTextbox(value=None, interactive=False)
        gallery = gallery_items(history)
        yield history, locked, session, history, "Answering…", gallery
        shown = time.monotonic()
        try:
            for event in exchange:  # refresh at most every REFRESH s: a slow page must not lag
                if exchange.discarded:  # Clear was pressed: show the empty chat, not this one
                    break
                if isinstance(event, Step):  # a tool step starts or ends: show it at once
                    answer = show_step(history, exchange, event)
                    gallery = gallery_items(history)
                elif isinstance(event, Note):
                    history.insert(len(history) - 1, {
                        "role": "assistant", "content": event.text,
                        "metadata": {"title": f"Step {event.step}: {event.kind}"}})
                elif not isinstance(event, Delta | Final | str) or \
                        time.monotonic() - shown < REFRESH:
                    continue
                answer["content"] = exchange.text
                yield history, locked, session, history, "Answering…", gallery
                shown = time.monotonic()
        except AssistantError as e:
            if restore is not None:
                history = history[:last_user_block(history)]
            history = [*history[:-1], warning(e)] if restore is None else [*history, warning(e)]
            box = gr.MultimodalTextbox(value=restore, interactive=True)
            yield history, box, session, history, "", gallery_items(history)
            return
        if exchange.discarded:
            yield [], gr.MultimodalTextbox(interactive=True), session, [], "", []
            return
        answer["content"] = exchange.text
        if exchange.cancelled:
            answer["content"] = exchange.text + " *(stopped)*"
        elif not exchange.text:
            answer["content"] = "*(the model returned an empty answer)*"
        status = usage_line(exchange)
        for upload in exchange.uploads:
            if upload.note:
                status += f" ℹ️ {upload.note}"
        if session.store_error is not None:
            status += f" ⚠️ {session.store_error}"
        yield history, gr.MultimodalTextbox(interactive=True), session, history, status, gallery

    def show_step(history: list, exchange: AgentExchange, step: Step) -> dict:
        """Put the step before the answer being written; a finished step replaces its pending
        message and brings its images. Returns the (new) answer message, kept last."""
        history.pop()  # the answer: it goes back last
        if step.status != "running" and history and \
                history[-1].get("metadata", {}).get("status") == "pending":
            history.pop()
        history.append(step_message(step))
        if step.status != "running":
            history += image_messages(exchange.image, step.images)
        answer = {"role": "assistant", "content": ""}
        history.append(answer)
        return answer

    def undo(session: ChatSession | None, history: list, edit: bool = False):
        """Take back the last message and its answer; with `edit`, put it back in the box."""
        try:
            if session is None:
                raise NothingToRedo("undo")
            taken = session.undo()
        except AssistantError as e:
            history = [*history, warning(e)]
            return history, gr.MultimodalTextbox(), session, history, "", gallery_items(history)
        start = last_user_block(history)
        files = [m["content"]["path"] for m in history[start:]
                 if m["role"] == "user" and isinstance(m["content"], dict)]
        history = history[:start]
        box = gr.MultimodalTextbox(value={"text": taken.text, "files": files}) if edit else \
            gr.MultimodalTextbox()
        return history, box, session, history, "", gallery_items(history)

    def stop(session: ChatSession | None) -> None:
        if session is not None:
            session.stop()

    def clear(session: ChatSession | None):
        if session is not None:
            session.clear()
        return [], gr.MultimodalTextbox(value=None, interactive=True), session, [], "", []

    def export(session: ChatSession | None) -> list[str]:
        if session is None or not session.conversation.turns:
            raise gr.Error("Nothing to export yet: the chat is empty.")
        folder = Path(tempfile.mkdtemp(dir=IMAGES, prefix="export-"))
        (folder / "chat.md").write_text(to_markdown(session.conversation), encoding="utf-8")
        (folder / "chat.json").write_text(to_json(session.conversation), encoding="utf-8")
        return [str(folder / "chat.md"), str(folder / "chat.json")]

    def chat_choices() -> gr.Dropdown:
        chats = store.chats() if store is not None else []
        def label(c: dict) -> str:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(c["updated"]))
            return f"{c['title']} · {when} · {c['messages']} messages"

        return gr.Dropdown(choices=[(label(c), c["id"]) for c in chats], value=None)

    def open_chat(chat_id: str | None, session: ChatSession | None):
        if not chat_id:
            raise gr.Error("Choose a chat to open first.")
        session = configure(session, False, [], settings.temperature, settings.max_new_tokens)
        try:
            session.open(chat_id)
        except KeyError:
            raise gr.Error("That chat is no longer in the history.") from None
        except AssistantError as e:
            raise gr.Error(str(e)) from None
        history = replay(session.conversation, session.steps)
        knobs = session.knobs  # the chat's own settings, as it was last answered with
        tools = [n for n in knobs.get("tools_on", tool_names) if n in tool_names]
        tokens = min(int(knobs.get("max_tokens", settings.max_new_tokens)), most_tokens)
        return (history, gr.MultimodalTextbox(value=None, interactive=True), session, history,
                f"Reopened: {len(session.conversation.turns)} messages.", gallery_items(history),
                bool(knobs.get("use_tools", agent_on)) and registry is not None, tools,
                float(knobs.get("temperature", settings.temperature)), tokens)

    def delete_chat(chat_id: str | None, session: ChatSession | None):
        if not chat_id:
            raise gr.Error("Choose a chat to delete first.")
        store.delete(chat_id)
        if session is not None and session.chat_id == chat_id:
            session.clear()
            return [], gr.MultimodalTextbox(value=None), session, [], "Deleted.", []
        return gr.skip(), gr.skip(), session, gr.skip(), "Deleted.", gr.skip()

    def import_chat(path: str | None, session: ChatSession | None):
        if not path:
            raise gr.Error("Choose a chat file (JSON, as Export writes it).")
        try:
            conversation = from_json(Path(path).read_bytes(), settings.max_image_bytes,
                                     settings.max_image_pixels)
            chat_id = store.new_id()
            store.save(chat_id, conversation)
        except AssistantError as e:
            raise gr.Error(str(e)) from None
        return open_chat(chat_id, session)

    def chat_ids() -> list[dict]:
        """The saved chats, latest first (id, title, updated, messages)."""
        return store.chats() if store is not None else []

    with gr.Blocks(title="Multimodal assistant", analytics_enabled=False) as demo:
        gr.Markdown("## Multimodal assistant")
        header = gr.Markdown(model_line(engine), elem_id="model-line")
        if notice:
            gr.HTML(f'<div id="load-error" style="{NOTICE_STYLE}">⚠️ {html.escape(notice)}</div>')
        if embedded.is_embedded(settings) or notice:
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
                    value=agent_on and registry is not None, interactive=registry is not None,
                    label="Tools (agent)", info="the model may call tools, step by step"
                    if registry is not None else "no tools in this app")
                tools_on = gr.CheckboxGroup(tool_names, value=tool_names, label="Tools on",
                                            visible=registry is not None)
                temperature = gr.Slider(0.0, 1.5, value=settings.temperature, step=0.05,
                                        label="Temperature (0: always the likeliest word)")
                max_tokens = gr.Slider(1, most_tokens, step=1, label="Max tokens per answer",
                                       value=min(settings.max_new_tokens, most_tokens))
                with gr.Accordion("Model", open=False):
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
        gr.Examples(examples_messages(), inputs=[box], label="Try one")
        session = gr.State(None)  # a ChatSession, created on this session's first message
        history = gr.State([])  # the messages as shown

        knobs = [use_tools, tools_on, temperature, max_tokens]
        outputs = [chatbot, box, session, history, status, gallery]
        # Answers from different browser sessions run at once, up to the engine's batch size,
        # so that the engine can generate them together; everything else runs one at a time.
        answering = dict(concurrency_id="answer", concurrency_limit=max(1, settings.batch))
        submitted = box.submit(respond, [box, *knobs, session, history], outputs,
                               api_name="chat", **answering)
        buttons["Stop"].click(stop, [session], None, api_name="stop", queue=False)
        regenerated = buttons["Regenerate"].click(regenerate, [*knobs, session, history],
                                                  outputs, api_name="regenerate", **answering)
        undone = buttons["Undo"].click(undo, [session, history], outputs, api_name="undo")
        edited = buttons["Edit last"].click(functools.partial(undo, edit=True),
                                            [session, history], outputs, api_name="edit_last")
        cleared = buttons["Clear"].click(clear, [session], outputs, api_name="clear")
        export_btn.click(export, [session], [exported], api_name="export")
        if store is not None:
            open_btn.click(open_chat, [past, session], [*outputs, *knobs], api_name="open_chat")
            delete_btn.click(delete_chat, [past, session], outputs, api_name="delete_chat") \
                .then(chat_choices, None, past)
            import_btn.upload(import_chat, [import_btn, session], [*outputs, *knobs],
                              api_name="import_chat").then(chat_choices, None, past)
            gr.api(chat_ids, api_name="chats")
            demo.load(chat_choices, None, past)
            for event in (submitted, regenerated, undone, edited, cleared):
                event.then(chat_choices, None, past)
        load_btn.click(load_model, [source, quant], [header, status], api_name="load_model")
    return demo


def examples_messages() -> list[list[dict]]:
    return [[m] for m in examples.messages(Path(IMAGES) / "examples")]


def start_engine(settings: config.Settings) -> tuple[Current, str]:
    """The model asked for; if it cannot load, the embedded default and the reason, shown on
    the page (the Model panel loads another). Without a fallback, the reason and exit."""
    try:
        return Current(Engine.load(settings)), ""
    except AssistantError as e:
        if not (settings.model or settings.remote):
            sys.exit(f"The embedded default model could not load: {e}")
        wanted = settings.remote or settings.model
        reason = (f"{wanted} could not be loaded: {e} The embedded default answers instead; "
                  "load another model in the Model panel.")
        print(reason, file=sys.stderr, flush=True)
        fallback = settings.replace(model="", remote="", quant="auto")
        return Current(Engine.load(fallback)), reason


if gr.NO_RELOAD:  # once per process, also under `gradio app.py` hot reload
    ARGS = parse_args()
    SETTINGS = config.from_args(ARGS)  # --host/--port land in Settings.host/.port
    if SETTINGS.share:
        sys.exit("share links are not offered: the app and its API serve this machine only "
                 "(--host 0.0.0.0 serves your network).")
    print(f"Loading {SETTINGS.model or 'the embedded default model'} (the first start of the "
          "embedded default assembles it in the user cache, about a minute)…",
          file=sys.stderr, flush=True)
    CURRENT, LOAD_ERROR = start_engine(SETTINGS)
    # Tools backed by the chat model (vqa, caption "main") use whichever model is current.
    TOOLS = build(SETTINGS, engine=lambda: CURRENT.engine)
    STORE = None if SETTINGS.history == "off" else Store(SETTINGS.history)
demo = build_demo(CURRENT, SETTINGS, TOOLS, agent_on=ARGS.agent, store=STORE,
                  notice=LOAD_ERROR)
# One event at a time per listener but answers (see build_demo); others wait in the queue,
# and the page shows their place in it.
demo.queue(default_concurrency_limit=1, max_size=64)
# One server: the OpenAI-compatible API under /v1, the browser chat at /.
server = FastAPI(title="multimodal-assistant", docs_url=None, redoc_url=None, openapi_url=None)
api.mount(server, api.Api(CURRENT, TOOLS, SETTINGS))
server = gr.mount_gradio_app(server, demo, path="/")

if __name__ == "__main__":
    print(f"Serving on http://{SETTINGS.host}:{SETTINGS.port} (chat) and "
          f"http://{SETTINGS.host}:{SETTINGS.port}/v1 (API)", file=sys.stderr, flush=True)
    uvicorn.run(server, host=SETTINGS.host, port=SETTINGS.port, log_level="warning",
                timeout_graceful_shutdown=3)  # open page connections do not hold a stop
