"""What one answer of the agent has done so far: the state its loop reads at each step.

The loop (assistant/agent/loop.py) writes a step, decides what kind of reply it is (a call,
an answer, a call that cannot be read) and hands it to one handler; each handler reads and
records here what it needs, so a newcomer reads one step at a time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from langchain_core.messages import BaseMessage

from assistant.conversation import Conversation, Result
from tools.base import Observation

Failure = tuple[str, str]  # (tool, reason)


def reply_kind(reply) -> str:
    """What a model's reply is: "malformed" (a call that cannot be read), "call" or
    "answer"."""
    if reply.additional_kwargs.get("malformed"):
        return "malformed"
    return "call" if reply.tool_calls else "answer"


@dataclass
class RunState:
    conversation: Conversation
    tools: object  # the registry of the tools offered now
    messages: list[BaseMessage]
    cancel: threading.Event | None = None
    started: float = field(default_factory=time.monotonic)
    done: list[str] = field(default_factory=list)  # "tool: first line of its result"
    made: list[str] = field(default_factory=list)  # the pictures this answer made
    results: list[Observation] = field(default_factory=list)  # the calls that worked
    ran: list[Result] = field(default_factory=list)  # the same, with their calls
    reports: list[str] = field(default_factory=list)  # each result in a plain sentence
    failures: list[Failure] = field(default_factory=list)  # since the last call that worked
    unmade: list[Failure] = field(default_factory=list)  # edits and drawings that failed
    unread: list[Failure] = field(default_factory=list)  # readings the tool could not do
    retried: bool = False  # a malformed call was sent back once
    checked: bool = False  # an answer was sent back once
    # after an answer sent back for how it used results that are all there, the next step
    # answers: no call (a reading of something else is no answer to the message)
    answer_only: bool = False

    def stopped(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def left(self, deadline: float) -> float:
        """Seconds left of the answer's `deadline`."""
        return deadline - (time.monotonic() - self.started)

    @property
    def failed(self) -> Failure | None:
        """The last call's (tool, reason), if it failed."""
        return self.failures[-1] if self.failures else None

    @property
    def advice(self) -> str:
        """The last call's error, which may say what to try ("try classify")."""
        return self.failed[1] if self.failed else ""

    @property
    def held(self) -> bool:
        """Whether the answer being written waits for its check before anyone sees it: after a
        call, or an answer sent back."""
        return bool(self.results or self.failed or self.checked)

    @property
    def unsaid(self) -> list[Failure]:
        """What failed that an honest answer must say."""
        return self.unmade + self.unread + self.failures

    def record(self, name: str, arguments: dict, observation: Observation, makes: bool,
               refused: bool, reused: bool, reason: str) -> None:
        """Keep what a call did: the pictures it made, its failure (`reason`) or its result."""
        self.made += observation.handles
        failure = (name, reason) if observation.error else None
        self.failures = self.failures + [failure] if failure else []
        if failure and makes:
            self.unmade.append(failure)
        elif failure and not refused and not reason.startswith("bad arguments"):
            # what the tool cannot do (not the model's own slip, nor the loop's refusal)
            self.unread.append(failure)
        elif not failure:
            self.unread = [u for u in self.unread if u[0] != name]
        if not observation.error:
            self.results.append(observation)
            if not reused:
                self.ran.append(Result(name, arguments, observation.text, observation.data))
