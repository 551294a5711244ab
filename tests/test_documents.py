"""PDFs wherever a picture goes: each page a picture of the chat with its own handle and its
text layer kept beside it (lines with boxes in the page picture's pixels); every bad PDF a
clear refusal naming the file and what to do; pages kept in history and exports."""

from __future__ import annotations

import io
import sqlite3

import numpy as np
import pytest
from PIL import Image

from assistant.config import Settings
from assistant.conversation import Conversation
from assistant.documents import MAX_SIDE, Page, load_attachment
from assistant.errors import BadDocument, BadImage, OverLimit
from tests import pdfs

LIMITS = Settings().limits


def test_each_page_becomes_a_picture_with_its_text_layer_in_pixels():
    first, second = load_attachment(pdfs.invoice(), "invoice.pdf", LIMITS)
    assert [a.name for a in (first, second)] == ["invoice.pdf p1", "invoice.pdf p2"]
    assert (first.page.document, first.page.number, first.page.count) == ("invoice.pdf", 1, 2)
    assert first.image.mode == "RGB" and first.image.size == (1241, 1754)  # A4 at 150 dpi
    assert [line["text"] for line in first.page.lines] == pdfs.INVOICE
    pixels = np.asarray(first.image.convert("L"))
    for line in first.page.lines:
        x0, y0, x1, y1 = line["box"]
        assert 0 <= x0 < x1 <= first.image.width and 0 <= y0 < y1 <= first.image.height
        assert pixels[y0:y1, x0:x1].min() < 100  # the text is drawn inside its box
        assert (pixels[max(0, y0 - 30):max(0, y0 - 5), x0:x1] > 200).all()  # nothing above
    top, below = (line["box"] for line in first.page.lines)
    assert top[3] <= below[1]  # reading order: the first line above the second
    assert second.page.lines == () and second.page.number == 2  # a scan: no text layer
    assert np.asarray(second.image.convert("L")).min() < 100  # but its picture is there
    assert first.note == "invoice.pdf: 2 pages, one picture each." and second.note == ""


def test_a_wide_gap_splits_a_line_so_table_cells_keep_their_own_boxes():
    (page,) = load_attachment(pdfs.table(), "groceries.pdf", LIMITS)
    texts = [line["text"] for line in page.page.lines]
    assert texts == ["Groceries bought on Saturday, with what each cost.", "Item", "Qty", "Price",
                     "Bread", "2", "3.60", "Milk", "1", "1.20"]
    boxes = {line["text"]: line["box"] for line in page.page.lines}
    assert boxes["Item"][2] < boxes["Qty"][0] < boxes["Qty"][2] < boxes["Price"][0]
    assert abs(boxes["3.60"][0] - boxes["Price"][0]) < 10  # a column lines up


def test_a_turned_page_has_its_boxes_where_its_text_is_drawn():
    (turned,) = load_attachment(pdfs.rotated(), "turned.pdf", LIMITS)
    assert turned.image.size == (1754, 1241)
    pixels = np.asarray(turned.image.convert("L"))
    assert sorted(line["text"] for line in turned.page.lines) == sorted(pdfs.INVOICE)
    for line in turned.page.lines:
        x0, y0, x1, y1 = line["box"]
        assert y1 - y0 > x1 - x0  # the text runs down the picture
        assert pixels[y0:y1, x0:x1].min() < 100


def test_pdfs_are_sniffed_by_their_bytes_never_their_name(tmp_path):
    pages = load_attachment(pdfs.invoice(scanned_page=False), "photo.png", LIMITS)
    assert [a.name for a in pages] == ["photo.png p1"] and pages[0].page is not None
    png = tmp_path / "report.pdf"
    Image.new("RGB", (30, 20), "red").save(png, format="PNG")
    (picture,) = load_attachment(png, None, LIMITS)
    assert picture.page is None and picture.name == "report.pdf" and picture.image.size == (30, 20)
    late = b"junk before the header\n" + pdfs.invoice(scanned_page=False)  # PDFium reads it
    assert load_attachment(late, "late.pdf", LIMITS)[0].page.lines
    path = tmp_path / "invoice.pdf"
    path.write_bytes(pdfs.invoice())
    assert [a.name for a in load_attachment(path, None, LIMITS)] == \
        ["invoice.pdf p1", "invoice.pdf p2"]


def test_only_the_first_max_pdf_pages_are_taken_and_the_note_says_which():
    limits = Settings(max_pdf_pages=5).limits
    taken = load_attachment(pdfs.pages(300), "book.pdf", limits)
    assert [a.page.number for a in taken] == [1, 2, 3, 4, 5]
    assert {a.page.count for a in taken} == {300}
    assert taken[0].note == "book.pdf has 300 pages; pages 1-5 were taken (max_pdf_pages)."
    assert [line["text"] for line in taken[4].page.lines] == ["page 5"]
    assert Settings().max_pdf_pages == 20


