"""Properties of the one image loader every upload goes through (UI, API, CLI, tools):
whatever the bytes, the answer is an RGB picture or a `BadImage` that names the file; never
another exception. Pictures in any mode and format come back RGB, at their size."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from assistant.errors import BadImage
from assistant.images import load_image

NAME = "holiday photo.png"
FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp", "BMP": "bmp",
           "TIFF": "tif"}
# modes each format can write, as Pillow saves them
MODES = {"PNG": ("RGB", "RGBA", "L", "LA", "P", "1", "I;16"), "JPEG": ("RGB", "L", "CMYK"),
         "GIF": ("P", "L"), "WEBP": ("RGB", "RGBA"), "BMP": ("RGB", "L", "P", "1"),
         "TIFF": ("RGB", "RGBA", "L", "CMYK", "I;16", "F", "LAB")}  # YCbCr: Pillow cannot read its own back
FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def _check(data: bytes):
    """The property: an RGB image, or a BadImage naming the file."""
    try:
        image = load_image(data, name=NAME, max_bytes=1 << 20, max_pixels=4_000_000)
    except BadImage as e:
        assert NAME in str(e) and str(e).strip()
        return None
    assert image.mode == "RGB" and image.width > 0 and image.height > 0
    image.tobytes()  # the pixels are really there
    return image


@st.composite
def pictures(draw):
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    mode = draw(st.sampled_from(MODES[fmt]))
    width, height = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    seed = draw(st.integers(0, 255))
    image = Image.new("RGB", (width, height), (seed, 255 - seed, (seed * 7) % 256))
    if width > 2 and height > 2:
        image.putpixel((1, 1), (0, 0, 0))
    image = image.convert(mode) if mode not in ("I;16", "F") else image.convert("L").convert(mode)
    out = io.BytesIO()
    image.save(out, format=fmt)
    return fmt, mode, (width, height), out.getvalue()


@FAST
@given(st.binary(max_size=2048))
def test_any_bytes_give_a_picture_or_a_named_refusal(data):
    _check(data)


@FAST
@given(pictures())
def test_every_mode_and_format_comes_back_rgb_at_its_size(picture):
    fmt, mode, size, data = picture
    image = _check(data)
    assert image is not None, (fmt, mode)
    assert image.size == size


@FAST
@given(pictures(), st.data())
def test_damaged_pictures_give_a_picture_or_a_named_refusal(picture, data):
    _, _, _, raw = picture
    damaged = bytearray(raw)
    how = data.draw(st.sampled_from(("truncate", "flip", "splice")))
    if how == "truncate":
        damaged = damaged[: data.draw(st.integers(0, max(0, len(raw) - 1)))]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            at = data.draw(st.integers(0, len(raw) - 1))
            damaged[at] ^= data.draw(st.integers(1, 255))
    else:
        at = data.draw(st.integers(0, len(raw)))
        damaged[at:at] = data.draw(st.binary(min_size=1, max_size=64))
    _check(bytes(damaged))


@pytest.mark.parametrize("width,height", [(70_000, 70_000), (1, 50_000_000)])
def test_a_decompression_bomb_is_refused_from_its_header(width, height):
    """A tiny PNG that claims billions of pixels is refused before any pixel is decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
           + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    with pytest.raises(BadImage, match="the limit is 40,000,000 pixels|pixels; the limit is 40,000,000"):
        load_image(png, name=NAME, max_pixels=40_000_000)
