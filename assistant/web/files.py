"""Whose files gradio's file route serves: a file goes only to a user who may see its content
(assistant/web/uploads.py: what they uploaded, the pictures the tools made in their chat, the
chats they exported, the pictures of a chat they reopened, and the examples' pictures for
everyone), in the browser and through gradio's API alike.

Gradio serves any file of its upload folder to anyone logged in who names it, and the name of
a file there is the hash of its bytes: whoever held another user's link (a shared screenshot,
a proxy's log, a browser's history) would read her upload, or her exported chat whole. A path
or a hash is only a name, never a credential: the file's content must have been granted to
the user asking. Anything else, a link to another site included (gradio would fetch it for
the asker), is answered as a file that is not there, so that nobody learns whether it exists.
Not here: who the user is (assistant/web/gate.py).
"""

from __future__ import annotations

import json

import anyio

from assistant.web.uploads import Uploads

FILE_ROUTES = ("/gradio_api/file=", "/gradio_api/file/")  # the second: gradio's older name


class OwnFiles:
    """ASGI middleware (after the gate): gradio's file route for the file's owners only."""

    def __init__(self, app, uploads: Uploads):
        self.app, self.uploads = app, uploads

    async def __call__(self, scope, receive, send):
        named = _named_file(scope)
        if named is None:
            return await self.app(scope, receive, send)
        user = scope["state"]["user"].name
        if await anyio.to_thread.run_sync(self.uploads.may_see, user, named):
            return await self.app(scope, receive, send)
        await _not_found(send)


def _named_file(scope) -> str | None:
    """The file a request to the file route names (None: another route), read from the
    decoded path as gradio's route reads it."""
    if scope["type"] != "http":
        return None
    path = scope["path"]
    for route in FILE_ROUTES:
        if path.startswith(route):
            return path[len(route):]
    return None


async def _not_found(send) -> None:
    data = json.dumps({"detail": "No such file (or not one of yours)."}).encode()
    await send({"type": "http.response.start", "status": 404,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": data})
