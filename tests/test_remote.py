"""A remote backend: instance A of the app generates on instance B (another `python app.py`,
here with the embedded default) through B's OpenAI-compatible API, and answers an image
question through its own API and its browser chat endpoint; a backend that is not there is
a clear error at start."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from assistant.errors import AssistantError
from tests.serving import free_port, start_app, stop

pytestmark = pytest.mark.integration


def circle() -> Image.Image:
    image = Image.new("RGB", (256, 256), "white")
    ImageDraw.Draw(image).ellipse((90, 90, 160, 160), fill=(0, 0, 255))
    return image


def ask(text: str, image: Image.Image) -> list[dict]:
    import base64
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    return [{"role": "user", "content": [{"type": "text", "text": text},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


def start(tmp_path: Path, name: str, *args: str) -> tuple[subprocess.Popen, str]:
    return start_app(["--no-agent", *args], {"XDG_DATA_HOME": str(tmp_path / name),
                                             "ASSISTANT_MAX_NEW_TOKENS": "16"},
                     tmp_path / f"{name}.log")


def test_instance_a_answers_an_image_question_on_instance_b(tmp_path):
    from gradio_client import Client, handle_file
    from openai import OpenAI

    b, b_url = start(tmp_path, "b")
    try:
        a, a_url = start(tmp_path, "a", "--remote", f"{b_url}/v1")
        try:
            with OpenAI(base_url=f"{a_url}/v1", api_key="-",
                        max_retries=0) as client:
                assert [m.id for m in client.models.list().data][0] == "embedded-default"
                answer = client.chat.completions.create(
                    model="embedded-default", messages=ask("What color is the shape?", circle()))
            assert "blue" in answer.choices[0].message.content.lower()
            picture = tmp_path / "circle.png"
            circle().save(picture)
            chat = Client(f"{a_url}/", verbose=False)
            shown, _, status, _ = chat.predict(
                {"text": "What color is the shape?", "files": [handle_file(str(picture))]},
                api_name="/chat")
            chat.close()
            assert "blue" in str(shown[-1]["content"]).lower() and "finished" in status
        finally:
            stop(a)
    finally:
        stop(b)


def test_a_remote_backend_that_is_not_there_is_a_clear_error():
    from assistant.config import Settings
    from assistant.engine.remote import RemoteError
    from assistant.engines import open_engine

    with pytest.raises(RemoteError, match="cannot be reached"):  # nothing listens there
        open_engine(Settings(remote=f"http://127.0.0.1:{free_port()}/v1").engine)
    with pytest.raises(AssistantError, match="http"):
        Settings(remote="ftp://x")
