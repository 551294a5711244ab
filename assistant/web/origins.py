"""No other site's page may read what it asks of this port: no response carries CORS headers.
Gradio's own would tell a browser that any origin may read the page's routes, with the user's
credentials, once the request's host is not a localhost name (a server on the network): any
web page that a user of the network opened could then read a --no-auth server's chats. The
page itself never needs them (it is of the same origin), nor do API clients (not browsers).
"""

from __future__ import annotations


class SameOrigin:
    """ASGI middleware: responses without any `Access-Control-*` header."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def bare(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [
                    (k, v) for k, v in message.get("headers", [])
                    if not k.lower().startswith(b"access-control-")]}
            await send(message)

        await self.app(scope, receive, bare)
