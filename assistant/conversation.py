"""A conversation: typed turns and the images they carry, each under a stable handle.

Handles are "#1", "#2", ... in upload order; a handle is never reused or renumbered, so "#1"
means the same picture for the whole chat, however many images arrive later. The engine reads
a Conversation; it never edits one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from PIL import Image

from assistant.documents import Page
from assistant.errors import UnknownImage
from assistant.images import digest

HANDLE = re.compile(r"#(\d+)\b")


@dataclass(frozen=True)
class ImageRef:
    handle: str  # "#3"
    image: Image.Image = field(repr=False, compare=False)
    name: str = ""  # where it came from: a file name or a tool lineage name
    sha256: str = ""
    page: Page | None = None  # a PDF's page: which one, and its text layer (lines and boxes)


@dataclass(frozen=True)
class Result:
    """A tool call that worked while a turn was answered, and what the tool returned."""
    tool: str
    arguments: dict
    text: str
    data: dict = field(default_factory=dict)  # the same facts, structured (boxes, lines)


@dataclass
class Turn:
    role: Literal["user", "assistant"]
    text: str
    images: list[str] = field(default_factory=list)  # handles attached to this turn
    results: list[Result] = field(default_factory=list)  # an answer's tool calls that worked


@dataclass
class Conversation:
    turns: list[Turn] = field(default_factory=list)
    images: dict[str, ImageRef] = field(default_factory=dict)
    _next: int = 1
    system: str = ""  # a system prompt for this conversation only (the agent's), else the model's

    @property
    def next_number(self) -> int:
        """The number the next image's handle will get."""
        return self._next

    def add_image(self, image: Image.Image, name: str = "", page: Page | None = None) -> str:
        """Register an image (a PDF's `page`, if it is one) and return its new handle ("#n")."""
        handle = f"#{self._next}"
        self._next += 1
        self.images[handle] = ImageRef(handle, image, name, digest(image), page)
        return handle

    def add_user(self, text: str, images: list[Image.Image] | None = None,
                 names: list[str] | None = None,
                 pages: list[Page | None] | None = None) -> Turn:
        """Append a user turn, attaching new images (which get the next handles); `pages`:
        for each image, the PDF page it is (None for a picture)."""
        names = names or [""] * len(images or [])
        pages = pages or [None] * len(images or [])
        handles = [self.add_image(img, n, p)
                   for img, n, p in zip(images or [], names, pages, strict=True)]
        turn = Turn("user", text, handles)
        self.turns.append(turn)
        return turn

    def add_assistant(self, text: str, results: list[Result] = ()) -> Turn:
        turn = Turn("assistant", text, results=list(results))
        self.turns.append(turn)
        return turn

    def fork(self) -> Conversation:
        """An independent copy to try a turn on (images are shared, lists are not)."""
        return Conversation(list(self.turns), dict(self.images), self._next, self.system)

    def image(self, handle: str) -> ImageRef:
        if handle not in self.images:
            raise UnknownImage(handle, list(self.images))
        return self.images[handle]

    @property
    def results(self) -> list[Result]:
        """The tool calls that worked in the chat's answers, oldest first."""
        return [r for t in self.turns for r in t.results]

    def earlier(self, tool: str, arguments: dict, newer: list[Result] = ()) -> Result | None:
        """The latest result of the same call (tool and arguments) an earlier answer made, or
        one of `newer` (those of the answer being made, not in the chat yet)."""
        return next((r for r in reversed([*self.results, *newer])
                     if r.tool == tool and r.arguments == arguments), None)

    def mentioned(self, text: str) -> list[str]:
        """Handles named in `text` ("compare #1 and #3"); unknown ones raise UnknownImage."""
        found = [f"#{n}" for n in HANDLE.findall(text)]
        for h in found:
            self.image(h)
        return list(dict.fromkeys(found))

    def forget_latest(self, handles: list[str]) -> None:
        """Drop `handles`, the newest images (an answer's that is being answered again), so
        that the next images take their numbers again. Images older than the newest ones
        kept are never renumbered: a handle that is not among the newest is left alone."""
        numbers = sorted((int(h[1:]) for h in handles if h in self.images), reverse=True)
        for n in numbers:
            if n != self._next - 1:
                break
            del self.images[f"#{n}"]
            self._next = n

    def pop_last_exchange(self) -> list[Turn]:
        """Remove the last user turn and everything after it (undo). Its images stay known."""
        for i in range(len(self.turns) - 1, -1, -1):
            if self.turns[i].role == "user":
                removed, self.turns = self.turns[i:], self.turns[:i]
                return removed
        return []
