"""Exporting a chat: one JSON or Markdown file holds the turns and every image."""

from __future__ import annotations

import base64
import io
import json

from PIL import Image

from assistant.conversation import Conversation
from assistant.export import to_json, to_markdown


def chat() -> Conversation:
    conv = Conversation()
    conv.add_user("What is in #1?", [Image.new("RGB", (8, 4), (200, 10, 10))], ["red.png"])
    conv.add_image(Image.new("RGB", (4, 8), (10, 10, 200)), name="2_edit_image_1")
    conv.add_assistant("A red box; rotated it is #2.")
    return conv


def test_json_holds_the_turns_and_every_image_exactly():
    data = json.loads(to_json(chat()))
    assert data["format"] == "multimodal-assistant-chat"
    assert [(t["role"], t["images"]) for t in data["turns"]] == [("user", ["#1"]),
                                                                  ("assistant", [])]
    assert set(data["images"]) == {"#1", "#2"}
    for handle, ref in chat().images.items():
        saved = data["images"][handle]
        image = Image.open(io.BytesIO(base64.b64decode(saved["png_base64"])))
        assert image.tobytes() == ref.image.tobytes() and saved["name"] == ref.name
        assert saved["sha256"] == ref.sha256


def test_markdown_shows_each_image_where_it_first_appears():
    text = to_markdown(chat())
    assert text.count("data:image/png;base64,") == 2
    assert text.index("*#1* `red.png`") < text.index("What is in #1?")
    assert text.index("A red box") > text.index("*#2* `2_edit_image_1`") > \
        text.index("What is in #1?")


def test_an_exported_chat_imports_back_and_a_bad_file_is_refused_clearly():
    import pytest

    from assistant.export import BadExport, from_json

    conv = chat()
    back = from_json(to_json(conv))
    assert [(t.role, t.text, t.images) for t in back.turns] == \
        [(t.role, t.text, t.images) for t in conv.turns]
    assert back.next_number == 3
    assert all(back.images[h].image.tobytes() == r.image.tobytes() for h, r in conv.images.items())
    data = json.loads(to_json(conv))
    data["turns"][0]["images"] = ["#7"]
    for bad, says in [("not json", "not JSON"), ('{"format": "other"}', "not a multimodal"),
                      (json.dumps(data), "shows #7, not in the file")]:
        with pytest.raises(BadExport, match=says):
            from_json(bad)


def test_an_import_whose_pictures_hold_too_many_pixels_is_refused_before_any_is_decoded(
        monkeypatch):
    """A 20 MB file holds a hundred plain 40-megapixel pictures (15 GB decoded): the pixels
    are counted from the headers first."""
    import pytest

    from assistant import export

    conv = chat()  # 8x4 and 4x8: 64 pixels in all
    monkeypatch.setattr(export, "load_image", lambda *a, **k: pytest.fail("decoded"))
    with pytest.raises(export.BadExport, match="over 63 pixels together"):
        export.from_json(export.to_json(conv), max_pixels_in_all=63)
    monkeypatch.undo()
    back = export.from_json(export.to_json(conv), max_pixels_in_all=64)
    assert set(back.images) == {"#1", "#2"}
