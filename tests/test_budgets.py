"""Budgets for work in flight and disk quotas, run against the real server on 127.0.0.1 with
small limits: pixels and characters refused before any is decoded or tokenized, a request
finding the memory budget taken refused with Retry-After (the API) or a message (the page),
uploads and saved chats past their quotas refused in words, and nothing in the chat lost.
"""

from __future__ import annotations

import base64
import io
import os
import tempfile

os.environ.setdefault("GRADIO_TEMP_DIR", tempfile.mkdtemp(prefix="gradio-test-"))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from assistant.config import Settings  # noqa: E402
from assistant.web.accounts import add  # noqa: E402
from tests.serving import in_thread  # noqa: E402
from tests.web_clients import ask, logged_in, picture, upload  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A tiny LLaVA behind one account, with limits small enough to reach in a test."""
    from assistant.tinykit.checkpoints import build
    from assistant.web.server import create_app

    folder = tmp_path_factory.mktemp("budgets")
    add(folder / "users", "ann", "ann-password", admin=False)
    settings = Settings(model=str(build("llava", folder / "llava")), max_new_tokens=4,
                        auth=str(folder / "users"), history=str(folder / "h.sqlite3"),
                        api_key="key", max_request_pixels=500_000,
                        api_max_request_chars=300, memory_wait=0, upload_quota_mb=2,
                        history_quota_mb=1)
    app = create_app(settings, agent_on=False)
    with in_thread(app) as url:
        yield app.state.context, url


def api(url: str, *content: dict, text: str = "What is this?") -> httpx.Response:
    body = {"model": _model(url), "max_tokens": 2,
            "messages": [{"role": "user", "content": [{"type": "text", "text": text},
                                                      *content]}]}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60,
                      headers={"Authorization": "Bearer key"})


def _model(url: str) -> str:
    models = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer key"}).json()
    return models["data"][0]["id"]


def image_part(width: int, height: int) -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode()
    return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}


def noise(path, width: int = 800, height: int = 600):
    """A picture that PNG cannot compress: about 1.4 MB on disk."""
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_the_pixels_of_a_request_are_refused_from_their_headers(server):
    _, url = server
    assert api(url, image_part(500, 500), image_part(500, 500)).status_code == 200
    refused = api(url, image_part(500, 500), image_part(500, 501))  # 500,500 pixels in all
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "too_many_pixels" and "max_request_pixels" in error["message"]


def test_the_characters_of_a_request_are_counted_together(server):
    ctx, url = server
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": "hi " * 33 + "a"}
                for i in range(3)]  # 100 characters each, 300 in all
    body = {"model": _model(url), "max_tokens": 2, "messages": messages}
    headers = {"Authorization": "Bearer key"}
    assert httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers,
                      timeout=60).status_code == 200
    body["messages"][0]["content"] += "x"
    refused = httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=60)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "request_too_long" and "api_max_request_chars" in error["message"]


def test_no_room_in_the_memory_budget_is_a_503_with_retry_after(server):
    ctx, url = server
    taken = ctx.memory.reserve(ctx.memory.limit)  # the answers in flight hold it all
    try:
        refused = api(url)
        assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1
        error = refused.json()["error"]
        assert error["code"] == "server_overloaded" and "memory_budget_mb" in error["message"]
    finally:
        taken.release()
    assert api(url).status_code == 200
    assert ctx.memory.reserved == 0  # every answer gave its memory back


def test_the_page_says_the_server_is_busy_and_keeps_the_message(server, tmp_path):
    ctx, url = server
    with logged_in(url, "ann", "ann-password") as ann:
        path = upload(ann, picture(tmp_path / "red.png"))
        taken = ctx.memory.reserve(ctx.memory.limit)
        try:
            event, data = ask(ann, "what colour?", path)
        finally:
            taken.release()
        assert event == "complete"
        history, box = data[0], data[1]
        assert "memory_budget_mb" in str(history[-1]["content"])
        assert "what colour?" in str(box)  # the message stays in the box, to send again
        event, data = ask(ann, "what colour?", path)
        assert event == "complete" and "memory_budget_mb" not in str(data[0])
    assert ctx.memory.reserved == 0


def test_uploads_past_the_quota_are_refused_and_the_chat_keeps_its_own(server, tmp_path):
    ctx, url = server
    with logged_in(url, "ann", "ann-password") as ann:
        first = upload(ann, noise(tmp_path / "one.png"))  # 1.4 MB of the 2 MiB
        with open(noise(tmp_path / "two.png"), "rb") as f:
            refused = ann.post("/gradio_api/upload",
                               files={"files": ("two.png", f, "image/png")})
        assert refused.status_code == 413
        assert "upload_quota_mb" in refused.json()["detail"]
        # the chat's picture is still there, and still answered about; saving the chat
        # (its 1.4 MB picture) is past the history's 1 MiB: said, and the chat goes on
        event, data = ask(ann, "and this one?", first)
        assert event == "complete", data
        assert "was not saved" in data[4] and "history_quota_mb" in data[4]
        assert any(isinstance(m["content"], list) for m in data[0])  # the picture, shown
        assert all(c["title"] != "and this one?" for c in ctx.store.chats(owner="ann"))
