"""Fetching an image a client named by URL, within limits: http(s) only, a byte limit and a
total time limit, no redirects (a redirect could lead anywhere), no proxies, and no private,
loopback, link-local or otherwise non-public address unless allowed (so a request cannot make
this server reach into its own network). The host is resolved once, the address checked
(IPv4 hidden in IPv6 forms included) and that very address connected to, so a second DNS
answer cannot send the fetch elsewhere. The time limit is the whole fetch's: a server that
sends a byte now and then is cut off when it is over, not when it stops sending. Every refusal
is a `FetchRefused` saying why.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

NAT64 = ipaddress.ip_network("64:ff9b::/96")


class FetchRefused(Exception):
    pass


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if address in NAT64 or (int(address) >> 32 == 0 and int(address) > 1):  # NAT64, ::a.b.c.d
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    inner = _embedded_v4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    return all(a.is_global and not a.is_multicast for a in (ip, inner) if a is not None)


def _resolve(host: str, port: int, allow_private: bool) -> str:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise FetchRefused(f"cannot resolve {host!r} ({e})") from None
    addresses = [info[4][0] for info in infos]
    if not allow_private:
        for address in addresses:
            if not public(address):
                raise FetchRefused(f"{host} is a private, loopback or link-local address "
                                   f"({address}); such URLs are refused unless the server "
                                   "allows them (api_allow_private_urls)")
    return addresses[0]


class _HTTP(http.client.HTTPConnection):
    def __init__(self, host: str, address: str, port: int, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address, self.raw = address, None

    def connect(self) -> None:
        self.sock = self.raw = socket.create_connection((self.address, self.port), self.timeout)


class _HTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, address: str, port: int, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address, self.raw = address, None

    def connect(self) -> None:
        self.raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(self.raw, server_hostname=self.host)


def _cut(connection: _HTTP | _HTTPS, late: threading.Event) -> None:
    """At the deadline: whatever the fetch waits for ends at once (its socket is shut)."""
    late.set()
    if connection.raw is not None:
        try:
            connection.raw.shutdown(socket.SHUT_RDWR)
        except OSError:  # closed meanwhile
            pass


def fetch(url: str, max_bytes: int, timeout: float, allow_private: bool = False) -> bytes:
    deadline = time.monotonic() + timeout
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as e:
        raise FetchRefused(f"the image URL cannot be read ({e})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise FetchRefused("only http:// and https:// image URLs with a host are fetched")
    port = port or (443 if parts.scheme == "https" else 80)
    address = _resolve(host, port, allow_private)
    kind = _HTTPS if parts.scheme == "https" else _HTTP
    connection = kind(host, address, port, timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    late = threading.Event()
    # Each read waits at most `timeout`, but a server that sends a byte now and then would
    # keep the fetch (and a worker thread) for hours: the whole fetch is cut at the deadline.
    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), _cut, (connection, late))
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.request("GET", path, headers={"User-Agent": "multimodal-assistant"})
        if late.is_set():  # the deadline came while connecting, before there was a socket
            raise FetchRefused(f"the image URL took longer than {timeout:g} s")
        response = connection.getresponse()
        if 300 <= response.status < 400:
            raise FetchRefused(f"the image URL redirects ({response.status} to "
                               f"{response.getheader('Location')}); redirects are not "
                               "followed: give the final URL")
        if response.status != 200:
            raise FetchRefused(f"the image URL answered {response.status} {response.reason}")
        data = bytearray()  # grown in place: += on bytes would copy it all for each chunk
        while len(data) <= max_bytes:
            if time.monotonic() > deadline:
                raise FetchRefused(f"the image URL took longer than {timeout:g} s")
            chunk = response.read(min(65536, max_bytes + 1 - len(data)))
            if not chunk:
                break
            data += chunk
    except FetchRefused:
        raise
    except (OSError, http.client.HTTPException, ValueError) as e:
        if late.is_set():
            raise FetchRefused(f"the image URL took longer than {timeout:g} s") from None
        raise FetchRefused(f"could not fetch the image URL ({e})") from None
    finally:
        watchdog.cancel()
        connection.close()
    if late.is_set():  # cut off mid-image: what came is not the image
        raise FetchRefused(f"the image URL took longer than {timeout:g} s")
    if len(data) > max_bytes:
        raise FetchRefused(f"the image at the URL is over the limit of {max_bytes:,} bytes")
    return bytes(data)
