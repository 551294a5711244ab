"""Drawing what tools report: named colours, a font that scales, boxes with labels."""

from __future__ import annotations

from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

# The colour words the drawing tools understand, with the RGB they draw.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "green": (30, 160, 60), "blue": (30, 70, 220),
    "yellow": (240, 210, 20), "orange": (245, 140, 20), "purple": (130, 50, 170),
    "pink": (245, 120, 180), "brown": (130, 80, 40), "black": (15, 15, 15),
    "white": (250, 250, 250), "gray": (128, 128, 128), "grey": (128, 128, 128),
    "cyan": (20, 200, 220), "teal": (0, 128, 128), "navy": (20, 30, 110),
    "magenta": (220, 30, 200), "gold": (212, 175, 55), "silver": (192, 192, 192),
    "beige": (235, 225, 200), "violet": (150, 90, 220), "lime": (140, 230, 40),
    "maroon": (128, 20, 30), "olive": (128, 128, 20),
}
# Box outlines cycle through these, so neighbouring boxes differ.
PALETTE = ["red", "lime", "blue", "yellow", "magenta", "cyan", "orange", "purple"]


@lru_cache(maxsize=16)
def font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=max(8, size))


def contrasting(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on `rgb`."""
    r, g, b = rgb
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def draw_boxes(image: Image.Image, boxes: list[tuple[list[float], str]]) -> Image.Image:
    """A copy of `image` with each (x0, y0, x1, y1) box outlined and its label on a tab."""
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    side = min(out.size)
    width = max(2, side // 150)
    f = font(max(12, side // 30))
    for i, (box, label) in enumerate(boxes):
        colour = COLOURS[PALETTE[i % len(PALETTE)]]
        x0, y0, x1, y1 = box
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=width)
        if label:
            left, top, right, bottom = draw.textbbox((0, 0), label, font=f)
            h = bottom - top + 4
            ty = y0 - h if y0 - h >= 0 else y0
            draw.rectangle([x0, ty, x0 + right - left + 6, ty + h], fill=colour)
            draw.text((x0 + 3, ty + 2 - top), label, fill=contrasting(colour), font=f)
    return out
