"""Clients for the web tests: one logged in as a user, a picture on disk, its upload through
gradio's route, and the FileData a gradio call names it by."""

from __future__ import annotations

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
