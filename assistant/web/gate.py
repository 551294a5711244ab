"""One gate in front of everything the port serves: the browser page, every gradio route (the
page's config, the queue, uploads, files, each function) and the API under /v1.

Open (no users file, no API key): every request is the single user `local`; assistant/web/
server.py allows this only on a loopback address, or with --no-auth. Open on a loopback address
(`local_only`), a request must name this machine as its host (localhost, 127.0.0.1, [::1]):
another site's page whose name was made to point at 127.0.0.1 (DNS rebinding) names its own
site, and would otherwise read and delete every chat from the user's own browser. Closed: a
request passes
with `Authorization: Bearer KEY` (the API key: user `local`), `Authorization: Basic` (an
account of the users file), or the session cookie that /login sets (a form for the browser;
gradio_client's `auth=` posts to it too). Anything else gets a 401 (OpenAI's error body under
/v1); a browser asking for a page is sent to /login. The user that passed is put in the
request's state (`request.state.user`) for gradio and the page's callbacks.

Sessions live in memory (a restart logs everyone out) for `login_hours`; cookies are HttpOnly
and SameSite=Strict. A page on another port of this host is of the same site, though, and is
sent them: assistant/web/origins.py refuses whatever such a page asks to change, a login or a
logout included (logout is a POST: a link or a picture elsewhere cannot end a session). Guessing is slowed
per account and per address (assistant/web/throttle.py: a wait that doubles with each
failure past the first few; a wrong API key in a Bearer header counts as a failed login to
the key), the address being the peer's, or the client's as a configured proxy says
(assistant/web/proxies.py); at most CHECKS_AT_ONCE passwords are checked at once (each check
is ~50 ms of a core and 16 MB). Not here: what each user may do once in (assistant/web/chat.py,
history.py, models.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import ipaddress
import json
import math
import secrets
import time
from collections import OrderedDict
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

import anyio

from assistant.web.accounts import Accounts, User
from assistant.web.throttle import Throttle

COOKIE = "assistant-session"
MAX_SESSIONS = 10_000
API_KEY = ""  # the account a password with no name, or a Bearer key, tries: the API key
CHECKS_AT_ONCE = 4  # passwords checked at once, over all clients
LOGIN_BODY = 8 * 1024  # bytes a login form may have


class Throttled(Exception):
    """Too many failed logins for this account or from this address: wait `seconds`."""

    def __init__(self, seconds: float):
        super().__init__(f"Too many failed logins for this account or from this address: "
                         f"try again in {math.ceil(seconds)} s.")
        self.seconds = math.ceil(seconds)


class Gate:
    """Lets a request through to an app only as a known user (`Gated` puts it in front)."""

    def __init__(self, accounts: Accounts | None, api_key: str, local: User,
                 login_hours: float = 24.0, clock=time.monotonic, local_only: bool = False):
        self.accounts, self.api_key, self.local = accounts, api_key, local
        self.local_only = local_only  # open: only requests naming this machine as their host
        self.login_seconds = login_hours * 3600
        self._clock = clock
        self._sessions: OrderedDict[str, tuple[User, float]] = OrderedDict()  # token -> until
        self._basic: OrderedDict[bytes, User] = OrderedDict()  # checked Basic credentials
        self.throttle = Throttle(clock)  # failed logins, per account and per address
        self._secret = secrets.token_bytes(32)
        self._checking: anyio.CapacityLimiter | None = None  # made in the server's loop

    @property
    def closed(self) -> bool:
        """Whether anyone must say who they are."""
        return self.accounts is not None or bool(self.api_key)

    def user(self, name: str | None) -> User | None:
        """The user under `name`, as the gate let them in (None: nobody of that name)."""
        if name == self.local.name:
            return self.local
        if self.accounts is not None and name in self.accounts:
            return self.accounts.user(name)
        return None

    # -- a request ---------------------------------------------------------------------------
    async def serve(self, app, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await app(scope, receive, send)
        if self.local_only and not self.closed and not _names_this_machine(scope):
            return await self._refuse(scope, send, MISDIRECTED)
        if self.closed and scope["type"] == "http" and scope["path"] in ("/login", "/logout"):
            return await (self._login if scope["path"] == "/login" else self._logout)(
                scope, receive, send)
        try:
            user = await self._identify(scope) if self.closed else self.local
        except Throttled as e:
            return await self._refuse(scope, send, throttled=e)
        if user is None:
            return await self._refuse(scope, send)
        scope.setdefault("state", {})["user"] = user
        await app(scope, receive, send)

    async def _identify(self, scope) -> User | None:
        headers = _headers(scope)
        given = headers.get("authorization", "")
        scheme, _, credential = given.partition(" ")
        if scheme.lower() == "bearer":  # a wrong key counts as a failed login: no guessing
            client = _client(scope)
            self._may_try(API_KEY, client)
            self.throttle.start(API_KEY, client)
            if self.api_key and hmac.compare_digest(credential.encode(), self.api_key.encode()):
                self.throttle.succeeded(API_KEY, client)
                return self.local
            return None
        if scheme.lower() == "basic":
            return await self._basic_user(credential, _client(scope))
        token = _cookie(headers.get("cookie", ""))
        held = self._sessions.get(token) if token else None
        if held is None:
            return None
        if held[1] < self._clock():
            self._sessions.pop(token, None)
            return None
        return held[0]

    async def _basic_user(self, credential: str, client: str) -> User | None:
        key = hmac.new(self._secret, credential.encode(), hashlib.sha256).digest()
        if key in self._basic:
            return self._basic[key]
        try:
            name, _, password = base64.b64decode(credential, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user = await self._check(name, password, client)
        if user is not None:
            self._basic[key] = user
            while len(self._basic) > 1024:
                self._basic.popitem(last=False)
        return user

    async def _check(self, name: str, password: str, client: str) -> User | None:
        """The user these credentials are, or None; Throttled while `client` must wait to
        try this account. The attempt counts from its start (a thousand sent at once are not
        a thousand checks) and is taken back if right."""
        account = name if name else API_KEY
        self._may_try(account, client)
        self.throttle.start(account, client)
        user = None
        if not name and self.api_key:
            if hmac.compare_digest(password.encode(), self.api_key.encode()):
                user = self.local
        elif self.accounts is not None and name:  # scrypt takes ~50 ms: off the event loop
            if self._checking is None:
                self._checking = anyio.CapacityLimiter(CHECKS_AT_ONCE)
            user = await anyio.to_thread.run_sync(self.accounts.check, name, password,
                                                  limiter=self._checking)
        if user is not None:
            self.throttle.succeeded(account, client)
        return user

    def _may_try(self, account: str, client: str) -> None:
        wait = self.throttle.wait(account, client)
        if wait > 0:
            raise Throttled(wait)

    async def _refuse(self, scope, send, misdirected: str = "",
                      throttled: Throttled | None = None) -> None:
        """401 (a browser asking for a page: to /login), with `misdirected` a 403 saying
        that this server answers only to this machine's names, with `throttled` a 429."""
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        path = scope["path"]
        headers = _headers(scope)
        if throttled is not None:
            return await _too_many(send, throttled, api=path == "/v1" or
                                   path.startswith("/v1/"))
        status = 403 if misdirected else 401
        if path == "/v1" or path.startswith("/v1/"):
            body = {"error": {"message": misdirected or "missing or wrong API key (send "
                              "'Authorization: Bearer KEY')", "type": "invalid_request_error",
                              "param": None,
                              "code": "wrong_host" if misdirected else "invalid_api_key"}}
            return await _send(send, status, json.dumps(body), "application/json")
        if misdirected:
            return await _send(send, status, json.dumps({"detail": misdirected}),
                               "application/json")
        if scope["method"] == "GET" and "text/html" in headers.get("accept", ""):
            return await _send(send, 303, "", "text/plain", [("location", "/login")])
        body = {"detail": "Not logged in: log in at /login, or send 'Authorization: Bearer "
                          "KEY' or Basic credentials."}
        await _send(send, 401, json.dumps(body), "application/json")

    # -- /login and /logout ------------------------------------------------------------------
    async def _login(self, scope, receive, send) -> None:
        browser = "text/html" in _headers(scope).get("accept", "")
        if scope["method"] == "GET":
            return await _send(send, 200, self._page(), "text/html; charset=utf-8")
        if scope["method"] != "POST":
            return await _send(send, 405, "use GET or POST", "text/plain")
        body = await _read(receive, LOGIN_BODY)
        if body is None:
            return await _send(send, 413, "the login form is too large", "text/plain")
        form = parse_qs(body.decode("utf-8", "replace"))
        name = form.get("username", [""])[0].strip()
        password = form.get("password", [""])[0]
        try:
            user = await self._check(name, password, _client(scope))
        except Throttled as e:
            return await self._answer(send, browser, 429, str(e),
                                      [("retry-after", str(e.seconds))])
        if user is None:
            return await self._answer(send, browser, 401, "Wrong name or password.")
        token = self._open_session(user)
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        cookie = (f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; "
                  f"Max-Age={int(self.login_seconds)}{secure}")
        if browser:
            return await _send(send, 303, "", "text/plain", [("location", "/"),
                                                             ("set-cookie", cookie)])
        await _send(send, 200, json.dumps({"success": True}), "application/json",
                    [("set-cookie", cookie)])

    async def _answer(self, send, browser: bool, status: int, message: str,
                      headers: list[tuple[str, str]] = ()) -> None:
        if browser:
            return await _send(send, status, self._page(message), "text/html; charset=utf-8",
                               headers)
        await _send(send, status, json.dumps({"detail": message}), "application/json",
                    headers)

    def _open_session(self, user: User) -> str:
        now = self._clock()
        for token, (_, until) in list(self._sessions.items()):
            if until < now:
                del self._sessions[token]
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.popitem(last=False)
        token = secrets.token_urlsafe(32)
        self._sessions[token] = (user, now + self.login_seconds)
        return token

    async def _logout(self, scope, receive, send) -> None:
        """POST ends the session (only from this server's pages: assistant/web/origins.py);
        GET, which any other site's link or picture can make, only shows the button."""
        if scope["method"] in ("GET", "HEAD"):
            return await _send(send, 200, LOGOUT_PAGE, "text/html; charset=utf-8")
        if scope["method"] != "POST":
            return await _send(send, 405, "use POST (GET shows the button)", "text/plain")
        token = _cookie(_headers(scope).get("cookie", ""))
        if token:
            self._sessions.pop(token, None)
        gone = f"{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        await _send(send, 303, "", "text/plain", [("location", "/login"), ("set-cookie", gone)])

    def _page(self, message: str = "") -> str:
        accounts, key = self.accounts is not None, bool(self.api_key)
        hint = ("Your name and password." if accounts and not key else
                "The API key as the password, no name." if not accounts else
                "Your name and password, or the API key as the password with no name.")
        error = f'<p class="error">{html.escape(message)}</p>' if message else ""
        return LOGIN_PAGE.format(hint=hint, error=error,
                                 name_style="" if accounts else "display:none")


