"""Who the client is when a proxy stands in front: forwarded headers are believed only from
the proxies the settings name (`trusted_proxies`, addresses or networks; none by default).

The address of a request is what the login throttle counts by (assistant/web/throttle.py),
and `X-Forwarded-For` is a header anyone can write: believed from whoever sends it, one
rotating it would be a new client at every guess, and one naming another's address would
slow her down. So from a peer that is a trusted proxy, the client is the last address of
`X-Forwarded-For` that is not itself a trusted proxy (each proxy adds the address it was
reached from at the end; what comes before is the client's say), the scheme is the last of
`X-Forwarded-Proto` and the host the last of `X-Forwarded-Host` (the public name, which the
check of a page's origin compares with: assistant/web/origins.py). From any other peer those
headers are taken away, so that nothing behind (gradio builds its links from them) believes
them either. uvicorn's own handling, which trusts 127.0.0.1, must be off (`SERVE_OPTIONS`).
"""

from __future__ import annotations

import ipaddress

from assistant.errors import BadSetting

SERVE_OPTIONS = {"proxy_headers": False}  # what uvicorn must be run with: this file decides
FORWARDED = (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded")


def networks(proxies: list[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The trusted proxies as networks; BadSetting naming one that is not an address."""
    found = []
    for proxy in proxies:
        try:
            found.append(ipaddress.ip_network(proxy.strip(), strict=False))
        except ValueError:
            raise BadSetting(f"trusted_proxies: {proxy!r} is not an IP address or network "
                             "(e.g. 10.0.0.5 or 10.0.0.0/24)") from None
    return tuple(found)


class TrustedProxies:
    """ASGI middleware (the outermost): the client, scheme and host a trusted proxy forwards,
    and no forwarded header from anyone else."""

    def __init__(self, app, proxies: list[str]):
        self.app, self.trusted = app, networks(proxies)

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            peer = scope.get("client")
            scope = _forwarded(scope, self.trusted) if peer and self._trusts(peer[0]) \
                else {**scope, "headers": [(k, v) for k, v in scope["headers"]
                                           if k.lower() not in FORWARDED]}
        await self.app(scope, receive, send)

    def _trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:  # a Unix socket's peer, a test client: no address to trust
            return False
        return any(ip in network for network in self.trusted)


def _forwarded(scope, trusted) -> dict:
    """`scope` as the trusted proxy says it came: client, scheme and host."""
    headers = {k.lower(): v.decode("latin-1") for k, v in scope["headers"]}
    scope = dict(scope)
    hops = [h.strip() for h in headers.get(b"x-forwarded-for", "").split(",") if h.strip()]
    client = _client(hops, trusted)
    if client is not None:
        scope["client"] = (client, 0)
    proto = _last(headers.get(b"x-forwarded-proto", "")).lower()
    if proto in ("http", "https"):
        secure = proto == "https"
        scope["scheme"] = ("wss" if secure else "ws") if scope["type"] == "websocket" else proto
    host = _last(headers.get(b"x-forwarded-host", ""))
    if host:
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"host"] + \
            [(b"host", host.encode("latin-1"))]
    return scope


def _client(hops: list[str], trusted) -> str | None:
    """The last address that is not a trusted proxy (None: none given, or one unreadable
    there: the proxy's own address stays)."""
    for hop in reversed(hops):
        try:
            ip = ipaddress.ip_address(hop)
        except ValueError:
            return None
        if not any(ip in network for network in trusted):
            return str(ip)
    return hops[0] if hops else None


def _last(value: str) -> str:
    return value.rsplit(",", 1)[-1].strip()
