"""The browser chat's example requests: each picture is made and readable; without
scikit-image (a test dependency) the photo examples are left out, the others stay."""

from __future__ import annotations

import builtins

from PIL import Image

from assistant import examples


def test_every_example_has_its_picture(tmp_path):
    made = examples.messages(tmp_path)
    assert len(made) == len(examples.EXAMPLES)
    for message, (text, name, _) in zip(made, examples.EXAMPLES, strict=True):
        assert message["text"] == text
        assert [Image.open(f).size > (0, 0) for f in message["files"]] == ([True] if name else [])


def test_without_scikit_image_the_photo_examples_are_left_out(tmp_path, monkeypatch):
    real = builtins.__import__

    def no_skimage(name, *args, **kwargs):
        if name.startswith("skimage"):
            raise ImportError("No module named 'skimage'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_skimage)
    made = examples.messages(tmp_path)
    texts = [m["text"] for m in made]
    assert "Read the text in this image." in texts and "What animal is this?" not in texts
    assert all(f.endswith(("sign.png", "shape.png")) for m in made for f in m["files"])
