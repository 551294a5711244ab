"""Turning user uploads into RGB PIL images: format sniffed from the bytes, size limits,
EXIF orientation, mode conversion, the first frame of an animation (with a note in
`image.info["note"]`). Every refusal is a `BadImage` naming the file and reason.

A picture longer than `max_side` pixels is kept at that long side (and its note says so):
neither the model (which sees a few hundred pixels a side) nor OCR (which reads at most 2,000)
uses more, and a 40 MP picture kept whole costs 120 MB per copy. A JPEG is decoded reduced
(its DCT scaled at decode: a quarter or less of the memory); other formats are reduced right
after decoding, before any further copy.
"""

from __future__ import annotations

import base64
import hashlib
import io
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from assistant.errors import BadImage

FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")


def load_image(
    source: str | Path | bytes,
    name: str | None = None,
    max_bytes: int = 20 * 1024 * 1024,
    max_pixels: int = 40_000_000,
    max_side: int = 0,
) -> Image.Image:
    """Read an image from a path or bytes; return it as RGB, EXIF-rotated, at most
    `max_side` pixels a side (0: as it is)."""
    if isinstance(source, bytes):
        data, name = source, name or "upload"
    else:
        path = Path(source)
        name = name or path.name
        if not path.is_file():
            raise BadImage(name, "no such file")
        size = path.stat().st_size
        if size > max_bytes:
            raise BadImage(name, f"it is {size:,} bytes; the limit is {max_bytes:,}")
        data = path.read_bytes()
    if not data:
        raise BadImage(name, "the file is empty (0 bytes)")
    if len(data) > max_bytes:
        raise BadImage(name, f"it is {len(data):,} bytes; the limit is {max_bytes:,}")
    try:
        with warnings.catch_warnings():  # damaged files: the refusal says it, not a warning
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as probe:
                fmt = probe.format
                w, h = probe.size
    except UnidentifiedImageError:
        raise BadImage(name, f"not an image in a known format ({', '.join(FORMATS)})") from None
    except Image.DecompressionBombError:
        raise BadImage(name, f"its header claims far more pixels than allowed; the limit is "
                             f"{max_pixels:,} pixels") from None
    except Exception as e:  # PIL raises many types for malformed headers
        raise BadImage(name, f"unreadable image header ({e})") from None
    if fmt not in FORMATS:
        raise BadImage(name, f"format {fmt} is not supported ({', '.join(FORMATS)})")
    if w * h > max_pixels:
        raise BadImage(name, f"it is {w}x{h} = {w * h:,} pixels; the limit is {max_pixels:,}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data))
            frames = getattr(img, "n_frames", 1)
            img.seek(0)
            large = max_side and max(w, h) > max_side
            if large and fmt == "JPEG":  # decoded at 1/2, 1/4 or 1/8 scale, still >= max_side
                img.draft(img.mode, _within((w, h), max_side))
            img.load()
            if large and img.mode in SHRINKABLE:  # before the copies that follow
                img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            img = ImageOps.exif_transpose(img)
    except Exception as e:
        raise BadImage(name, f"the image data is truncated or corrupt ({e})") from None
    if img.mode != "RGB":
        img = _to_rgb(img)
    if large and max(img.size) > max_side:  # modes reduced only once they are RGB
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    notes = []
    if large:  # said to the user with the upload (assistant/session.py)
        notes.append(f"{name} is {w}x{h}; it is used at {img.width}x{img.height} "
                     f"(max_image_side).")
    if frames > 1:
        notes.append(f"{name} is animated ({frames} frames); only the first frame is used.")
    if notes:
        img.info["note"] = " ".join(notes)
    return img


SHRINKABLE = ("RGB", "RGBA", "L", "LA", "CMYK")  # resampled as they are, before conversion


def _within(size: tuple[int, int], side: int) -> tuple[int, int]:
    """`size` scaled so that its long side is `side`."""
    scale = side / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def header_size(source: str | Path | bytes) -> tuple[int, int] | None:
    """An image's width and height from its header, nothing decoded; None if it is not an
    image Pillow knows (a PDF, or a refusal that load_image will word)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as probe:
                return probe.size
    except Exception:  # noqa: BLE001 - load_image says what is wrong with it
        return None


def _to_rgb(img: Image.Image) -> Image.Image:
    """Alpha onto white; palette, 16-bit, CMYK and grey to RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.point(lambda v: v / 256).convert("L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        return background
    return img.convert("RGB")


def digest(img: Image.Image) -> str:
    """sha256 of the pixels and size: the same picture gets the same id."""
    h = hashlib.sha256(f"{img.mode}{img.size}".encode())
    h.update(img.tobytes())
    return h.hexdigest()


def png_base64(image: Image.Image) -> str:
    """The picture as PNG in base64 (data URLs, exports)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
