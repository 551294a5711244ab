"""Fetching an image a client named by URL, within limits: http(s) only, a byte limit read
as it comes, a time limit, no redirects (a redirect could lead anywhere), and no private,
loopback, link-local or otherwise reserved addresses unless allowed (so a request cannot
make this server reach into its own network). Every refusal is a `FetchRefused` saying why.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit


class FetchRefused(Exception):
    pass


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise FetchRefused(f"the image URL redirects ({code} to {newurl}); redirects are not "
                           "followed: give the final URL")


def _public(host: str, port: int) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise FetchRefused(f"cannot resolve {host!r} ({e.strerror})") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global or address.is_multicast:
            raise FetchRefused(f"{host} is a private, loopback or link-local address "
                               f"({address}); such URLs are refused unless the server allows "
                               "them (api_allow_private_urls)")


def fetch(url: str, max_bytes: int, timeout: float, allow_private: bool = False) -> bytes:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchRefused("only http:// and https:// image URLs with a host are fetched")
    if not allow_private:
        _public(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    opener = urllib.request.build_opener(_NoRedirects)
    request = urllib.request.Request(url, headers={"User-Agent": "multimodal-assistant"})
    try:
        with opener.open(request, timeout=timeout) as response:
            data = response.read(max_bytes + 1)
    except FetchRefused:
        raise
    except urllib.error.HTTPError as e:
        raise FetchRefused(f"the image URL answered {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise FetchRefused(f"could not fetch the image URL ({reason})") from None
    if len(data) > max_bytes:
        raise FetchRefused(f"the image at the URL is over the limit of {max_bytes:,} bytes")
    return data
