"""PDFs made for the tests: with a text layer (fpdf2), an image-only page (a scan), and the bad
ones a user may send (protected, cut short, scripted, giant, thousands of pages). Used by
tests/test_documents.py and the CLI, API and browser tests."""

from __future__ import annotations

from PIL import Image, ImageDraw

INVOICE = ["Invoice 2041", "Total due: 17.50 EUR"]


def _pdf(**options):
    from fpdf import FPDF

    pdf = FPDF(**options)
    pdf.set_font("helvetica", size=16)
    pdf.set_auto_page_break(False)
    return pdf


def scan() -> Image.Image:
    """A picture of a page: text drawn as pixels, no text layer."""
    image = Image.new("RGB", (400, 300), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 20, 380, 80), outline="black", width=3)
    draw.text((40, 40), "SCANNED RECEIPT", fill="black")
    return image


def invoice(scanned_page: bool = True) -> bytes:
    """Page 1: two lines of text (a text layer); page 2: a scan (only a picture)."""
    pdf = _pdf()
    pdf.add_page()
    for i, line in enumerate(INVOICE):
        pdf.text(20, 30 + 15 * i, line)
    if scanned_page:
        pdf.add_page()
        pdf.image(scan(), x=10, y=10, w=120)
    return bytes(pdf.output())


def pages(count: int) -> bytes:
    """`count` small pages, each saying its number."""
    pdf = _pdf(unit="pt", format=(200, 100))
    for n in range(1, count + 1):
        pdf.add_page()
        pdf.text(20, 50, f"page {n}")
    return bytes(pdf.output())


def protected() -> bytes:
    pdf = _pdf()
    pdf.add_page()
    pdf.text(20, 30, "secret")
    pdf.set_encryption(owner_password="owner", user_password="user")
    return bytes(pdf.output())


def giant() -> bytes:
    """A page 7 m a side (20,000 points)."""
    pdf = _pdf(unit="pt", format=(20_000, 20_000))
    pdf.add_page()
    pdf.text(100, 100, "huge")
    return bytes(pdf.output())


def large() -> bytes:
    """A page 2 x 1 m: larger than paper, rendered scaled down."""
    pdf = _pdf(unit="mm", format=(2000, 1000))
    pdf.add_page()
    pdf.set_font("helvetica", size=400)
    pdf.text(100, 300, "POSTER")
    return bytes(pdf.output())


def raw(catalog: bytes = b"", objects: tuple[bytes, ...] = ()) -> bytes:
    """A one-page PDF written by hand (objects 4... are `objects`), xref and all."""
    body = [b"<< /Type /Catalog /Pages 2 0 R " + catalog + b">>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] >>", *objects]
    out, offsets = bytearray(b"%PDF-1.7\n"), []
    for number, obj in enumerate(body, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(body) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(body) + 1,
                                                                              xref)
    return bytes(out)


def scripted_on_open() -> bytes:
    """JavaScript run when the document opens (an OpenAction), were scripts run."""
    return raw(b"/OpenAction 4 0 R ", (b"<< /S /JavaScript /JS (app.alert\\('hi'\\);) >>",))


def scripted_document() -> bytes:
    """Document-level JavaScript (the names tree), which PDFium counts."""
    return raw(b"/Names << /JavaScript 4 0 R >> ",
               (b"<< /Names [(greet) 5 0 R] >>", b"<< /S /JavaScript /JS (app.alert\\(1\\);) >>"))


def empty_document() -> bytes:
    """A well-formed PDF with no page at all."""
    import io

    import pypdfium2 as pdfium

    out = io.BytesIO()
    document = pdfium.PdfDocument.new()
    document.save(out)
    document.close()
    return out.getvalue()


def table() -> bytes:
    """A paragraph, then a table of three columns: each cell its own segment of text."""
    pdf = _pdf()
    pdf.set_font("helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 6, "Groceries bought on Saturday, with what each cost.")
    with pdf.table() as grid:
        for cells in (("Item", "Qty", "Price"), ("Bread", "2", "3.60"), ("Milk", "1", "1.20")):
            row = grid.row()
            for cell in cells:
                row.cell(cell)
    return bytes(pdf.output())


def rotated() -> bytes:
    """The invoice's first page, turned a quarter (/Rotate 90) as a scanner may leave it."""
    import re

    return re.sub(rb"/Type /Page(?!s)", b"/Type /Page /Rotate 90", invoice(False), count=1)
