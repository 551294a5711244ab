"""Upload validation: every bad file is refused with its name and the reason."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from assistant.errors import BadImage
from assistant.images import load_image


def png_bytes(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("data, reason", [
    (b"", "empty"),
    (b"hello, I am text", "not an image"),
    (png_bytes(Image.new("RGB", (64, 64)))[:60], "truncated or corrupt"),
])
def test_bad_bytes_are_refused_with_name_and_reason(data, reason):
    with pytest.raises(BadImage, match=reason) as err:
        load_image(data, name="holiday.png")
    assert "'holiday.png'" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(BadImage, match="no such file"):
        load_image(tmp_path / "gone.jpg")


def test_limits_on_bytes_and_pixels():
    data = png_bytes(Image.new("RGB", (300, 300)))
    with pytest.raises(BadImage, match="bytes; the limit is 100"):
        load_image(data, max_bytes=100)
    with pytest.raises(BadImage, match="90,000 pixels; the limit is 1,000"):
        load_image(data, max_pixels=1000)


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "LA", "CMYK", "I;16"])
def test_modes_become_rgb(mode):
    fmt = "TIFF" if mode == "CMYK" else "PNG"
    img = load_image(png_bytes(Image.new(mode, (10, 8)), fmt))
    assert img.mode == "RGB" and img.size == (10, 8)


def test_transparent_pixels_become_white():
    img = load_image(png_bytes(Image.new("RGBA", (4, 4), (255, 0, 0, 0))))
    assert img.getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = png_bytes(Image.new("RGB", (40, 20)), "JPEG", exif=exif)
    assert load_image(data).size == (20, 40)


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    img = load_image(buf.getvalue())
    assert img.getpixel((0, 0))[0] > 200
