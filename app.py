"""The browser UI (gradio Blocks), and nothing else: layout, and thin callbacks that hand each
message to the session's `ChatSession` (assistant/session.py) and show what comes back.

`python app.py [--model DIR] [--port N] [--host ADDR]`. Private by default: binds 127.0.0.1,
no share link, no analytics. The model loads once per process (under `gr.NO_RELOAD`);
`build_demo(engine, settings)` builds the page for any loaded engine (tests use it).
"""

from __future__ import annotations

import argparse
import time

import gradio as gr

from assistant import config, embedded
from assistant.engine import Engine
from assistant.errors import AssistantError
from assistant.session import ChatSession, Exchange

REFRESH = 0.05  # seconds between screen updates while an answer streams
NOTICE_STYLE = ("background:#fff4ce;border:1px solid #e0b400;border-radius:8px;"
                "padding:10px 14px;color:#4a3b00")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Chat with a vision-language model in the browser.")
    config.add_arguments(parser)
    parser.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, help="port to serve on (default 7860)")
    return parser.parse_args(argv)


def warning(error: Exception) -> dict:
    return {"role": "assistant", "content": f"⚠️ {error}"}


def user_messages(exchange: Exchange) -> list[dict]:
    """The user's turn as shown: each image, then its handle line and the text."""
    shown = [{"role": "user", "content": {"path": u.path, "alt_text": f"{u.handle} {u.name}"}}
             for u in exchange.uploads]
    lines = ["  ".join(f"**{u.handle}** `{u.name}`" for u in exchange.uploads),
             exchange.user.text]
    shown.append({"role": "user", "content": "\n\n".join(line for line in lines if line)})
    return shown


def usage_line(exchange: Exchange) -> str:
    u = exchange.usage
    return (f"Last answer: {u.completion_tokens} tokens in {u.seconds:.1f} s "
            f"({u.tokens_per_second:.1f} tok/s); prompt {u.prompt_tokens} tokens, "
            f"{u.image_tokens} of them for images; finished: {u.finish_reason}.")


def build_demo(engine: Engine, settings: config.Settings) -> gr.Blocks:
    """The page for one loaded engine; every browser session gets its own ChatSession."""

    def respond(message: dict | None, session: ChatSession | None, history: list):
        session = session or ChatSession(engine, settings)
        message = message or {}
        try:
            exchange = session.send(message.get("text", ""), message.get("files", []))
        except AssistantError as e:  # nothing was sent: keep the input so it can be fixed
            history = [*history, warning(e)]
            yield history, gr.MultimodalTextbox(value=message), session, history, ""
            return
        history = [*history, *user_messages(exchange)]
        if exchange.notice:
            history.append({"role": "assistant", "content": exchange.notice,
                            "metadata": {"title": "Context trimmed"}})
        answer = {"role": "assistant", "content": ""}
        history.append(answer)
        locked = gr.MultimodalTextbox(value=None, interactive=False)
        yield history, locked, session, history, "Answering…"
        shown = time.monotonic()
        try:
            for _ in exchange:  # refresh at most every REFRESH s: a slow page must not lag behind
                if exchange.discarded:  # Clear was pressed: show the empty chat, not this one
                    break
                if time.monotonic() - shown >= REFRESH:
                    answer["content"] = exchange.text
                    yield history, locked, session, history, "Answering…"
                    shown = time.monotonic()
        except AssistantError as e:
            history[-1] = warning(e)
            yield history, gr.MultimodalTextbox(interactive=True), session, history, ""
            return
        if exchange.discarded:
            yield [], gr.MultimodalTextbox(interactive=True), session, [], ""
            return
        answer["content"] = exchange.text
        if exchange.cancelled:
            answer["content"] = exchange.text + " *(stopped)*"
        elif not exchange.text:
            answer["content"] = "*(the model returned an empty answer)*"
        yield history, gr.MultimodalTextbox(interactive=True), session, history, usage_line(exchange)

    def stop(session: ChatSession | None) -> None:
        if session is not None:
            session.stop()

    def clear(session: ChatSession | None):
        if session is not None:
            session.clear()
        return [], gr.MultimodalTextbox(value=None, interactive=True), session, [], ""

    with gr.Blocks(title="Multimodal assistant", analytics_enabled=False) as demo:
        gr.Markdown(f"## Multimodal assistant\nModel: `{engine.name}` · device: "
                    f"{engine.loaded.device} · quantization: {engine.loaded.quant}")
        if embedded.is_embedded(settings):
            gr.HTML(f'<div style="{NOTICE_STYLE}">⚠️ {embedded.NOTICE}</div>')
        chatbot = gr.Chatbot(label="Chat", height=470, buttons=["copy"],
                             group_consecutive_messages=False)
        box = gr.MultimodalTextbox(
            file_types=["image"], file_count="multiple", show_label=False, sources=["upload"],
            placeholder="Ask about an image: attach one or more (they become #1, #2, ...)")
        with gr.Row(equal_height=True):
            stop_btn = gr.Button("Stop", variant="stop", size="sm", scale=0, min_width=90)
            clear_btn = gr.Button("Clear", size="sm", scale=0, min_width=90)
            status = gr.Markdown()
        session = gr.State(None)  # a ChatSession, created on this session's first message
        history = gr.State([])  # the messages as shown

        box.submit(respond, [box, session, history], [chatbot, box, session, history, status],
                   api_name="chat")
        stop_btn.click(stop, [session], None, api_name="stop", queue=False)
        clear_btn.click(clear, [session], [chatbot, box, session, history, status],
                        api_name="clear")
    return demo


if gr.NO_RELOAD:  # once per process, also under `gradio app.py` hot reload
    SETTINGS = config.from_args(parse_args())  # --host/--port land in Settings.host/.port
    ENGINE = Engine.load(SETTINGS)
demo = build_demo(ENGINE, SETTINGS)

if __name__ == "__main__":
    demo.queue().launch(server_name=SETTINGS.host, server_port=SETTINGS.port,
                        share=SETTINGS.share)
