"""The documents benchmark's inputs are what it says: a 10-page PDF with a text layer and a
scanned A4 page at 150 dpi."""

from __future__ import annotations

import pytest

from assistant.config import Settings
from assistant.documents import load_attachment
from bench.documents import scanned_a4, ten_pages

pytestmark = pytest.mark.unit


def test_the_pdf_has_ten_pages_with_a_text_layer():
    pages = load_attachment(ten_pages(), "prices.pdf", Settings().limits)
    assert [a.page.number for a in pages] == list(range(1, 11))
    assert all(any("Scone" in x["text"] for x in a.page.lines) for a in pages)


def test_the_scan_is_an_a4_page_at_150_dpi_turned_slightly():
    page = scanned_a4()
    assert page.width >= 1240 and page.height >= 1754 and page.width < 1300
