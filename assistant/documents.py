"""What comes in as an attachment: a picture (assistant/images.py reads it) or a PDF, whose
pages become pictures, each with its text layer kept beside it.

`load_attachment(source, name, limits)` sniffs the bytes (a PDF has `%PDF-` within its first
1024 bytes; the file name is only a label) and returns one `Attachment` for a picture, or one
per page taken from a PDF: the page rendered to RGB (150 dpi, scaled down to stay within
`max_image_pixels` and `MAX_SIDE` pixels a side) and its text layer as lines, each with its
box in the page picture's pixels (top-left origin), so that a reading tool can use the text
instead of OCR. Only the first `max_pdf_pages` pages are taken, and the note says so.

PDFs are read with PDFium (pypdfium2), which runs no script unless forms are initialised:
they never are here. A PDF holding JavaScript is read all the same, and its note says the
script was not run. Every refusal is a `BadDocument` (a kind of BadImage) naming the file and
what to do: protected by a password, damaged or cut short, empty, without pages, over the
byte limit, or with a page far beyond any paper size.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from assistant.errors import BadDocument, BadImage
from assistant.images import FORMATS, load_image

if TYPE_CHECKING:
    from assistant.config import InputLimits

SNIFF = 1024  # a PDF's header may come after some junk; PDFium reads it there too
DPI = 150  # pages are rendered at this resolution, unless that is too many pixels
MAX_SIDE = 2200  # the longest side of a page picture, in pixels
GIANT = 5000 / 25.4 * 72  # 5 m in points: no paper is that big (A0 is 1.19 m)
POINTS = 72  # PDF units per inch
GAP = 1.5  # a gap this many line heights wide splits a line (table cells, columns)
_PDFIUM = threading.Lock()  # PDFium is not thread-safe: one document at a time
_SCRIPT = re.compile(rb"/(?:JavaScript|JS)(?![A-Za-z0-9])")
_NO_PAGES, _SOME_PAGES = re.compile(rb"/Count\s*0(?![0-9])"), re.compile(rb"/Count\s*[1-9]")


@dataclass(frozen=True)
class Page:
    """Where a picture came from when it was a PDF's page, and that page's text layer."""

    document: str  # the file's name, "invoice.pdf"
    number: int  # 1-based
    count: int  # pages in the document
    # the text layer: {"text": str, "box": [x0, y0, x1, y1]} in the page picture's pixels,
    # in reading order, a line each (a table's cells each their own); () for a scan
    lines: tuple[dict, ...] = field(default=(), hash=False)  # dicts: compared, not hashed

    def to_json(self) -> dict:
        return {"document": self.document, "number": self.number, "count": self.count,
                "lines": [dict(line) for line in self.lines]}

    @classmethod
    def from_json(cls, data: dict) -> Page:
        return cls(str(data["document"]), int(data["number"]), int(data["count"]),
                   tuple({"text": str(line["text"]), "box": [int(v) for v in line["box"]]}
                         for line in data.get("lines", ())))


@dataclass(frozen=True)
class Attachment:
    """One picture for the chat: an image file, or one page of a PDF."""

    image: Image.Image = field(repr=False)
    name: str  # "photo.png", or "invoice.pdf p2" for a page
    page: Page | None = None
    note: str = ""  # what the user should know (pages taken, a script not run, a first frame)


def is_pdf(head: bytes) -> bool:
    return b"%PDF-" in head[:SNIFF]


def load_attachment(source: str | Path | bytes, name: str | None,
                    limits: InputLimits) -> list[Attachment]:
    """The pictures an attachment gives: one for an image, one per page taken for a PDF.
    Raises BadImage (BadDocument for a PDF) naming the file and the reason."""
    if isinstance(source, bytes):
        name = name or "upload"
        head = source[:SNIFF]
    else:
        path = Path(source)
        name = name or path.name
        if not path.is_file():
            raise BadImage(name, "no such file")
        with open(path, "rb") as f:
            head = f.read(SNIFF)
    if not head and name.lower().endswith(".pdf"):  # nothing to sniff: say it as a PDF
        raise BadDocument(name, "the file is empty (0 bytes); save it again and send it")
    if not is_pdf(head):
        try:
            image = load_image(source, name=name, max_bytes=limits.max_image_bytes,
                               max_pixels=limits.max_image_pixels,
                               max_side=limits.max_image_side)
        except BadImage as e:
            if e.reason.startswith("not an image in a known format"):
                raise BadImage(name, f"not an image in a known format ({', '.join(FORMATS)})"
                                     " nor a PDF") from None
            raise
        return [Attachment(image, name, None, image.info.get("note", ""))]
    if isinstance(source, bytes):
        data = source
    else:
        size = Path(source).stat().st_size
        if size > limits.max_image_bytes:
            raise BadDocument(name, f"it is {size:,} bytes; the limit is "
                                    f"{limits.max_image_bytes:,} (max_image_bytes)")
        data = Path(source).read_bytes()
    return load_pdf(data, name, limits)


def load_pdf(data: bytes, name: str, limits: InputLimits) -> list[Attachment]:
    """A PDF's first `max_pdf_pages` pages as pictures with their text layers."""
    if not data:
        raise BadDocument(name, "the file is empty (0 bytes); save it again and send it")
    if len(data) > limits.max_image_bytes:
        raise BadDocument(name, f"it is {len(data):,} bytes; the limit is "
                                f"{limits.max_image_bytes:,} (max_image_bytes)")
    import pypdfium2 as pdfium

    with _PDFIUM:
        try:
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as e:
            raise _refusal(name, e, data) from None
        try:
            count = len(document)
            if count < 1:
                raise BadDocument(name, "it has no pages; send a PDF with at least one page")
            taken = min(count, limits.max_pdf_pages)
            sizes = [document.get_page_size(i) for i in range(taken)]
            for number, (width, height) in enumerate(sizes, 1):
                if max(width, height) > GIANT:
                    raise BadDocument(
                        name, f"page {number} is {width / POINTS * 0.0254:,.1f} x "
                              f"{height / POINTS * 0.0254:,.1f} m, far beyond any paper size "
                              "(at most 5 m a side); export it at a paper size and send it "
                              "again")
            scripted = _has_script(document, data)
            pages = [_page(document, i, name, count, limits.max_image_pixels)
                     for i in range(taken)]
        except pdfium.PdfiumError as e:
            raise BadDocument(name, f"a page could not be read ({e}); the file may be "
                                    "damaged: save or print it to PDF again") from None
        finally:
            document.close()
    notes = []
    if taken < count:
        which = f"pages 1-{taken} were" if taken > 1 else "page 1 was"
        notes.append(f"{name} has {count:,} pages; {which} taken (max_pdf_pages).")
    else:
        notes.append(f"{name}: 1 page, as a picture." if count == 1 else
                     f"{name}: {count} pages, one picture each.")
    if scripted:
        notes.append(f"{name} holds JavaScript, which was not run.")
    note = " ".join(notes)
    return [Attachment(image, f"{name} p{page.number}", page, note if page.number == 1 else "")
            for image, page in pages]


