"""How a chat is shown: the messages (as gradio's Chatbot takes them: role, content, metadata)
for a user's turn, a tool step, the images a tool made, an error; the gallery; status lines.
Plain dicts and text, no gradio objects: app.py puts them on the page.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable

from assistant.agent import Step
from assistant.agent.trace import call_text
from assistant.conversation import Conversation, ImageRef
from assistant.engine import Engine
from assistant.session import AgentExchange, Exchange


def warning(error: Exception) -> dict:
    return {"role": "assistant", "content": f"⚠️ {error}"}


def user_turn(pictures: list[tuple[str, str, str]], text: str) -> list[dict]:
    """A user's turn as shown: each picture (path, handle, name), then its handle line and
    the text."""
    shown = [{"role": "user", "content": {"path": path, "alt_text": f"{handle} {name}"}}
             for path, handle, name in pictures]
    lines = ["  ".join(f"**{handle}** `{name}`" for _, handle, name in pictures), text]
    shown.append({"role": "user", "content": "\n\n".join(line for line in lines if line)})
    return shown


def user_messages(exchange: Exchange) -> list[dict]:
    """The user's message just sent, its uploads shown from where they lie (a PDF's pages as
    the pictures they became)."""
    return user_turn([(shown_file(exchange.image(u.handle)) if u.page is not None else u.path,
                       u.handle, u.name) for u in exchange.uploads], exchange.user.text)


def usage_line(exchange: Exchange | AgentExchange) -> str:
    if isinstance(exchange, AgentExchange):
        calls = ", ".join(s.tool for s in exchange.steps) or "none"
        return (f"Last answer: {len(exchange.steps)} tool call(s) ({calls}) in "
                f"{exchange.seconds:.1f} s; finished: "
                f"{'cancelled' if exchange.cancelled else 'done'}.")
    u = exchange.usage
    return (f"Last answer: {u.completion_tokens} tokens in {u.seconds:.1f} s "
            f"({u.tokens_per_second:.1f} tok/s); prompt {u.prompt_tokens} tokens, "
            f"{u.image_tokens} of them for images; finished: {u.finish_reason}.")


def step_title(step: Step) -> str:
    return f"Tool: {call_text(step.tool, step.arguments)}"


def step_message(step: Step) -> dict:
    """A tool step as a collapsible message: pending while it runs, then its observation."""
    if step.status == "running":
        return {"role": "assistant", "content": "running…",
                "metadata": {"title": step_title(step), "status": "pending"}}
    title = step_title(step) + (" — failed" if step.status == "error" else "")
    return {"role": "assistant", "content": step.observation or "(no output)",
            "metadata": {"title": title, "status": "done", "duration": round(step.seconds, 2)}}


IMAGES = tempfile.mkdtemp(prefix="assistant-images-")  # images the tools make, to show them


def shown_file(ref: ImageRef) -> str:
    """A conversation's image written where the page can show it."""
    with tempfile.NamedTemporaryFile(dir=IMAGES, suffix=".png", delete=False) as f:
        ref.image.save(f, format="PNG")
    return f.name


def image_messages(lookup: Callable[[str], ImageRef], handles: list[str]) -> list[dict]:
    """Each image a tool made, inline, with its handle and name."""
    out = []
    for handle in handles:
        ref = lookup(handle)
        out += [{"role": "assistant", "content": {"path": shown_file(ref),
                                                "alt_text": f"{handle} {ref.name}"}},
                {"role": "assistant", "content": f"**{handle}** `{ref.name}`"}]
    return out


def replay(conversation: Conversation, steps: list[list[dict]]) -> list[dict]:
    """A saved chat as it was shown: pictures, messages, tool steps and their images."""
    out: list[dict] = []
    for i, turn in enumerate(conversation.turns):
        if turn.role == "user":
            refs = [conversation.image(h) for h in turn.images]
            out += user_turn([(shown_file(r), r.handle, r.name) for r in refs], turn.text)
            continue
        for record in steps[i] if i < len(steps) else []:
            step = Step(**record)
            out += [step_message(step), *image_messages(conversation.image, step.images)]
        out.append({"role": "assistant", "content": turn.text})
    return out


def gallery_items(history: list) -> list:
    """(path, caption) of every image shown in the chat so far, in handle order."""
    items = []
    for message in history:
        content = message.get("content")
        if isinstance(content, dict) and content.get("path"):
            items.append((content["path"], content.get("alt_text", "")))
    return items


def last_user_block(history: list) -> int:
    """Where the last user message begins in the shown history (len(history) if none)."""
    i = len(history)
    while i > 0 and history[i - 1]["role"] != "user":
        i -= 1
    while i > 0 and history[i - 1]["role"] == "user":
        i -= 1
    return i if any(m["role"] == "user" for m in history[i:]) else len(history)


def model_line(engine: Engine) -> str:
    return (f"Model: `{engine.name}` · device: {engine.device} · quantization: "
            f"{engine.quant}")
