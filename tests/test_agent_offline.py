"""The agent on the embedded default with its real weights: the model that sees the picture
decides to call OCR or the classifier and answers from what the tool said."""

from __future__ import annotations

import subprocess
import sys

import pytest
import skimage.data
from PIL import Image, ImageDraw

from assistant.agent import Final, Step, for_settings
from assistant.config import Settings
from assistant.conversation import Conversation
from tools.drawing import font
from tools.registry import build

pytestmark = pytest.mark.integration


def sign(text="OPEN 24 HOURS") -> Image.Image:
    image = Image.new("RGB", (480, 120), "white")
    ImageDraw.Draw(image).text((20, 30), text, fill="black", font=font(44))
    return image


@pytest.fixture(scope="module")
def agent():
    from assistant.engines import open_engine

    settings = Settings()
    engine = open_engine(settings.engine)
    return for_settings(engine, build(settings.tools, engine=lambda: engine), settings.agent,
                       settings.generation)


def ask(agent, text, image):
    conv = Conversation()
    conv.add_user(text, [image])
    events = list(agent.run(conv))
    tools = [e.tool for e in events if isinstance(e, Step) and e.status == "done"]
    final = events[-1]
    assert isinstance(final, Final)
    return tools, final.text


def test_reading_a_sign_calls_ocr_and_answers_with_its_text(agent):
    tools, answer = ask(agent, "Read the text in this image.", sign())
    assert tools == ["ocr"] and "open 24 hours" in answer.lower()


def test_asking_what_animal_calls_the_classifier_and_answers_cat(agent):
    tools, answer = ask(agent, "What animal is this?",
                        Image.fromarray(skimage.data.chelsea()))
    assert tools == ["classify"] and "cat" in answer.lower()


@pytest.mark.parametrize("question,image,expected", [
    ("Read the text in this image.", "sign", "open 24 hours"),
    ("What animal is this?", "chelsea", "cat"),
])
def test_the_chat_command_does_the_same(tmp_path, question, image, expected):
    path = tmp_path / f"{image}.png"
    (sign() if image == "sign" else Image.fromarray(skimage.data.chelsea())).save(path)
    done = subprocess.run([sys.executable, "-m", "assistant", "chat", "--agent", "--image",
                           str(path), question], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout.lower() or expected in done.stdout, (done.stdout, done.stderr)
    assert "[step 1]" in done.stderr
