"""Whose each browser session and each queued event is: gradio's queue and stream routes answer
only the logged-in user who opened them.

Gradio keys a page's state, its queue and its streams by the session hash the page makes up,
and an event's answer by the event id the queue hands out; whoever sends another's hash or
id is, to gradio, her page: `/gradio_api/queue/data?session_hash=<hers>` streams her answers,
and her hash in a call takes her page's state, cancels her events or closes her session. Both
travel in query strings and paths (a proxy's log, a browser's history), so neither can be a
credential. Here a session hash belongs to the first user who uses it, an event id to the
user its queue answer went to; the other user is answered as if neither existed (404).

Where they travel: the hash in the query (`session_hash=`), in the paths of the heartbeat and
of media streams, and in the JSON body of every call (join, run, cancel, component server);
the event id in the paths of a call's result and of a stream's input, and in the body of a
cancel. Each user keeps their latest PER_USER hashes and ids, so that nobody can push
another's out of memory (and then take it) by opening sessions of their own.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from urllib.parse import parse_qs

PREFIX = "/gradio_api/"
PER_USER = 4096  # session hashes, and event ids, each user keeps
NOT_YOURS = json.dumps({"detail": "No such session or event (or not one of yours)."}).encode()
GIVES_EVENTS = ("queue/join", "call/")  # POST routes whose answer is {"event_id": ...}
CANCELS = ("cancel", "reset")  # POST routes whose body names an event to end


class Owners:
    """Keys (session hashes or event ids) and the user each belongs to."""

    def __init__(self, per_user: int = PER_USER):
        self.per_user = per_user
        self._owner: dict[str, str] = {}
        self._held: dict[str, OrderedDict[str, None]] = {}
        self._lock = threading.Lock()

    def claim(self, user: str, key: str) -> bool:
        """Whether `key` is `user`'s: theirs already, or nobody's and now theirs."""
        with self._lock:
            owner = self._owner.setdefault(key, user)
            if owner != user:
                return False
            self._keep(user, key)
            return True

    def owns(self, user: str, key: str) -> bool:
        """Whether `key` was given to `user` (an unknown key is nobody's)."""
        with self._lock:
            return self._owner.get(key) == user

    def _keep(self, user: str, key: str) -> None:
        held = self._held.setdefault(user, OrderedDict())
        held[key] = None
        held.move_to_end(key)
        while len(held) > self.per_user:
            gone, _ = held.popitem(last=False)
            self._owner.pop(gone, None)


class BindQueue:
    """ASGI middleware (after the gate, inside the body limits): gradio's session hashes and
    event ids answered only for the user they belong to."""

    def __init__(self, app):
        self.app = app
        self.sessions, self.events = Owners(), Owners()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            return await self.app(scope, receive, send)
        user = scope["state"]["user"].name
        route = scope["path"][len(PREFIX):]
        if not self._path_is_theirs(user, route, scope):
            return await _not_yours(send)
        if scope["method"] == "POST" and route != "upload":
            body, receive = await _whole(receive)
            if not self._body_is_theirs(user, route, body, scope):
                return await _not_yours(send)
            if route.startswith(GIVES_EVENTS) and route.count("/") <= 2:
                send = self._recording(user, send)
        await self.app(scope, receive, send)

    def _path_is_theirs(self, user: str, route: str, scope) -> bool:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if not all(self.sessions.claim(user, h) for h in query.get("session_hash", [])):
            return False
        parts = route.split("/")
        if parts[0] == "heartbeat" and len(parts) > 1:
            return self.sessions.claim(user, parts[1])
        if parts[0] == "stream" and len(parts) > 1:
            if scope["method"] == "POST":  # stream/{event_id}, stream/{event_id}/close
                return self.events.owns(user, parts[1])
            return self.sessions.claim(user, parts[1])  # stream/{session_hash}/{run}/...
        if parts[0] == "call" and scope["method"] == "GET":  # call[/v2]/{api}/{event_id}
            return len(parts) < 3 or self.events.owns(user, parts[-1])
        return True

    def _body_is_theirs(self, user: str, route: str, body: bytes, scope) -> bool:
        kind = dict(scope["headers"]).get(b"content-type", b"")
        if kind.startswith(b"multipart/"):  # a component's file for its server function:
            return False  # this page has no such component, and the form hides its hash
        try:
            sent = json.loads(body) if body else {}
        except ValueError:
            return True  # gradio refuses it itself
        if not isinstance(sent, dict):
            return True
        session = sent.get("session_hash")
        if isinstance(session, str) and not self.sessions.claim(user, session):
            return False
        event = sent.get("event_id")
        if route.rstrip("/") in CANCELS and isinstance(event, str):
            return self.events.owns(user, event)
        return True

    def _recording(self, user: str, send):
        """`send`, giving `user` the event id in the queue's answer before it goes out."""
        held: list[dict] = []

        async def record(message):
            held.append(message)
            if message["type"] != "http.response.body" or message.get("more_body"):
                return
            if held[0].get("status") == 200:
                event = _event_id(b"".join(m.get("body", b"") for m in held[1:]))
                if event is not None:
                    self.events.claim(user, event)
            for m in held:
                await send(m)
            held.clear()

        return record


def _event_id(answer: bytes) -> str | None:
    try:
        sent = json.loads(answer)
    except ValueError:
        return None
    event = sent.get("event_id") if isinstance(sent, dict) else None
    return event if isinstance(event, str) else None


async def _whole(receive):
    """The request's body (bounded before this: assistant/web/bodies.py), and a `receive`
    that gives it again, then whatever comes after (a disconnect)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    given = False

    async def again():
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, again


async def _not_yours(send) -> None:
    await send({"type": "http.response.start", "status": 404,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(NOT_YOURS)).encode()),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": NOT_YOURS})