class Gated:
    """ASGI middleware: `gate` in front of `app`."""

    def __init__(self, app, gate: Gate):
        self.app, self.gate = app, gate

    async def __call__(self, scope, receive, send):
        await self.gate.serve(self.app, scope, receive, send)


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Log in: Multimodal assistant</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:22rem;margin:15vh auto;padding:0 1rem}}
label{{display:block;margin:.8rem 0 .2rem}}input{{width:100%;padding:.5rem;box-sizing:border-box}}
button{{margin-top:1rem;padding:.5rem 1.2rem}}.error{{color:#b00020}}</style></head>
<body><h1>Multimodal assistant</h1><p>{hint}</p>{error}
<form method="post" action="/login">
<div style="{name_style}"><label for="username">Name</label>
<input id="username" name="username" autocomplete="username"></div>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button></form></body></html>
"""


LOGOUT_FORM = ('<form method="post" action="/logout" style="margin:0">'
               '<button type="submit">Log out</button></form>')
LOGOUT_PAGE = ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Log out: "
               "Multimodal assistant</title></head><body style=\"font-family:system-ui,"
               "sans-serif;max-width:22rem;margin:15vh auto;padding:0 1rem\">"
               f"<h1>Log out?</h1>{LOGOUT_FORM}<p><a href=\"/\">Back to the chat</a></p>"
               "</body></html>\n")


MISDIRECTED = ("This server has no authentication, so it answers only requests addressed to "
               "this machine itself (http://localhost:PORT, http://127.0.0.1:PORT or "
               "http://[::1]:PORT): this one named another host, as a page of another site "
               "whose name was pointed at this machine does. Open the chat at one of those "
               "addresses; to serve other names, start the server with --auth FILE or an API "
               "key.")


def _names_this_machine(scope) -> bool:
    """Whether the request's Host is a name of this machine (no Host: a script's request)."""
    host = _headers(scope).get("host")
    if host is None:
        return True
    if host.startswith("["):  # [::1]:7860
        name = host[1:].partition("]")[0]
    else:
        name = host.rpartition(":")[0] if ":" in host else host
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _client(scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def _cookie(header: str) -> str:
    try:
        morsel = SimpleCookie(header).get(COOKIE)
    except CookieError:
        return ""
    return morsel.value if morsel is not None else ""


async def _too_many(send, throttled: Throttled, api: bool) -> None:
    """A 429 with Retry-After; under /v1 in OpenAI's error body."""
    body = {"error": {"message": str(throttled), "type": "rate_limit_error", "param": None,
                      "code": "rate_limit_exceeded"}} if api else {"detail": str(throttled)}
    await _send(send, 429, json.dumps(body), "application/json",
                [("retry-after", str(throttled.seconds))])


async def _read(receive, limit: int) -> bytes | None:
    """The request body, or None past `limit` bytes (read no further)."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return body
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body"):
            return body


async def _send(send, status: int, body: str, kind: str,
                headers: list[tuple[str, str]] = ()) -> None:
    data = body.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", kind.encode()),
                            (b"content-length", str(len(data)).encode()),
                            (b"cache-control", b"no-store"),
                            *((k.encode(), v.encode()) for k, v in headers)]})
    await send({"type": "http.response.body", "body": data})
