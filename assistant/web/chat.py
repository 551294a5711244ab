"""The chat's events on the page: send a message and stream its answer (the agent's steps too),
stop, regenerate, undo, edit last, clear, export. Gradio calls each method with the browser
session's state and the request; each answers for the request's user only, in the chat this
browser session holds (a `ChatSession`, made on its first message). The logic of a chat is
assistant/session.py's, how it is shown assistant/chat_view.py's.

An answer holds its share of the server's memory budget (assistant/memory_budget.py) from
before its pictures are decoded until it ends; a message that finds no room within the wait
gets a message saying so and stays in the box.

Every event that changes the chat returns the same outputs, in `page.py`'s order: the chat
shown, the input box, the session, the history as shown, a status line and the gallery.
"""

from __future__ import annotations

import functools
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path

import gradio as gr

from assistant.agent import Delta, Final, Note, Step, for_settings
from assistant.chat_view import (
    IMAGES,
    gallery_items,
    image_messages,
    last_user_block,
    step_message,
    usage_line,
    user_messages,
    warning,
)
from assistant.engine import Engine
from assistant.errors import AssistantError
from assistant.export import to_json, to_markdown
from assistant.memory_budget import Reservation, estimate
from assistant.pixels import request_pixels
from assistant.session import AgentExchange, ChatSession, NothingToRedo
from assistant.web.accounts import User
from assistant.web.context import Context

REFRESH = 0.05  # seconds between screen updates while an answer streams
PAGES_REMEMBERED = 4096  # PDF pages shown whose PDF Edit last can put back, the latest kept


