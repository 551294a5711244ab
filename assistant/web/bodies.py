"""How much a request to the page may send (the page and gradio's routes; /v1 bounds its own
bodies in assistant/api.py, /login the gate). A body must say its length (Content-Length, as
browsers and gradio's clients do; 411 without it), and one longer than its route allows is
refused (413) before any of it is read; the ASGI server reads no more than the length said.

An upload may carry a message's pictures: `max_images_per_message` files of `max_image_bytes`
each (gradio refuses a bigger file by itself, but takes up to a thousand files a request); any
other route a message's words and the names of its files.
"""

from __future__ import annotations

import json

from assistant.config import InputLimits
from assistant.web.uploads import UPLOAD_PATH

SLACK = 1024 * 1024  # the form's or the JSON's own bytes around what a user sends
JSON_CHAR = 6  # the most bytes a character of a message takes in JSON (\u001f)


class BoundedBodies:
    """ASGI middleware: a request to the page within its route's limit, or refused unread."""

    def __init__(self, app, limits: InputLimits):
        self.app = app
        self.upload = limits.max_images_per_message * limits.max_image_bytes + SLACK
        self.other = JSON_CHAR * limits.max_message_chars + SLACK

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] != "http" or path == "/v1" or path.startswith("/v1/"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is None:
            if b"transfer-encoding" in headers:
                return await _refuse(send, 411, "a request body must say its length "
                                     "(Content-Length)")
            return await self.app(scope, receive, send)
        size = int(declared) if declared.isdigit() else None
        if path == UPLOAD_PATH:
            limit = self.upload
            what = (f"an upload is at most {limit:,} bytes (max_images_per_message pictures "
                    "of max_image_bytes each)")
        else:
            limit = self.other
            what = f"a request to {path} is at most {limit:,} bytes"
        if size is None or size > limit:
            said = f"{size:,} bytes" if size is not None else "of an unreadable length"
            return await _refuse(send, 413, f"the request body is {said}: {what}")
        await self.app(scope, receive, send)


async def _refuse(send, status: int, message: str) -> None:
    data = json.dumps({"detail": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})
