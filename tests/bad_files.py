"""A corpus of files users upload: refused ones with the reason each must be refused for,
and odd but valid ones that must come back as ordinary RGB pictures. Used through the
browser session layer (tests/test_bad_inputs.py) and the API (tests/test_api.py)."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def _picture(mode: str = "RGB") -> Image.Image:
    image = Image.new("RGB", (48, 32), (30, 120, 220))
    image.paste((220, 40, 40), (8, 8, 24, 24))
    return image.convert(mode)


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def _noise_png() -> bytes:
    return _encoded(Image.effect_noise((96, 96), 90).convert("RGB"), "PNG")


def refused() -> list[tuple[str, bytes, str]]:
    """(file name, bytes, what the refusal must say)."""
    png, jpeg = _noise_png(), _encoded(Image.effect_noise((96, 96), 90).convert("RGB"), "JPEG")
    return [
        ("empty.png", b"", "empty (0 bytes)"),
        ("notes.jpg", b"shopping list: eggs, milk\n", "not an image"),
        ("invoice.pdf", b"<!doctype html><html>an invoice</html>", "nor a PDF"),
        ("page.png", b"<!doctype html><html><body>hi</body></html>", "not an image"),
        ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>',
         "not an image"),
        ("scan.png", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n",
         "damaged or cut short"),  # read as the PDF it is, whatever its name: a broken one
        ("archive.png", b"PK\x03\x04" + b"\x00" * 60, "not an image"),
        ("half.png", png[: len(png) // 2], "truncated or corrupt"),
        ("half.jpg", jpeg[: len(jpeg) // 2], "truncated or corrupt"),
        ("bomb.png", _png_claiming(70_000, 70_000), "the limit is"),
        ("tall.png", _png_claiming(1, 50_000_000), "the limit is"),
        ("photo.ico", _encoded(_picture(), "ICO"), "format ICO is not supported"),
    ]


def accepted() -> list[tuple[str, bytes, tuple[int, int]]]:
    """(file name, bytes, the size the RGB picture must have)."""
    frames = [_picture(), Image.new("RGB", (48, 32), (0, 200, 0))]
    animated = io.BytesIO()
    frames[0].save(animated, format="GIF", save_all=True, append_images=frames[1:],
                   duration=100, loop=0)
    rotated = _picture()
    exif = rotated.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    palette_alpha = _picture("P")
    palette_alpha.info["transparency"] = 0
    return [
        ("cmyk.jpg", _encoded(_picture("CMYK"), "JPEG"), (48, 32)),
        ("sixteen-bit.png", _encoded(_picture("L").convert("I;16"), "PNG"), (48, 32)),
        ("palette-alpha.png", _encoded(palette_alpha, "PNG", transparency=0), (48, 32)),
        ("alpha.webp", _encoded(_picture("RGBA"), "WEBP"), (48, 32)),
        ("animated.gif", animated.getvalue(), (48, 32)),
        ("rotated.jpg", _encoded(rotated, "JPEG", exif=exif), (32, 48)),
        ("grey.tif", _encoded(_picture("L"), "TIFF"), (48, 32)),
        ("../../outside/../escape.png", _encoded(_picture(), "PNG"), (48, 32)),
    ]
