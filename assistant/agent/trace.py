"""What the agent emits as it works, in order, for the terminal, the browser and the API:
`Step` when a tool call starts (status "running") and again when it ends ("done" or "error"),
`Note` for a retry or a limit, `Delta` for each piece of the streamed answer, `Final` last."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from assistant.conversation import Result


def call_text(tool: str, arguments: dict) -> str:
    """A call as people read it: ocr(image='#1')."""
    return f"{tool}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})"


@dataclass
class Step:
    step: int
    tool: str
    arguments: dict
    status: str = "running"  # running | done | error
    observation: str = ""
    images: list[str] = field(default_factory=list)  # handles of the images the tool made
    seconds: float = 0.0
    data: dict = field(default_factory=dict)


@dataclass
class Note:
    step: int
    kind: str  # retry | limit | deadline | stopped
    text: str


@dataclass
class Delta:
    text: str


@dataclass
class Final:
    text: str
    steps: int  # model turns taken
    finished: bool = True  # False: the loop stopped at a limit and says so in `text`
    stopped: bool = False  # the user stopped it: `text` is what was written until then


Event = Step | Note | Delta | Final


def results(events: Iterable[Event]) -> list[Result]:
    """The tool calls of an answer that worked, to keep with it in the chat (a later answer
    reads them again rather than repeating the call: Conversation.earlier)."""
    return [Result(e.tool, e.arguments, e.observation, e.data) for e in events
            if isinstance(e, Step) and e.status == "done"]
