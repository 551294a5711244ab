"""What every event of the page works with (`Context`): the current engine, the settings,
the tools, the history, the gate (who a request is), the uploads each user may send and the
memory budget the answers in flight share with the API; and
the two checks each event starts with: who is asking, and whether this browser session's chat
is theirs. Not here: the events themselves (chat.py, history.py, models.py).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import gradio as gr

from assistant.config import Settings
from assistant.engines import Current
from assistant.memory_budget import MemoryBudget
from assistant.session import ChatSession
from assistant.store import Store
from assistant.web.accounts import User
from assistant.web.gate import Gate
from assistant.web.uploads import Uploads


@dataclass
class Context:
    current: Current  # the engine every chat answers with now
    settings: Settings
    gate: Gate
    uploads: Uploads
    registry: object | None = None  # the tools (tools/registry.py), if any
    store: Store | None = None  # the chat history, if kept
    agent_on: bool = True  # new chats start with tools on
    exposed: bool = False  # served beyond this machine: no model switcher
    notice: str = ""  # why the model asked for did not load, shown on the page
    memory: MemoryBudget = field(default_factory=lambda: MemoryBudget(0))  # answers in flight
    sessions: weakref.WeakSet = field(default_factory=weakref.WeakSet)  # open chats

    def who(self, request: gr.Request) -> User:
        """The user making this request (the gate let nobody else in)."""
        user = self.gate.user(getattr(request, "username", None))
        if user is None:
            raise gr.Error("You are not logged in: reload the page.", print_exception=False)
        return user

    @staticmethod
    def own(session: ChatSession | None, user: User) -> ChatSession | None:
        """This browser session's chat, if it is `user`'s; another user's is refused."""
        if session is not None and session.owner != user.name:
            raise gr.Error("This page's chat belongs to another user: reload the page.",
                           print_exception=False)
        return session

    def can_load_models(self, user: User) -> bool:
        """The model switcher: administrators, on a server only this machine reaches."""
        return user.admin and not self.exposed
