"""One browser (or API) session of chat: its Conversation, the answer being streamed, stop and
clear. The UI calls this; it holds no gradio objects and knows nothing of how things are shown.

`ChatSession.send(text, image_paths)` loads and checks every upload, fits the conversation and
starts the engine; any `AssistantError` on the way is raised with the conversation exactly as it
was. It returns an `Exchange`: iterate it for text deltas (or, when the session answers with the
agent, `AgentExchange`: iterate it for trace events). The user turn, any images the tools made
and the answer become part of the conversation together, when the answer ends (a stopped
answer keeps its partial text; an answer that fails leaves the conversation as it was before
the send). Not here: the agent loop and tools themselves, persistence, and rendering.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from assistant.config import InputLimits, Settings
from assistant.conversation import Conversation, Result, Turn
from assistant.documents import Attachment, Page, load_attachment
from assistant.engine import Engine, GenerationParams, Reply, Usage
from assistant.errors import AssistantError, OverLimit
from assistant.pixels import request_pixels
from assistant.store import LOCAL, NoSuchChat


class EmptyMessage(AssistantError):
    """Nothing to send: no text and no images."""

    def __init__(self):
        super().__init__("The message is empty: type a question or attach an image.")


class Busy(AssistantError):
    """A second message while this session's previous answer is still streaming."""

    def __init__(self):
        super().__init__("Still answering the previous message: press Stop or wait for it "
                         "to finish, then send again.")


class NothingToRedo(AssistantError):
    """Undo or regenerate in a chat with no message yet."""

    def __init__(self, what: str):
        super().__init__(f"Nothing to {what}: the chat has no message yet.")


@dataclass(frozen=True)
class Upload:
    """An image the user attached, under the handle the conversation gave it."""

    handle: str  # "#1"
    path: str  # where the upload lies on disk (shown back to the user)
    name: str  # its file name
    note: str = ""  # what the user should know of it (an animation's first frame was taken)
    page: Page | None = None  # a PDF's page (`path` is then the PDF's): which, and its text


class _Exchange(ABC):
    """One user message and the answer being made for it. Iterate once; afterwards `text` and
    `cancelled` are final."""

    def __init__(self, session: ChatSession, trial: Conversation, user: Turn,
                 uploads: list[Upload], epoch: int):
        self.session, self.user, self.uploads = session, user, uploads
        self._trial, self._epoch = trial, epoch
        self.notice = ""  # what the context budget left out of the prompt, in words
        self.text = ""
        self.finished = False
        self._started = False

    @property
    def discarded(self) -> bool:
        """The session was cleared after this was sent: it will not be kept."""
        return self._epoch != self.session._epoch

    @property
    @abstractmethod
    def cancelled(self) -> bool: ...

    @abstractmethod
    def cancel(self) -> None:
        """Stop the answer; what was written so far is kept."""

    @abstractmethod
    def _produce(self) -> Iterator: ...

    @abstractmethod
    def _drain(self) -> None:
        """After the reader left: let the stopped work end."""

    def step_records(self) -> list[dict]:
        """The tool steps this answer took, as data (for the history)."""
        return []

    def image(self, handle: str):
        """An image of this exchange's conversation (the tools' new ones included)."""
        return self._trial.image(handle)

    def results(self) -> list[Result]:
        """The tool calls of this answer that worked, kept with it in the chat."""
        return []

    def __iter__(self) -> Iterator:
        if self._started:
            raise RuntimeError("an Exchange can be iterated only once")
        self._started = True
        keep = False
        try:
            yield from self._produce()
            keep = True
        except GeneratorExit:  # the reader went away (tab closed): stop, keep what was shown
            self.cancel()
            self._drain()
            keep = True
            raise
        finally:
            self.finished = True
            self.session._finish(self, keep)


class Exchange(_Exchange):
    """The model answers alone: iterate for text deltas; `usage` is final afterwards."""

    def __init__(self, session: ChatSession, trial: Conversation, user: Turn,
                 uploads: list[Upload], reply: Reply, epoch: int):
        super().__init__(session, trial, user, uploads, epoch)
        self._reply = reply
        self.notice = reply.fitted.describe() if reply.fitted.dropped_anything else ""

    @property
    def usage(self) -> Usage:
        return self._reply.stream.usage

    @property
    def cancelled(self) -> bool:
        return self.usage.finish_reason == "cancelled"

    def cancel(self) -> None:
        self._reply.stream.cancel()

    def _produce(self) -> Iterator[str]:
        for delta in self._reply.stream:
            self.text += delta
            yield delta

    def _drain(self) -> None:
        try:
            for _ in self._reply.stream:
                pass
        except Exception:  # noqa: BLE001 - the reader is gone; nobody to tell
            pass


