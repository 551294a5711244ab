"""Example messages for the browser chat, so a newcomer sees in one click what it can do:
each a request with its picture (made here: a rendered sign, an easy-VQA-style shape,
scikit-image's photos), written once into a folder the app serves from."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw


def _sign() -> Image.Image:
    from tools.drawing import font

    image = Image.new("RGB", (480, 120), "white")
    ImageDraw.Draw(image).text((20, 30), "OPEN 24 HOURS", fill="black", font=font(44))
    return image


def _shape() -> Image.Image:
    image = Image.new("RGB", (256, 256), "white")
    ImageDraw.Draw(image).ellipse((90, 90, 160, 160), fill=(0, 0, 255))
    return image


def _photo(name: str):
    def make() -> Image.Image:
        import skimage.data

        return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")

    return make


EXAMPLES = [  # (request, picture file, how to make it); None: no picture
    ("Read the text in this image.", "sign.png", _sign),
    ("What color is the shape?", "shape.png", _shape),
    ("What animal is this?", "cat.png", _photo("chelsea")),
    ("Find the faces in this photo.", "astronaut.png", _photo("astronaut")),
    ("Draw two red circles on a yellow background", None, None),
    ("Rotate this picture by 90 degrees", "sign.png", _sign),
]


def messages(folder: str | Path) -> list[dict]:
    """The examples as MultimodalTextbox values, their pictures written into `folder` (those
    whose picture cannot be made here are left out)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for text, name, make in EXAMPLES:
        files = []
        if name is not None:
            path = folder / name
            if not path.exists():
                try:
                    make().save(path)
                except ImportError:  # scikit-image (the photos) is a test dependency
                    continue
            files.append(str(path))
        out.append({"text": text, "files": files})
    return out
