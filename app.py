"""The browser UI (gradio Blocks), and nothing else: layout, and thin callbacks that hand each
message to the session's `ChatSession` (assistant/session.py) and show what comes back.

`python app.py [--model DIR] [--port N] [--host ADDR]`. Private by default: binds 127.0.0.1,
no share link, no analytics. The model loads once per process (under `gr.NO_RELOAD`);
`build_demo(engine, settings)` builds the page for any loaded engine (tests use it).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import gradio as gr

from assistant import config, embedded
from assistant.agent import Delta, Final, Note, Step, for_settings
from assistant.engine import Engine
from assistant.errors import AssistantError
from assistant.session import AgentExchange, ChatSession, Exchange
from tools.registry import build

REFRESH = 0.05  # seconds between screen updates while an answer streams
NOTICE_STYLE = ("background:#fff4ce;border:1px solid #e0b400;border-radius:8px;"
                "padding:10px 14px;color:#4a3b00")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Chat with a vision-language model in the browser.")
    config.add_arguments(parser)
    parser.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, help="port to serve on (default 7860)")
    parser.add_argument("--agent", action=argparse.BooleanOptionalAction, default=True,
                        help="start chats with tools on: the model may call them (default)")
    config.add_tool_arguments(parser)
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


def usage_line(exchange: Exchange | AgentExchange) -> str:
    if isinstance(exchange, AgentExchange):
        calls = ", ".join(s.tool for s in exchange.steps) or "none"
        return (f"Last answer: {len(exchange.steps)} tool call(s) ({calls}) in "
                f"{time.monotonic() - exchange.started:.1f} s; finished: "
                f"{'cancelled' if exchange.cancelled else 'done'}.")
    u = exchange.usage
    return (f"Last answer: {u.completion_tokens} tokens in {u.seconds:.1f} s "
            f"({u.tokens_per_second:.1f} tok/s); prompt {u.prompt_tokens} tokens, "
            f"{u.image_tokens} of them for images; finished: {u.finish_reason}.")


def step_title(step: Step) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in step.arguments.items())
    return f"Tool: {step.tool}({args})"


def step_message(step: Step) -> dict:
    """A tool step as a collapsible message: pending while it runs, then its observation."""
    if step.status == "running":
        return {"role": "assistant", "content": "running…",
                "metadata": {"title": step_title(step), "status": "pending"}}
    title = step_title(step) + (" — failed" if step.status == "error" else "")
    return {"role": "assistant", "content": step.observation or "(no output)",
            "metadata": {"title": title, "status": "done", "duration": round(step.seconds, 2)}}


IMAGES = tempfile.mkdtemp(prefix="assistant-images-")  # images the tools make, to show them


def image_messages(exchange: AgentExchange, step: Step) -> list[dict]:
    """Each image a tool made, inline, with its handle and name."""
    out = []
    for handle in step.images:
        ref = exchange.image(handle)
        with tempfile.NamedTemporaryFile(dir=IMAGES, suffix=".png", delete=False) as f:
            ref.image.save(f, format="PNG")
        out += [{"role": "assistant", "content": {"path": f.name, "alt_text": f"{handle} {ref.name}"}},
                {"role": "assistant", "content": f"**{handle}** `{ref.name}`"}]
    return out


def gallery_items(history: list) -> list:
    """(path, caption) of every image shown in the chat so far, in handle order."""
    items = []
    for message in history:
        content = message.get("content")
        if isinstance(content, dict) and content.get("path"):
            items.append((content["path"], content.get("alt_text", "")))
    return items


def build_demo(engine: Engine, settings: config.Settings, registry=None,
               agent_on: bool = True) -> gr.Blocks:
    """The page for one loaded engine; every browser session gets its own ChatSession. With a
    tool `registry`, answers may go through the agent (a switch on the page, `agent_on` at
    first)."""
    agent = for_settings(engine, registry, settings) if registry is not None else None

    def respond(message: dict | None, use_tools: bool, session: ChatSession | None,
                history: list):
        session = session or ChatSession(engine, settings, agent=agent)
        session.use_agent = bool(use_tools) and agent is not None
        message = message or {}
        try:
            exchange = session.send(message.get("text", ""), message.get("files", []))
        except AssistantError as e:  # nothing was sent: keep the input so it can be fixed
            history = [*history, warning(e)]
            yield history, gr.MultimodalTextbox(value=message), session, history, "", \
                gallery_items(history)
            return
        history = [*history, *user_messages(exchange)]
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
                    answer = show_step(history, answer, exchange, event)
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
            history[-1] = warning(e)
            yield history, gr.MultimodalTextbox(interactive=True), session, history, "", gallery
            return
        if exchange.discarded:
            yield [], gr.MultimodalTextbox(interactive=True), session, [], "", []
            return
        answer["content"] = exchange.text
        if exchange.cancelled:
            answer["content"] = exchange.text + " *(stopped)*"
        elif not exchange.text:
            answer["content"] = "*(the model returned an empty answer)*"
        yield history, gr.MultimodalTextbox(interactive=True), session, history, \
            usage_line(exchange), gallery

    def show_step(history: list, answer: dict, exchange: AgentExchange, step: Step) -> dict:
        """Put the step before the answer being written; a finished step replaces its pending
        message and brings its images. Returns the (new) answer message, kept last."""
        history.pop()  # the answer: it goes back last
        if step.status != "running" and history and \
                history[-1].get("metadata", {}).get("status") == "pending":
            history.pop()
        history.append(step_message(step))
        if step.status != "running":
            history += image_messages(exchange, step)
        answer = {"role": "assistant", "content": ""}
        history.append(answer)
        return answer

    def stop(session: ChatSession | None) -> None:
        if session is not None:
            session.stop()

    def clear(session: ChatSession | None):
        if session is not None:
            session.clear()
        return [], gr.MultimodalTextbox(value=None, interactive=True), session, [], "", []

    with gr.Blocks(title="Multimodal assistant", analytics_enabled=False) as demo:
        gr.Markdown(f"## Multimodal assistant\nModel: `{engine.name}` · device: "
                    f"{engine.loaded.device} · quantization: {engine.loaded.quant}")
        if embedded.is_embedded(settings):
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
                    stop_btn = gr.Button("Stop", variant="stop", size="sm", scale=0,
                                         min_width=90)
                    clear_btn = gr.Button("Clear", size="sm", scale=0, min_width=90)
                    status = gr.Markdown()
            with gr.Column(scale=1, min_width=220):
                use_tools = gr.Checkbox(
                    value=agent_on and agent is not None, interactive=agent is not None,
                    label="Tools (agent)",
                    info=(f"the model may call: {', '.join(registry.names)}" if registry
                          else "no tools in this app"))
                gallery = gr.Gallery(label="Images in this chat", columns=2, height=300,
                                     show_label=True, elem_id="gallery")
        session = gr.State(None)  # a ChatSession, created on this session's first message
        history = gr.State([])  # the messages as shown

        outputs = [chatbot, box, session, history, status, gallery]
        box.submit(respond, [box, use_tools, session, history], outputs, api_name="chat")
        stop_btn.click(stop, [session], None, api_name="stop", queue=False)
        clear_btn.click(clear, [session], outputs, api_name="clear")
    return demo


if gr.NO_RELOAD:  # once per process, also under `gradio app.py` hot reload
    ARGS = parse_args()
    SETTINGS = config.from_args(ARGS)  # --host/--port land in Settings.host/.port
    ENGINE = Engine.load(SETTINGS)
    TOOLS = build(SETTINGS, engine=lambda: ENGINE)  # tools load on first use
demo = build_demo(ENGINE, SETTINGS, TOOLS, agent_on=ARGS.agent)

if __name__ == "__main__":
    demo.queue().launch(server_name=SETTINGS.host, server_port=SETTINGS.port,
                        share=SETTINGS.share)
