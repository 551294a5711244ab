"""Paper documents for the documents evaluation, made from a spec: a PDF with a text layer, a
photo of the paper on a desk (turned, grainy, unevenly lit), or a scan (a PDF whose pages are
only pictures). It owns the drawing; reading and checking a set is documents.py's.

One layout for all three: the page is laid out once as a PDF (fpdf2, the PDF standard
Helvetica in the Windows-1252 encoding, so accents, €, £ and ß need no font file on the
machine), and the pictures are that page rendered by PDFium (pypdfium2, which carries the
standard fonts itself). A spec's item: text, x and y in mm from the paper's top-left (y is the
top of the line), size in points, bold, align left (x is the left edge) / right (x is the
right edge) / center (x is the middle).

The randomness (background, light, grain) is seeded from the document's id: a document looks
the same on every run and every machine.
"""

from __future__ import annotations

import io
import math
import random
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

PX_PER_MM = 9.0  # a phone photo of a receipt: ~230 dpi on the paper
SCAN_PX_PER_MM = 200 / 25.4  # a 200 dpi office scan
MAX_SIDE = 2600  # the paper's longest side in a photo, in pixels (A4 comes out at ~8.7 px/mm)
PT = 25.4 / 72  # mm per point
ENCODING = "windows-1252"  # what the standard fonts can show
DESKS = [(121, 85, 58), (150, 111, 77), (88, 92, 99), (60, 66, 84), (178, 170, 160),
         (45, 45, 48)]


def unprintable(text: str) -> str:
    """The characters of `text` the standard fonts cannot show ("" when all can)."""
    return "".join(sorted({c for c in text if not _encodable(c)}))


def _encodable(c: str) -> bool:
    try:
        c.encode(ENCODING)
    except UnicodeEncodeError:
        return False
    return c.isprintable()


def pdf_bytes(doc: dict) -> bytes:
    """The document as a PDF with a text layer, one PDF page per spec page."""
    from fpdf import FPDF

    width, height = doc["paper"]
    pdf = FPDF(unit="mm", format=(width, height))
    pdf.core_fonts_encoding = ENCODING
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.set_creator("assistant.eval.paper")
    pdf.set_title(doc.get("id", "document"))
    for page in doc["pages"]:
        pdf.add_page()
        for item in page["items"]:
            pdf.set_font("Helvetica", "B" if item.get("bold") else "", item["size"])
            w = pdf.get_string_width(item["text"])
            align = item.get("align", "left")
            left = item["x"] - (w if align == "right" else w / 2 if align == "center" else 0)
            # y is the top of the line; Helvetica's ascender is 0.718 of its size
            pdf.text(left, item["y"] + 0.75 * item["size"] * PT, item["text"])
    return bytes(pdf.output())


