"""Clients for the web tests: one logged in as a user, a picture on disk, its upload through
gradio's route, the FileData a gradio call names it by, and a named endpoint called (/chat:
a message asked) through gradio's REST route."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from PIL import Image


@contextmanager
def logged_in(url: str, name: str, password: str) -> Iterator[httpx.Client]:
    """A client logged in as `name` with the session cookie, as a browser is (and as
    gradio_client's auth= gets it)."""
    with httpx.Client(base_url=url, timeout=60) as client:
        answer = client.post("/login", data={"username": name, "password": password})
        assert answer.status_code == 200, answer.text
        yield client


def picture(path: Path, colour=(220, 20, 20)) -> Path:
    Image.new("RGB", (40, 30), colour).save(path)
    return path


def upload(client: httpx.Client, path: Path) -> str:
    with open(path, "rb") as f:
        answer = client.post("/gradio_api/upload", files={"files": (path.name, f, "image/png")})
    assert answer.status_code == 200, answer.text
    return answer.json()[0]


def file_data(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": Path(path).name}


def call(client: httpx.Client, api_name: str, *data, page: str | None = None):
    """A named endpoint through gradio's REST route, as the browser session `page` (its
    session hash: its state is kept between calls) or a new one: ("complete" or "error",
    its data)."""
    body = {"data": list(data), **({"session_hash": page} if page else {})}
    started = client.post(f"/gradio_api/call/{api_name}", json=body)
    assert started.status_code == 200, started.text
    return result(client, api_name, started.json()["event_id"])


def result(client: httpx.Client, api_name: str, event_id: str):
    """What the event's stream ends with: ("complete" or "error", its data), or the status
    of a refused stream."""
    event = None
    with client.stream("GET", f"/gradio_api/call/{api_name}/{event_id}") as answer:
        if answer.status_code != 200:
            return answer.status_code, answer.read().decode()
        for line in answer.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event in ("complete", "error"):
                return event, json.loads(line[6:])
    return event, None


def ask(client: httpx.Client, text: str, *paths: str, tools: tuple[str, ...] = (),
        page: str | None = None):
    """/chat: the message with these files, tools on if any are named, temperature 0."""
    message = {"text": text, "files": [file_data(p) for p in paths]}
    return call(client, "chat", message, bool(tools), list(tools), 0.0, 8, None, None,
                page=page)