def _refusal(name: str, error, data: bytes) -> BadDocument:
    import pypdfium2.raw as pdfium_c

    code = getattr(error, "err_code", None)  # PDFium's last error: now and then an older one
    if code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY) and b"/Encrypt" in data:
        return BadDocument(name, "it is protected by a password; remove the password (print "
                                 "to PDF) and send it again")
    if code == pdfium_c.FPDF_ERR_SUCCESS or (_NO_PAGES.search(data) and not
                                             _SOME_PAGES.search(data)):
        # PDFium opens no document without a page (and says why only now and then)
        return BadDocument(name, "it has no pages; send a PDF with at least one page")
    return BadDocument(name, "it is damaged or cut short, not a PDF that can be read; save "
                             "or print it to PDF again and send it")


def _has_script(document, data: bytes) -> bool:
    """Document-level JavaScript (PDFium's count), or an action's (/JavaScript, /JS)."""
    import pypdfium2.raw as pdfium_c

    try:
        if pdfium_c.FPDFDoc_GetJavaScriptActionCount(document) > 0:
            return True
    except AttributeError:  # a build of PDFium without it: the bytes say it
        pass
    return _SCRIPT.search(data) is not None


def _page(document, index: int, name: str, count: int,
          max_pixels: int) -> tuple[Image.Image, Page]:
    page = document[index]
    try:
        width, height = page.get_size()
        scale = min(DPI / POINTS, MAX_SIDE / max(width, height, 1e-6),
                    (max_pixels / max(width * height, 1e-6)) ** 0.5)
        while scale > 1e-4 and (math.ceil(width * scale) * math.ceil(height * scale) >
                                max_pixels or math.ceil(max(width, height) * scale) > MAX_SIDE):
            scale *= 0.995  # PDFium rounds each side up: keep within the bounds
        bitmap = page.render(scale=scale, may_draw_forms=False)
        try:
            image = bitmap.to_pil().convert("RGB")
        finally:
            bitmap.close()
        text = page.get_textpage()
        try:
            lines = _lines(page, text, image.size)
        finally:
            text.close()
    finally:
        page.close()
    return image, Page(name, index + 1, count, tuple(lines))


def _lines(page, text, size: tuple[int, int]) -> list[dict]:
    """The text layer as lines (PDFium breaks lines where the page's text does; a wide gap,
    between a table's cells or columns, splits one), each with the union of its characters'
    boxes in the picture's pixels."""
    import ctypes

    import pypdfium2.raw as pdfium_c

    def device(x: float, y: float) -> tuple[int, int]:
        dx, dy = ctypes.c_int(), ctypes.c_int()
        pdfium_c.FPDF_PageToDevice(page, 0, 0, size[0], size[1], 0, x, y, dx, dy)
        return dx.value, dy.value

    lines: list[dict] = []
    units: list[int] = []
    box: list[float] | None = None

    def end() -> None:
        nonlocal units, box
        words = " ".join("".join(map(chr, units)).encode("utf-16", "surrogatepass")
                         .decode("utf-16", "replace").split())
        if words and box is not None:
            (x0, y0), (x1, y1) = device(box[0], box[3]), device(box[2], box[1])
            lines.append({"text": words, "box": [max(0, min(x0, x1)), max(0, min(y0, y1)),
                                                 min(size[0], max(x0, x1)),
                                                 min(size[1], max(y0, y1))]})
        units, box = [], None

    for i in range(text.count_chars()):
        unit = pdfium_c.FPDFText_GetUnicode(text, i)
        if unit in (0x0D, 0x0A):  # a line break (PDFium writes one where a line ends)
            end()
            continue
        if unit < 0x20 and unit != 0x09:  # other control characters: nothing to read
            continue
        if unit in (0x20, 0x09):  # spaces have no box worth keeping
            units.append(unit)
            continue
        left, bottom, right, top = text.get_charbox(i)
        if right > left or top > bottom:
            if box is not None and left - box[2] > GAP * max(top - bottom, box[3] - box[1]):
                end()  # far along the line: another cell of a table, another column
            box = [left, bottom, right, top] if box is None else [
                min(box[0], left), min(box[1], bottom), max(box[2], right), max(box[3], top)]
        units.append(unit)
    end()
    return lines