def page_images(doc: dict, px_per_mm: float) -> list[Image.Image]:
    """Each page rendered to an RGB picture at `px_per_mm`, white paper, no degradation."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(pdf_bytes(doc))
    try:
        return [pdf[i].render(scale=px_per_mm * 25.4 / 72).to_pil().convert("RGB")
                for i in range(len(pdf))]
    finally:
        pdf.close()


def _rng(doc: dict, salt: str = "") -> random.Random:
    return random.Random(zlib.crc32(f"{doc.get('id', '')}/{salt}".encode()))


def _light(size: tuple[int, int], strength: float, rng: random.Random) -> np.ndarray:
    """A smooth light field (1 at its brightest) falling off from a random point: the uneven
    light of a photo taken under a lamp."""
    w, h = size
    cx, cy = rng.uniform(-0.2, 1.2) * w, rng.uniform(-0.2, 1.2) * h
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.hypot(xs - cx, ys - cy) / math.hypot(w, h)
    return (1.0 - strength * np.clip(d, 0, 1) ** 1.5)[..., None]


def _grain(a: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    return a + np.random.default_rng(seed).normal(0, sigma, a.shape).astype(np.float32)


def photo(doc: dict) -> Image.Image:
    """A photo of the (one-page) document: the paper off-white, on a desk, turned by
    `rotate` degrees, then `noise` (0 clean .. 1 grainy, unevenly lit, slightly blurred)."""
    rng = _rng(doc, "photo")
    noise = float(doc.get("noise", 0.0))
    width, height = doc["paper"]
    scale = min(PX_PER_MM, MAX_SIDE / max(width, height))
    page = page_images(doc, scale)[0]
    tint = np.array([rng.randint(244, 252), rng.randint(240, 249), rng.randint(228, 242)],
                    np.float32)
    paper = Image.fromarray((np.asarray(page, np.float32) * tint / 255).astype(np.uint8))
    pw, ph = paper.size
    margin_x, margin_y = int(pw * rng.uniform(0.08, 0.16)), int(ph * rng.uniform(0.06, 0.12))
    size = (pw + 2 * margin_x, ph + 2 * margin_y)
    desk = np.empty((size[1], size[0], 3), np.float32)
    desk[:] = rng.choice(DESKS)
    desk = _grain(desk, 6, rng.randrange(1 << 30))  # the desk's texture
    background = Image.fromarray(np.clip(desk, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(2))
    # the paper turned (with its shadow), on the desk
    angle = float(doc.get("rotate", 0.0))
    mask = Image.new("L", paper.size, 255)
    turned = paper.rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0))
    turned_mask = mask.rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=0)
    x = (size[0] - turned.size[0]) // 2 + rng.randint(-margin_x // 3, margin_x // 3)
    y = (size[1] - turned.size[1]) // 2 + rng.randint(-margin_y // 3, margin_y // 3)
    shadow = Image.new("L", size, 0)
    shadow.paste(turned_mask, (x + max(2, pw // 150), y + max(2, pw // 100)))
    shadow = shadow.filter(ImageFilter.GaussianBlur(max(3, pw // 80)))
    background = Image.composite(Image.new("RGB", size, (20, 20, 20)), background,
                                 shadow.point(lambda v: v * 0.45))
    background.paste(turned, (x, y), turned_mask)
    picture = np.asarray(background, np.float32)
    if noise > 0:
        picture = picture * _light(size, 0.45 * noise, rng)
        picture = _grain(picture, 14 * noise, rng.randrange(1 << 30))
    out = Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8))
    if noise > 0:
        out = out.filter(ImageFilter.GaussianBlur(0.3 + 0.9 * noise))
    return out


def scan_pages(doc: dict) -> list[Image.Image]:
    """Each page as a scanner sees it: greyish, turned by `rotate` degrees within the page
    (white where the scanner saw no paper), `noise` grain and speckles."""
    rng = _rng(doc, "scan")
    noise = float(doc.get("noise", 0.0))
    angle = float(doc.get("rotate", 0.0))
    pages = []
    for page in page_images(doc, SCAN_PX_PER_MM):
        grey = page.convert("L").rotate(angle, Image.Resampling.BICUBIC, fillcolor=255)
        a = np.asarray(grey, np.float32) * rng.uniform(0.94, 0.99)
        if noise > 0:
            a = _grain(a, 12 * noise, rng.randrange(1 << 30))
            speckles = np.random.default_rng(rng.randrange(1 << 30)).random(a.shape)
            a[speckles < 0.002 * noise] = 40
        img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
        if noise > 0:
            img = img.filter(ImageFilter.GaussianBlur(0.2 + 0.6 * noise))
        pages.append(img.convert("RGB"))
    return pages


def scan_pdf(doc: dict) -> bytes:
    """A PDF whose pages are only the scanned pictures (no text layer)."""
    from fpdf import FPDF

    width, height = doc["paper"]
    pdf = FPDF(unit="mm", format=(width, height))
    pdf.set_auto_page_break(False)
    pdf.set_creator("assistant.eval.paper (scan)")
    for img in scan_pages(doc):
        pdf.add_page()
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        pdf.image(buf, x=0, y=0, w=width, h=height)
    return bytes(pdf.output())


def filename(doc: dict) -> str:
    """The name the document is uploaded under: its own, or its id with the kind's suffix."""
    return doc.get("filename") or f"{doc['id']}.{'png' if doc['kind'] == 'photo' else 'pdf'}"


def render(doc: dict, folder: str | Path) -> Path:
    """Write the document into `folder` under its file name; the path written. A photo is
    saved as JPEG when its name says .jpg/.jpeg, PNG otherwise."""
    path = Path(folder) / filename(doc)
    if doc["kind"] == "photo":
        image = photo(doc)
        if path.suffix.lower() in (".jpg", ".jpeg"):
            image.save(path, "JPEG", quality=90)
        else:
            image.save(path, "PNG")
    elif doc["kind"] == "scan":
        path.write_bytes(scan_pdf(doc))
    else:
        path.write_bytes(pdf_bytes(doc))
    return path


def preview(doc: dict) -> Image.Image:
    """The pages side by side with a box round each item, for checking a spec by eye."""
    pages = page_images(doc, 4)
    for page_spec, img in zip(doc["pages"], pages, strict=True):
        draw = ImageDraw.Draw(img)
        for item in page_spec["items"]:
            draw.line([(item["x"] * 4, item["y"] * 4), (item["x"] * 4 + 6, item["y"] * 4)],
                      fill=(220, 0, 0), width=2)
    out = Image.new("RGB", (sum(p.width for p in pages) + 10 * len(pages), max(p.height
                                                                             for p in pages)),
                    (128, 128, 128))
    x = 0
    for p in pages:
        out.paste(p, (x, 0))
        x += p.width + 10
    return out