@pytest.mark.parametrize("name,data,says", [
    ("protected.pdf", pdfs.protected(), "is protected by a password; remove the password "
     "(print to PDF) and send it again"),
    ("cut.pdf", pdfs.invoice()[:400], "damaged or cut short"),
    ("empty.pdf", b"", "the file is empty (0 bytes)"),
    ("nothing.pdf", pdfs.empty_document(), "it has no pages"),
    ("stub.pdf", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n", "damaged"),
    ("giant.pdf", pdfs.giant(), "page 1 is 7.1 x 7.1 m, far beyond any paper size"),
])
def test_a_bad_pdf_is_refused_naming_the_file_and_what_to_do(name, data, says):
    with pytest.raises(BadDocument) as caught:
        load_attachment(data, name, LIMITS)
    assert str(caught.value).startswith(f"Cannot use '{name}' as a PDF: ")
    assert says in str(caught.value)
    assert isinstance(caught.value, BadImage)  # refused wherever a bad picture is


def test_a_pdf_over_the_byte_limit_is_refused_before_it_is_read(tmp_path):
    data = pdfs.invoice()
    limits = Settings(max_image_bytes=len(data) - 1).limits
    path = tmp_path / "big.pdf"
    path.write_bytes(data)
    for source in (data, path):
        with pytest.raises(BadDocument, match=f"'big.pdf' as a PDF: it is {len(data):,} bytes; "
                                              "the limit is"):
            load_attachment(source, "big.pdf", limits)


def test_a_text_file_named_pdf_is_neither_a_picture_nor_a_pdf():
    with pytest.raises(BadImage, match="not an image in a known format .* nor a PDF"):
        load_attachment(b"shopping list", "list.pdf", LIMITS)


def test_large_pages_are_rendered_scaled_down_within_the_limits():
    (poster,) = load_attachment(pdfs.large(), "poster.pdf", LIMITS)
    assert poster.image.width == MAX_SIDE and abs(poster.image.height - MAX_SIDE // 2) <= 1
    (text,) = poster.page.lines
    assert text["text"] == "POSTER" and text["box"][2] <= MAX_SIDE
    small = Settings(max_image_pixels=100_000).limits
    (page,) = load_attachment(pdfs.invoice(scanned_page=False), "a4.pdf", small)
    assert page.image.width * page.image.height <= 100_000
    assert [line["text"] for line in page.page.lines] == pdfs.INVOICE


@pytest.mark.parametrize("data", [pdfs.scripted_on_open(), pdfs.scripted_document()],
                         ids=["open-action", "document-level"])
def test_javascript_is_never_run_and_the_note_says_so(data, monkeypatch):
    import pypdfium2

    def never(*_, **__):  # scripts run only in PDFium's form environment: never made here
        raise AssertionError("forms were initialised")

    monkeypatch.setattr(pypdfium2.PdfDocument, "init_forms", never)
    (page,) = load_attachment(data, "form.pdf", LIMITS)
    assert page.note == "form.pdf: 1 page, as a picture. form.pdf holds JavaScript, which was " \
                        "not run."
    assert page.image.size == (417, 209)  # 200 x 100 points at 150 dpi


def test_a_conversation_keeps_each_page_under_its_own_handle():
    conv = Conversation()
    conv.add_user("hi", [Image.new("RGB", (4, 4))], ["a.png"])  # an existing caller
    taken = load_attachment(pdfs.invoice(), "invoice.pdf", LIMITS)
    turn = conv.add_user("total?", [a.image for a in taken], [a.name for a in taken],
                         [a.page for a in taken])
    assert turn.images == ["#2", "#3"]
    assert conv.image("#1").page is None
    assert conv.image("#2").page.lines[1]["text"] == "Total due: 17.50 EUR"
    assert conv.image("#3").name == "invoice.pdf p2" and conv.image("#3").page.lines == ()


def test_pages_survive_a_json_export_and_import():
    from assistant.export import from_json, to_json

    conv = Conversation()
    taken = load_attachment(pdfs.invoice(), "invoice.pdf", LIMITS)
    conv.add_user("total?", [a.image for a in taken], [a.name for a in taken],
                  [a.page for a in taken])
    back = from_json(to_json(conv))
    assert back.image("#1").page == conv.image("#1").page
    assert back.image("#1").page.lines == conv.image("#1").page.lines
    assert back.image("#2").page.lines == ()


# -- the chat: session, store -------------------------------------------------------------

@pytest.fixture
def chat(engines, tmp_path):
    from assistant.session import ChatSession
    from assistant.store import Store

    engine = engines("llava")
    store = Store(tmp_path / "history.sqlite3")
    return ChatSession(engine, params=engine.default_params(max_new_tokens=3), store=store)


def test_a_pdf_sent_gives_a_handle_per_page_kept_with_its_text_through_the_store(chat,
                                                                                tmp_path):
    from assistant.store import Store

    path = tmp_path / "invoice.pdf"
    path.write_bytes(pdfs.invoice())
    photo = tmp_path / "photo.png"
    Image.new("RGB", (20, 20), "blue").save(photo)
    exchange = chat.send("What is the total?", [photo, path])
    assert [(u.handle, u.name, u.path) for u in exchange.uploads] == [
        ("#1", "photo.png", str(photo)), ("#2", "invoice.pdf p1", str(path)),
        ("#3", "invoice.pdf p2", str(path))]
    assert [u.note for u in exchange.uploads] == ["", "invoice.pdf: 2 pages, one picture each.",
                                                  ""]
    list(exchange)
    assert chat.conversation.turns[0].images == ["#1", "#2", "#3"]
    kept = chat.conversation.image("#2").page
    assert [line["text"] for line in kept.lines] == pdfs.INVOICE
    back, _ = Store(tmp_path / "history.sqlite3").load(chat.chat_id)  # as after a restart
    assert back.image("#1").page is None
    assert back.image("#2").page == kept and back.image("#2").page.lines == kept.lines
    assert back.image("#3").page == Page("invoice.pdf", 2, 2)
    assert back.image("#3").image.tobytes() == chat.conversation.image("#3").image.tobytes()


def test_pages_count_against_the_picture_limits_and_a_refusal_changes_nothing(engines,
                                                                              tmp_path):
    from assistant.session import ChatSession

    engine = engines("llava")
    limits = Settings(max_images_per_message=2, max_images_per_chat=5).limits
    chat = ChatSession(engine, limits, params=engine.default_params(max_new_tokens=2))
    path = tmp_path / "six.pdf"
    path.write_bytes(pdfs.pages(6))
    with pytest.raises(OverLimit, match="pictures \\(each PDF page one\\) in the chat with "
                                        "these is 6; the limit is 5"):
        chat.send("read these", [path])
    assert chat.conversation.turns == [] and chat.conversation.next_number == 1
    three = tmp_path / "three.pdf"
    three.write_bytes(pdfs.pages(3))
    list(chat.send("read these", [three]))  # one file: its 3 pages are more than 2 pictures
    with pytest.raises(OverLimit, match="in the chat"):
        chat.send("and this", [three])  # 6 pictures in the chat
    assert len(chat.conversation.images) == 3 and len(chat.conversation.turns) == 2
    bad = tmp_path / "protected.pdf"
    bad.write_bytes(pdfs.protected())
    with pytest.raises(BadDocument, match="protected by a password"):
        chat.send("and this", [bad])
    assert len(chat.conversation.turns) == 2


def test_an_older_history_without_pages_still_opens(tmp_path):
    from assistant.store import Store

    path = tmp_path / "history.sqlite3"
    old = Store(path)
    conv = Conversation()
    conv.add_user("hi #1", [Image.new("RGB", (5, 5), "red")], ["red.png"])
    old.save("c1", conv)
    old.close()
    db = sqlite3.connect(path)  # the images table as it was before pages
    db.executescript("ALTER TABLE images DROP COLUMN page;")
    db.close()
    store = Store(path)
    back, _ = store.load("c1")
    assert back.image("#1").page is None and back.image("#1").name == "red.png"
    taken = load_attachment(pdfs.invoice(), "invoice.pdf", LIMITS)
    back.add_user("and?", [a.image for a in taken], [a.name for a in taken],
                  [a.page for a in taken])
    store.save("c1", back)
    assert store.load("c1")[0].image("#2").page.lines[0]["text"] == "Invoice 2041"


def test_the_rendered_page_is_a_plain_png_blob():
    (page,) = load_attachment(pdfs.invoice(scanned_page=False), "a.pdf", LIMITS)
    out = io.BytesIO()
    page.image.save(out, format="PNG")
    assert Image.open(out).size == page.image.size


def test_a_damaged_pdf_is_pages_or_a_refusal_never_another_error():
    """PDFs cut short, with bytes changed or spliced in: each is read (RGB pages) or refused
    naming the file, as the image loader's property test asks of pictures."""
    import random

    rng = random.Random(7)
    sources = [pdfs.invoice(), pdfs.table(), pdfs.scripted_on_open(), pdfs.pages(3)]
    limits = Settings(max_pdf_pages=2).limits
    outcomes = set()
    for _ in range(150):
        data = bytearray(rng.choice(sources))
        where = rng.randrange(len(data))
        change = rng.randrange(3)
        if change == 0:
            data = data[:where]
        elif change == 1:
            for _ in range(rng.randrange(1, 20)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        else:
            data[where:where] = rng.randbytes(rng.randrange(1, 50))
        try:
            taken = load_attachment(bytes(data), "damaged.pdf", limits)
        except BadImage as e:
            assert "'damaged.pdf'" in str(e)
            outcomes.add("refused")
            continue
        assert 1 <= len(taken) <= 2 and all(a.image.mode == "RGB" for a in taken)
        outcomes.add("read")
    assert outcomes == {"read", "refused"}


def test_a_refusal_says_this_pdf_s_reason_not_the_one_before():
    """PDFium's last error may be an earlier document's: after a protected PDF, a damaged one
    is still called damaged."""
    for data, says in ((pdfs.protected(), "protected by a password"),
                       (pdfs.empty_document(), "it has no pages"),
                       (pdfs.protected(), "protected by a password"),
                       (pdfs.invoice()[:300], "damaged or cut short")):
        with pytest.raises(BadDocument, match=says):
            load_attachment(data, "x.pdf", LIMITS)
