"""Chats survive the server: `python app.py` on a tiny checkpoint answers through the chat
endpoint, is killed with SIGKILL, starts again on the same history, and the chat comes back
up to its last finished answer, pictures included; a chat is then deleted, and imported."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.serving import start_app, stop

pytestmark = pytest.mark.integration


def start(model: Path, data: Path, cache: Path, log: Path) -> tuple[subprocess.Popen, str]:
    proc, url = start_app(["--model", str(model), "--no-agent"],
                          {"XDG_DATA_HOME": str(data), "XDG_CACHE_HOME": str(cache),
                           "ASSISTANT_MAX_NEW_TOKENS": "8"}, log, wait=120)
    return proc, f"{url}/"


def texts(message: dict) -> str:
    return " ".join(part.get("text", "") for part in message["content"])


def test_a_chat_survives_sigkill_and_can_be_deleted_and_imported(tmp_path):
    from gradio_client import Client, handle_file

    from assistant.tinykit.checkpoints import build

    model = build("llava", tmp_path / "llava")
    picture = tmp_path / "square.png"
    image = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(image).rectangle((10, 10, 40, 40), fill=(220, 20, 20))
    image.save(picture)
    data, cache = tmp_path / "data", tmp_path / "cache"

    proc, url = start(model, data, cache, tmp_path / "first.log")
    try:
        client = Client(url, verbose=False)
        chat, _, _, _ = client.predict({"text": "first", "files": [handle_file(str(picture))]},
                                       temperature=0.3, max_tokens=12, api_name="/chat")
        client.predict({"text": "second", "files": []}, temperature=0.3, max_tokens=12,
                       api_name="/chat")
        client.close()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    proc, url = start(model, data, cache, tmp_path / "second.log")
    try:
        client = Client(url, verbose=False)
        chats = client.predict(api_name="/chats")
        assert [(c["title"], c["messages"]) for c in chats] == [("first", 4)]
        shown, _, status, gallery, tools, _, temperature, tokens = client.predict(
            chats[0]["id"], api_name="/open_chat")
        assert (tools, temperature, tokens) == (False, 0.3, 12)  # the chat's own settings
        users = [texts(m) for m in shown if m["role"] == "user" and m["content"][0]["type"] == "text"]
        assert users[0].endswith("first") and "#1" in users[0] and users[1] == "second"
        assert [g["caption"] for g in gallery] == ["#1 square.png"] and "4 messages" in status
        assert shown[0]["content"][0]["type"] == "file"  # the picture, read back from its blob

        exported = client.predict(api_name="/export")[1]
        client.predict(chats[0]["id"], api_name="/delete_chat")
        assert client.predict(api_name="/chats") == []
        assert not list((data / "multimodal-assistant" / "blobs").rglob("*.png"))

        client.predict(handle_file(exported), api_name="/import_chat")
        assert [c["messages"] for c in client.predict(api_name="/chats")] == [4]
        client.close()
    finally:
        stop(proc)