class AgentExchange(_Exchange):
    """The agent answers: iterate for its trace events (Step, Note, Delta, Final); `steps`
    holds each finished tool step, `new_images` the handles the tools made."""

    def __init__(self, session: ChatSession, trial: Conversation, user: Turn,
                 uploads: list[Upload], agent, epoch: int):
        super().__init__(session, trial, user, uploads, epoch)
        self._stop = threading.Event()
        self._events = agent.run(trial, cancel=self._stop)
        self.steps: list = []
        self.new_images: list[str] = []
        self.final = None
        self.started = time.monotonic()
        self.seconds = 0.0  # from send to the final answer

    @property
    def cancelled(self) -> bool:
        return self.final is not None and self.final.stopped

    def cancel(self) -> None:
        self._stop.set()

    def _drain(self) -> None:
        self._events.close()  # the run ends where it is; its generation is cancelled

    def results(self) -> list[Result]:
        from assistant.agent.trace import results

        return results(self.steps)

    def step_records(self) -> list[dict]:
        return [{"step": s.step, "tool": s.tool, "arguments": s.arguments, "status": s.status,
                 "observation": s.observation, "seconds": round(s.seconds, 3),
                 "images": list(s.images), "data": s.data} for s in self.steps]

    def _produce(self) -> Iterator:
        from assistant.agent import Delta, Final, Step

        for event in self._events:
            if isinstance(event, Delta):
                self.text += event.text
            elif isinstance(event, Step) and event.status != "running":
                self.steps.append(event)
                self.new_images += event.images
            elif isinstance(event, Final):
                self.final, self.text = event, event.text
                self.seconds = time.monotonic() - self.started
            yield event


