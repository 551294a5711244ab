"""What a request's pictures will cost once decoded, in pixels, read before any is decoded:
an image's size from its header, a PDF's pages from their sizes in points at the resolution
they would be rendered at (assistant/documents.py), its first `max_pdf_pages` only.

`request_pixels(sources, limits)` sums them over every file of one message (the browser) or
one request (the API) and refuses past `max_request_pixels` (OverLimit), so that eight
40 MP pictures are refused from their headers in milliseconds instead of decoded in 20 s
with gigabytes. A file that is neither counts nothing here: loading it refuses it, in words.
Not here: the decoding itself (assistant/images.py) and the server-wide memory budget
(assistant/memory_budget.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.documents import _PDFIUM, DPI, MAX_SIDE, POINTS, SNIFF, is_pdf
from assistant.errors import OverLimit
from assistant.images import header_size

if TYPE_CHECKING:
    from assistant.config import InputLimits


def attachment_pixels(source: str | Path | bytes, limits: InputLimits) -> int:
    """The pixels `source` decodes to (a PDF: its pages taken, rendered), from headers."""
    if isinstance(source, bytes):
        head = source[:SNIFF]
    else:
        try:
            with open(source, "rb") as f:
                head = f.read(SNIFF)
        except OSError:
            return 0
    if is_pdf(head):
        return _pdf_pixels(source, limits)
    size = header_size(source)
    return size[0] * size[1] if size else 0


def _pdf_pixels(source: str | Path | bytes, limits: InputLimits) -> int:
    import pypdfium2 as pdfium

    with _PDFIUM:
        try:
            document = pdfium.PdfDocument(source if isinstance(source, bytes) else str(source))
        except (pdfium.PdfiumError, OSError):
            return 0
        try:
            sizes = [document.get_page_size(i)
                     for i in range(min(len(document), limits.max_pdf_pages))]
        except pdfium.PdfiumError:
            return 0
        finally:
            document.close()
    total = 0
    for width, height in sizes:
        width, height = max(width, 1e-6), max(height, 1e-6)
        scale = min(DPI / POINTS, MAX_SIDE / max(width, height))
        total += min(limits.max_image_pixels, round(width * scale) * round(height * scale))
    return total


def request_pixels(sources: Sequence[str | Path | bytes], limits: InputLimits) -> int:
    """The pixels of all `sources` together, or OverLimit past `max_request_pixels`."""
    total = sum(attachment_pixels(s, limits) for s in sources)
    if total > limits.max_request_pixels:
        raise OverLimit("the pixels of the pictures together (each PDF page one picture)",
                        total, limits.max_request_pixels, "max_request_pixels")
    return total
