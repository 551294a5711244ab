"""A client that speaks HTTP by hand, for what a library client will not do: declare a body
it never sends, send one of unknown length, or leave in the middle of an answer. Each posts
to /v1/chat/completions of a base URL ("http://127.0.0.1:PORT")."""

from __future__ import annotations

import json
import re
import socket
import time
from urllib.parse import urlsplit

import pytest


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=30)


def head(length: int | None = None, chunked: bool = False) -> bytes:
    """The request line and headers of a POST with a declared length, or chunked."""
    lines = ["POST /v1/chat/completions HTTP/1.1", "Host: 127.0.0.1",
             "Content-Type: application/json"]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock: socket.socket) -> tuple[int, dict]:
    """Status and JSON body of a response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536) or pytest.fail(f"connection closed: {data!r}")
    top, _, rest = data.partition(b"\r\n\r\n")
    lines = top.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    length = int(headers["content-length"])
    while len(rest) < length:
        rest += sock.recv(65536) or pytest.fail("connection closed mid-body")
    assert headers["content-type"] == "application/json"
    return int(lines[0].split()[1]), json.loads(rest[:length])


def drop_after_first_words(url: str, body: dict) -> float:
    """Ask for `body` streamed, read until a chunk with some text, leave; when it left."""
    sock = connect(url)
    raw = json.dumps({**body, "stream": True}).encode()
    sock.sendall(head(len(raw)) + raw)
    seen = b""
    while not re.search(rb'"content": "[^"]', seen):
        seen += sock.recv(4096) or pytest.fail(f"the stream ended: {seen!r}")
    sock.close()
    return time.monotonic()


def drop_while_answering(url: str, body: dict, after: float) -> float:
    """Ask for `body` whole, leave `after` seconds later; when it left."""
    sock = connect(url)
    raw = json.dumps({**body, "stream": False}).encode()
    sock.sendall(head(len(raw)) + raw)
    time.sleep(after)
    sock.close()
    return time.monotonic()


def wait_for(condition, seconds: float) -> bool:
    """Whether `condition()` came true within `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
