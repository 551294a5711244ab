"""The History panel's events: list, open (and go on with), delete and import saved chats.
Each touches only the chats of the request's user, whatever chat id a client sends: another
user's chat reads as one that is not there. Import reads only a file this user uploaded.
Not here: how chats are kept (assistant/store.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import gradio as gr

from assistant.chat_view import gallery_items, replay
from assistant.errors import AssistantError
from assistant.export import from_json
from assistant.session import ChatSession
from assistant.web.accounts import User
from assistant.web.chat import ChatEvents
from assistant.web.context import Context


class HistoryEvents:
    def __init__(self, ctx: Context, chat: ChatEvents):
        self.ctx, self.chat = ctx, chat

    def chat_ids(self, request: gr.Request) -> list[dict]:
        """This user's saved chats, latest first (id, title, updated, messages)."""
        store = self.ctx.store
        return store.chats(owner=self.ctx.who(request).name) if store is not None else []

    def choices(self, request: gr.Request) -> gr.Dropdown:
        def label(c: dict) -> str:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(c["updated"]))
            return f"{c['title']} · {when} · {c['messages']} messages"

        return gr.Dropdown(choices=[(label(c), c["id"]) for c in self.chat_ids(request)],
                           value=None)

    def open_chat(self, chat_id: str | None, session: ChatSession | None, request: gr.Request):
        if not chat_id:
            raise gr.Error("Choose a chat to open first.", print_exception=False)
        return self._open(str(chat_id), session, self.ctx.who(request))

    def _open(self, chat_id: str, session: ChatSession | None, user: User):
        settings, tool_names = self.ctx.settings, self.chat.tool_names
        session = self.chat.configure(session, user, False, [], settings.temperature,
                                      settings.max_new_tokens)
        try:
            session.open(chat_id)
        except AssistantError as e:  # another user's reads as missing: NoSuchChat
            raise gr.Error(str(e), print_exception=False) from None
        history = replay(session.conversation, session.steps)
        for path, _ in gallery_items(history):  # its pictures may be attached again
            self.ctx.uploads.grant(user.name, path)
        knobs = session.knobs  # the chat's own settings, as it was last answered with
        tools = [n for n in knobs.get("tools_on", tool_names) if n in tool_names]
        tokens = min(int(knobs.get("max_tokens", settings.max_new_tokens)),
                     self.chat.most_tokens)
        use_tools = bool(knobs.get("use_tools", self.ctx.agent_on)) and \
            self.ctx.registry is not None
        return (history, gr.MultimodalTextbox(value=None, interactive=True), session, history,
                f"Reopened: {len(session.conversation.turns)} messages.", gallery_items(history),
                use_tools, tools, float(knobs.get("temperature", settings.temperature)), tokens)

    def delete_chat(self, chat_id: str | None, session: ChatSession | None,
                    request: gr.Request):
        if not chat_id:
            raise gr.Error("Choose a chat to delete first.", print_exception=False)
        user = self.ctx.who(request)
        session = self.ctx.own(session, user)
        try:
            self.ctx.store.delete(str(chat_id), owner=user.name)
        except AssistantError as e:
            raise gr.Error(str(e), print_exception=False) from None
        if session is not None and session.chat_id == chat_id:
            session.clear()
            return [], gr.MultimodalTextbox(value=None), session, [], "Deleted.", []
        return gr.skip(), gr.skip(), session, gr.skip(), "Deleted.", gr.skip()

    def import_chat(self, path: str | None, session: ChatSession | None, request: gr.Request):
        if not path:
            raise gr.Error("Choose a chat file (JSON, as Export writes it).",
                           print_exception=False)
        user = self.ctx.who(request)
        self.ctx.own(session, user)
        settings = self.ctx.settings
        try:
            data = Path(self.ctx.uploads.check(user.name, path)).read_bytes()
            conversation = from_json(data, settings.max_image_bytes, settings.max_image_pixels,
                                     settings.max_images_per_chat * settings.max_image_pixels)
            chat_id = self.ctx.store.new_id()
            self.ctx.store.save(chat_id, conversation, owner=user.name)
        except AssistantError as e:
            raise gr.Error(str(e), print_exception=False) from None
        return self._open(chat_id, session, user)