class ChatSession:
    """The chat of one user: a Conversation plus the engine that answers it. Never shared
    between users; the engine is (it serializes generation itself). With a store, the chat
    is saved as `owner`'s, and only `owner`'s chats can be opened."""

    def __init__(self, engine: Engine, limits: InputLimits | None = None,
                 params: GenerationParams | None = None, agent=None, store=None,
                 owner: str = LOCAL):
        self.engine = engine
        self.limits = limits or Settings().limits  # what one message and the chat may hold
        self.params = params  # None: the engine's defaults from the settings
        self.agent = agent  # an Agent (assistant.agent): the model may call tools
        self.use_agent = agent is not None  # the user's switch; without an agent, off
        self.conversation = Conversation()
        # With a Store (assistant/store.py), the chat is saved after every finished answer.
        self.store, self.owner = store, owner
        self.chat_id = store.new_id() if store is not None else ""
        self.steps: list[list[dict]] = []  # the tool steps of each turn, for the history
        self.store_error: AssistantError | None = None  # the last save that failed, if any
        self.knobs: dict = {}  # the chat's own settings as the UI set them, saved with it
        self.current: _Exchange | None = None
        self._epoch = 0  # bumped by clear(): an answer from before a clear is not kept
        self._lock = threading.Lock()

    def send(self, text: str, image_paths: Sequence[str | Path] = ()) -> _Exchange:
        """Start answering `text` about the attached files (pictures, and PDFs: one picture
        per page taken). Raises AssistantError (bad image or PDF, over a limit, context
        overflow, ...) with the conversation unchanged."""
        text = (text or "").strip()
        if not text and not image_paths:
            raise EmptyMessage()
        with self._lock:
            self._settle()
            s = self.limits
            chat = len(self.conversation.images)
            check_limits(s, text, len(image_paths), chat)  # each file is one picture at least
            request_pixels(image_paths, s)  # from their headers, before any is decoded
            taken: list[tuple[Path, Attachment]] = []
            for i, p in enumerate(image_paths):
                taken += [(Path(p), a) for a in load_attachment(p, Path(p).name, s)]
                if len(taken) > i + 1:  # a PDF's pages count one each (files unread: one)
                    check_limits(s, text, len(taken) + len(image_paths) - i - 1, chat,
                                 pages=True)
            # A copy to try the turn on: the real conversation changes only when the answer ends.
            trial = self.conversation.fork()
            user = trial.add_user(text, images=[a.image for _, a in taken],
                                  names=[a.name for _, a in taken],
                                  pages=[a.page for _, a in taken])
            uploads = [Upload(h, str(p), a.name, a.note, a.page)
                       for h, (p, a) in zip(user.images, taken, strict=True)]
            return self._start(trial, user, uploads)

    def regenerate(self) -> _Exchange:
        """Answer the last user message again (its images included); the earlier answer is
        replaced when the new one ends. The chat is as it was before that answer, pictures
        its tools made included (they go, and their numbers are given again), so an answer
        at temperature 0 comes out the same."""
        with self._lock:
            self._settle()
            trial = self.conversation.fork()
            removed = trial.pop_last_exchange()
            if not removed:
                raise NothingToRedo("answer again")
            made = [h for record in (self.steps[-1] if self.steps else [])
                    for h in record.get("images", [])]
            trial.forget_latest(made)
            last = removed[0]
            user = Turn("user", last.text, list(last.images))
            trial.turns.append(user)
            return self._start(trial, user, [])

    def undo(self) -> Turn:
        """Take back the last user message and its answer; returns that message (its images
        stay known under their handles, which are never reused)."""
        with self._lock:
            self._settle()
            removed = self.conversation.pop_last_exchange()
            if not removed:
                raise NothingToRedo("undo")
            del self.steps[len(self.conversation.turns):]
            self._save()
            return removed[0]

    def open(self, chat_id: str) -> None:
        """Continue one of the owner's saved chats (an answer streaming now is stopped and not
        kept); another owner's, or a missing one, is NoSuchChat and changes nothing."""
        conversation, steps = self.store.load(chat_id, owner=self.owner)
        knobs = self.store.settings(chat_id, owner=self.owner)
        with self._lock:
            self.stop()
            self._epoch += 1
            self.conversation, self.steps, self.chat_id = conversation, steps, chat_id
            self.knobs = knobs
            self.current = None

    def _save(self) -> None:
        """Write the chat to the store, if any; a failure is kept in `store_error` (the chat
        in memory goes on)."""
        if self.store is None:
            return
        try:
            if self.conversation.turns:
                self.store.save(self.chat_id, self.conversation, self.steps, settings=self.knobs,
                                owner=self.owner)
            else:  # everything taken back: no chat left to keep
                try:
                    self.store.delete(self.chat_id, owner=self.owner)
                except NoSuchChat:  # never saved (or deleted meanwhile): nothing to remove
                    pass
            self.store_error = None
        except AssistantError as e:
            self.store_error = e

    def _settle(self) -> None:
        """Before a new answer: refuse while one streams; forget one sent but never read."""
        if self.current is not None and not self.current.finished:
            if self.current._started:
                raise Busy()
            self.current.cancel()
            self.current.finished = True

    def _start(self, trial: Conversation, user: Turn, uploads: list[Upload]) -> _Exchange:
        if self.use_agent and self.agent is not None:
            self.current = AgentExchange(self, trial, user, uploads, self.agent, self._epoch)
        else:
            reply = self.engine.stream(trial, self.params)
            self.current = Exchange(self, trial, user, uploads, reply, self._epoch)
        return self.current

    def stop(self) -> bool:
        """Cancel the answer streaming now, if any; True if there was one."""
        current = self.current
        if current is None or current.finished:
            return False
        current.cancel()
        return True

    def clear(self) -> None:
        """Forget the whole chat (an answer still streaming is stopped and not kept)."""
        with self._lock:
            self.stop()
            self._epoch += 1
            self.conversation = Conversation()
            self.steps = []
            self.chat_id = self.store.new_id() if self.store is not None else ""
            self.current = None

    def _finish(self, exchange: _Exchange, keep: bool) -> None:
        with self._lock:
            if keep and exchange._epoch == self._epoch:
                exchange._trial.add_assistant(exchange.text, exchange.results())
                self.conversation = exchange._trial
                n = len(self.conversation.turns)
                self.steps = [*self.steps[:n - 2], [], exchange.step_records()]
                self._save()


def check_limits(settings: InputLimits, text: str, new_images: int, chat_images: int,
                 pages: bool = False) -> None:
    """Refuse a message over the limits (OverLimit) before anything is read; `pages`: the
    count is of pictures with each PDF page one (checked again once the files are read,
    against the chat's limit: a PDF's own cap is max_pdf_pages)."""
    what = "pictures (each PDF page one)" if pages else "pictures"
    if len(text) > settings.max_message_chars:
        raise OverLimit("the message's length in characters", len(text),
                        settings.max_message_chars, "max_message_chars")
    # a message holds max_images_per_message files; a PDF's pages (at most max_pdf_pages of
    # each) count against the chat's pictures
    if new_images > settings.max_images_per_message and not pages:
        raise OverLimit(f"the number of {what} in the message", new_images,
                        settings.max_images_per_message, "max_images_per_message")
    if chat_images + new_images > settings.max_images_per_chat:
        raise OverLimit(f"the number of {what} in the chat with these",
                        chat_images + new_images, settings.max_images_per_chat,
                        "max_images_per_chat")