class ChatEvents:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.tool_names = ctx.registry.names if ctx.registry is not None else []
        self.most_tokens = min(4096, max(16, ctx.current.engine.context_tokens - 64))
        self.agent_for = functools.lru_cache(maxsize=16)(self._agent)
        self._pages: OrderedDict[str, str] = OrderedDict()  # a page's picture -> its PDF
        self._pages_lock = threading.Lock()

    def _remember(self, picture: str, document: str) -> None:
        """That `picture` shows a page of the PDF uploaded at `document` (Edit last puts the
        PDF back in the box, not its pages)."""
        with self._pages_lock:
            self._pages[picture] = document
            while len(self._pages) > PAGES_REMEMBERED:
                self._pages.popitem(last=False)

    def _agent(self, engine: Engine, tools: tuple[str, ...], temperature: float,
               max_tokens: int):
        settings = self.ctx.settings.replace(temperature=temperature, max_new_tokens=max_tokens)
        return for_settings(engine, self.ctx.registry.only(tools), settings.agent,
                            settings.generation)

    def configure(self, session: ChatSession | None, user: User, use_tools: bool,
                  tools_on: list[str], temperature: float, max_tokens: int) -> ChatSession:
        """`user`'s chat in this browser session, as the settings panel says, before each
        answer."""
        engine = self.ctx.current.engine
        session = self.ctx.own(session, user)
        if session is None:
            session = ChatSession(engine, self.ctx.settings.limits, store=self.ctx.store,
                                  owner=user.name)
            self.ctx.sessions.add(session)
        session.engine = engine  # the chat goes on with a newly loaded model
        temperature, max_tokens = float(temperature), int(max_tokens)
        session.params = engine.default_params(temperature=temperature, max_new_tokens=max_tokens)
        chosen = tuple(n for n in self.tool_names if n in (tools_on or []))
        session.knobs = {"use_tools": bool(use_tools), "tools_on": list(chosen),
                         "temperature": temperature, "max_tokens": max_tokens}
        session.use_agent = bool(use_tools) and bool(chosen)
        session.agent = self.agent_for(engine, chosen, temperature, max_tokens) \
            if session.use_agent else None
        return session

    def respond(self, message: dict | None, use_tools: bool, tools_on: list[str],
                temperature: float, max_tokens: int, session: ChatSession | None,
                history: list, request: gr.Request):
        user = self.ctx.who(request)
        session = self.configure(session, user, use_tools, tools_on, temperature, max_tokens)
        message = message or {}
        reservation = None
        try:
            files = [self.ctx.uploads.check(user.name, f) for f in message.get("files") or []]
            text = message.get("text", "")
            reservation = self.reserve(session, text, files)
            exchange = session.send(text, files)
        except AssistantError as e:  # nothing was sent: keep the input so it can be fixed
            if reservation is not None:
                reservation.release()
            history = [*history, warning(e)]
            yield history, gr.MultimodalTextbox(value=message), session, history, "", \
                gallery_items(history)
            return
        with reservation:  # the answer's memory, given back however it ends
            shown = user_messages(exchange)
            for upload, picture in zip(exchange.uploads, shown, strict=False):
                if upload.page is not None:  # a PDF's page, shown as its picture
                    self.ctx.uploads.grant(user.name, picture["content"]["path"])
                    self._remember(picture["content"]["path"], upload.path)
            yield from self.stream_answer(exchange, session, [*history, *shown],
                                          restore=message)

    def reserve(self, session: ChatSession, text: str, files: list[str]) -> Reservation:
        """The memory this answer may take (its pictures' pixels, from their headers, and the
        prompt the chat makes), waiting a while for room; Overloaded or OverLimit if not."""
        pixels = request_pixels(files, session.limits)
        chars = len(text) + sum(len(t.text) for t in session.conversation.turns)
        images = len(files) + len(session.conversation.images)
        context = getattr(session.engine, "context_tokens", 0) or 0  # 0: not known
        return self.ctx.memory.reserve(estimate(pixels, chars, images, context))

    def regenerate(self, use_tools: bool, tools_on: list[str], temperature: float,
                   max_tokens: int, session: ChatSession | None, history: list,
                   request: gr.Request):
        user = self.ctx.who(request)
        session = self.configure(session, user, use_tools, tools_on, temperature, max_tokens)
        reservation = None
        try:
            reservation = self.reserve(session, "", [])
            exchange = session.regenerate()
        except AssistantError as e:
            if reservation is not None:
                reservation.release()
            history = [*history, warning(e)]
            yield history, gr.MultimodalTextbox(), session, history, "", gallery_items(history)
            return
        start = last_user_block(history)
        kept = history[:start]
        kept += [m for m in history[start:] if m["role"] == "user"]  # the message, not its answer
        with reservation:
            yield from self.stream_answer(exchange, session, kept)

    def stream_answer(self, exchange, session: ChatSession, history: list,
                      restore: dict | None = None):
        """Show the answer as it comes. If it fails, the chat is shown as it was kept: a new
        message that failed leaves the chat and goes back into the box (`restore`). If the
        page goes away (gradio closes this generator), the answer stops at once."""
        if exchange.notice:
            history.append({"role": "assistant", "content": exchange.notice,
                            "metadata": {"title": "Context trimmed"}})
        answer = {"role": "assistant", "content": ""}
        history.append(answer)
        locked = gr.MultimodalTextbox(value=None, interactive=False)
        gallery = gallery_items(history)
        yield history, locked, session, history, "Answering…", gallery
        shown = time.monotonic()
        events = iter(exchange)
        try:
            for event in events:  # refresh at most every REFRESH s: a slow page must not lag
                if exchange.discarded:  # Clear was pressed: show the empty chat, not this one
                    break
                if isinstance(event, Step):  # a tool step starts or ends: show it at once
                    answer = self.show_step(history, exchange, event, session.owner)
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
        finally:
            events.close()  # the page left (or Clear): the answer is cancelled, its slot freed
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

    def show_step(self, history: list, exchange: AgentExchange, step: Step, owner: str) -> dict:
        """Put the step before the answer being written; a finished step replaces its pending
        message and brings its images, which `owner` (and nobody else) may then see and
        attach. Returns the (new) answer message, kept last."""
        history.pop()  # the answer: it goes back last
        if step.status != "running" and history and \
                history[-1].get("metadata", {}).get("status") == "pending":
            history.pop()
        history.append(step_message(step))
        if step.status != "running":
            made = image_messages(exchange.image, step.images)
            for path, _ in gallery_items(made):
                self.ctx.uploads.grant(owner, path)
            history += made
        answer = {"role": "assistant", "content": ""}
        history.append(answer)
        return answer

    def undo(self, session: ChatSession | None, history: list, request: gr.Request,
             edit: bool = False):
        """Take back the last message and its answer; with `edit`, put it back in the box."""
        session = self.ctx.own(session, self.ctx.who(request))
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
        files = list(dict.fromkeys(self._pages.get(f, f) for f in files))  # a PDF, not its pages
        history = history[:start]
        box = gr.MultimodalTextbox(value={"text": taken.text, "files": files}) if edit else \
            gr.MultimodalTextbox()
        return history, box, session, history, "", gallery_items(history)

    @staticmethod
    def busy() -> gr.Button:
        return gr.Button(interactive=True)  # Stop, while an answer is written

    @staticmethod
    def idle() -> gr.Button:
        return gr.Button(interactive=False)

    @staticmethod
    def tools_usable(use_tools: bool) -> gr.CheckboxGroup:
        return gr.CheckboxGroup(interactive=bool(use_tools))

    def example(self, chosen: gr.SelectData, request: gr.Request) -> gr.MultimodalTextbox:
        """An example clicked in the empty chat: its request and picture in the box. What the
        page says was clicked comes from the client: a file in it must be one this user may
        send (the examples' pictures are everyone's), or gradio would copy any file of the
        server's working or temporary folder into its cache and serve it."""
        user = self.ctx.who(request)
        value = chosen.value if isinstance(chosen.value, dict) else {}
        paths = [str(f.get("path", "")) if isinstance(f, dict) else str(f)
                 for f in value.get("files") or []]
        try:
            files = [self.ctx.uploads.check(user.name, path) for path in paths]
        except AssistantError as e:
            raise gr.Error(str(e), print_exception=False) from None
        return gr.MultimodalTextbox(value={"text": str(value.get("text", "")), "files": files})

    def edit_last(self, session: ChatSession | None, history: list, request: gr.Request):
        return self.undo(session, history, request, edit=True)

    def stop(self, session: ChatSession | None, request: gr.Request) -> None:
        session = self.ctx.own(session, self.ctx.who(request))
        if session is not None:
            session.stop()

    def clear(self, session: ChatSession | None, request: gr.Request):
        session = self.ctx.own(session, self.ctx.who(request))
        if session is not None:
            session.clear()
        return [], gr.MultimodalTextbox(value=None, interactive=True), session, [], "", []

    def export(self, session: ChatSession | None, request: gr.Request) -> list[str]:
        session = self.ctx.own(session, self.ctx.who(request))
        if session is None or not session.conversation.turns:
            raise gr.Error("Nothing to export yet: the chat is empty.", print_exception=False)
        folder = Path(tempfile.mkdtemp(dir=IMAGES, prefix="export-"))
        (folder / "chat.md").write_text(to_markdown(session.conversation), encoding="utf-8")
        (folder / "chat.json").write_text(to_json(session.conversation), encoding="utf-8")
        files = [str(folder / "chat.md"), str(folder / "chat.json")]
        for path in files:  # the whole chat: served to its owner only (assistant/web/files.py)
            self.ctx.uploads.grant(session.owner, path)
        return files
