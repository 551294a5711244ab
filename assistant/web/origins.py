"""What another site's page may do with this port: read nothing, and change nothing.

Read nothing: no response carries CORS headers. Gradio's own would tell a browser that any
origin may read the page's routes, with the user's credentials, once the request's host is
not a localhost name (a server on the network): any web page that a user of the network
opened could then read a --no-auth server's chats. The page itself never needs them (it is of
the same origin), nor do API clients (not browsers).

Change nothing (cross-site request forgery): a request that may change something (any method
but GET, HEAD and OPTIONS, and every websocket) is refused with a 403 when a browser says it
comes from a page of another origin. SameSite=Strict cookies are not enough: another port of
the same host is the same site, so a page served there would be sent the session cookie,
and on a server without accounts reaching the port is the only credential there is. A browser
names the page's origin in `Origin` on every such request (`Referer` where an old one does
not), and it must be this server's own: the host and port the request is addressed to. A
request naming neither is no browser's page (a script, an API client) and passes; `Origin:
null` (a sandboxed page, a redirect from elsewhere) does not.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class SameOrigin:
    """ASGI middleware: no `Access-Control-*` header in any response, and requests that may
    change something only from this server's own pages (or from no page at all)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        if not from_own_page(scope):
            return await _refuse(scope, send)
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)

        async def bare(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [
                    (k, v) for k, v in message.get("headers", [])
                    if not k.lower().startswith(b"access-control-")]}
            await send(message)

        await self.app(scope, receive, bare)


def from_own_page(scope) -> bool:
    """Whether the request may go on: it changes nothing, or no page of another origin sent
    it."""
    if scope["type"] == "http" and scope["method"] in SAFE_METHODS:
        return True
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    page = headers.get("origin") or headers.get("referer")
    if page is None:
        return True
    if page == "null":
        return False
    parts = urlsplit(page)
    own = headers.get("host", "").lower()
    return parts.scheme in ("http", "https") and parts.netloc.lower() == own


async def _refuse(scope, send) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    message = ("This request came from a page of another site (its Origin or Referer is not "
               "this server): refused, so that no other page can act as you. Use the chat's "
               "own page, or a client that sends no Origin.")
    path = scope["path"]
    if path == "/v1" or path.startswith("/v1/"):
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None,
                          "code": "cross_site_request"}}
    else:
        body = {"detail": message}
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": data})
