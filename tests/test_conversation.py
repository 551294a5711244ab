"""Image handles are stable for the whole chat; unknown handles are clear errors."""

from __future__ import annotations

import pytest
from PIL import Image

from assistant.conversation import Conversation
from assistant.errors import UnknownImage


def test_handles_survive_later_uploads_and_undo():
    conv = Conversation()
    a, b, c = (Image.new("RGB", (4, 4), (i, 0, 0)) for i in (1, 2, 3))
    assert conv.add_user("first", [a], ["a.png"]).images == ["#1"]
    conv.add_assistant("ok")
    assert conv.add_user("two more", [b, c]).images == ["#2", "#3"]
    conv.pop_last_exchange()
    assert conv.add_user("again", [c]).images == ["#4"]  # never reused
    assert conv.image("#1").image is a and conv.image("#1").name == "a.png"
    assert [t.role for t in conv.turns] == ["user", "assistant", "user"]


def test_mentions_are_checked():
    conv = Conversation()
    conv.add_user("x", [Image.new("RGB", (2, 2))])
    assert conv.mentioned("look at #1 and #1 again") == ["#1"]
    with pytest.raises(UnknownImage, match=r"no image #5 in this conversation \(images: #1\)"):
        conv.mentioned("and #5?")


def test_same_pixels_same_digest():
    conv = Conversation()
    conv.add_user("x", [Image.new("RGB", (2, 2)), Image.new("RGB", (2, 2))])
    assert conv.image("#1").sha256 == conv.image("#2").sha256
