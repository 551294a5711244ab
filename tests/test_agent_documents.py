"""Documents through the real loop: a small model's question about a page of text is read and
answered from the reading, a capable model still chooses, a PDF page is read from its text
layer across the document's pages, and the calculator is offered only with numbers."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from assistant.agent import Note, Step
from assistant.agent.trace import results
from assistant.config import Settings
from assistant.conversation import Conversation
from tests.scripted import Scripted, call, run
from tools.drawing import font
from tools.registry import build

pytestmark = pytest.mark.integration

MENU = [("CAFE LUNA", ""), ("Espresso", "2.40"), ("Cappuccino", "3.10"), ("Croissant", "2.10"),
        ("Tea", "2.00"), ("Sundays: closed", "")]


@pytest.fixture(scope="module")
def registry():
    return build(Settings().tools)


def menu() -> Image.Image:
    page = Image.new("RGB", (700, 520), (250, 248, 240))
    draw = ImageDraw.Draw(page)
    for i, (label, price) in enumerate(MENU):
        draw.text((60, 40 + 75 * i), label, font=font(32), fill="black")
        if price:
            draw.text((540, 40 + 75 * i), price, font=font(32), fill="black")
    return page.rotate(3, expand=True, fillcolor=(80, 60, 40))


def steps(events) -> list[tuple[str, dict]]:
    return [(e.tool, e.arguments) for e in events if isinstance(e, Step) and e.status == "done"]


def test_a_small_models_question_about_a_page_is_read_and_answered_from_the_reading(registry):
    conv = Conversation()
    conv.add_user("how much is a cappuccino here?", [menu()])
    engine = Scripted(["It is a website.", "A cappuccino is 2.40."])  # what it would say
    events, final = run(engine, registry, conv, prompt="compact")
    assert steps(events) == [("ocr", {"image": "#1",
                                      "question": "how much is a cappuccino here?"})]
    assert final.text == "Cappuccino: 3.10."  # the reading's answer, not the model's
    assert engine.replies == ["A cappuccino is 2.40."]  # never asked to spoil it


def test_arithmetic_on_a_page_is_computed(registry):
    conv = Conversation()
    conv.add_user("two croissants and an espresso, what's the total?", [menu()])
    events, final = run(Scripted(["It is a website."]), registry, conv, prompt="compact")
    assert final.text.startswith("That comes to 6.60")


def test_a_capable_model_chooses_for_itself(registry):
    conv = Conversation()
    conv.add_user("how much is a cappuccino here?", [menu()])
    events, final = run(Scripted(["I can't say without reading it."]), registry, conv)
    assert steps(events) == [] and final.text == "I can't say without reading it."


def test_a_capable_model_passes_its_own_question_and_reads_the_rows(registry):
    conv = Conversation()
    conv.add_user("is it open on sunday?", [menu()])
    engine = Scripted([call("ocr", image="#1", question="Is it open on Sundays?"),
                       'No, it says "Sundays: closed".'])
    events, final = run(engine, registry, conv)
    done = [e for e in events if isinstance(e, Step) and e.status == "done"][0]
    assert done.data["answer"]["values"] == ["no"]
    assert "Cappuccino | 3.10" in done.observation  # the rows, for any model
    assert final.text == 'No, it says "Sundays: closed".'


def leaflet() -> bytes:
    """Three pages with a text layer; what is asked stands on the last."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=14)
    for lines in (["Welcome to the town museum"], ["Tickets", "Adults 12.00", "Children 6.00"],
                  ["Opening hours", "Saturday 10:00 - 16:00", "Sunday closed"]):
        pdf.add_page()
        for i, text in enumerate(lines):
            pdf.text(20, 30 + 12 * i, text)
    return bytes(pdf.output())


def test_a_pdf_page_is_read_from_its_text_layer_across_its_document(registry, monkeypatch):
    from assistant.documents import load_attachment

    pages = load_attachment(leaflet(), "leaflet.pdf", Settings().limits)
    conv = Conversation()
    conv.add_user("on what page are the opening hours?", images=[a.image for a in pages],
                  names=[a.name for a in pages], pages=[a.page for a in pages])
    monkeypatch.setattr(registry["ocr"], "read",
                        lambda image: pytest.fail("OCR ran on a page with a text layer"))
    events, final = run(Scripted(["no idea"]), registry, conv, prompt="compact")
    assert [tool for tool, _ in steps(events)] == ["ocr"]
    assert final.text.startswith("On page 3")
    conv.add_assistant(final.text, results([e for e in events if isinstance(e, Step)
                                             and e.status != "running"]))
    conv.add_user("and how much is it for children?")
    events, final = run(Scripted(["no idea"]), registry, conv, prompt="compact")
    assert final.text == "Children: 6.00 (page 2)."
    assert steps(events) == []  # the kept reading answers: no page is read again
    assert any(isinstance(e, Note) and e.kind == "reused" for e in events)


def test_the_calculator_is_offered_only_with_numbers_to_work_on(registry):
    conv = Conversation()
    conv.add_user("hello there, how are you?")
    engine = Scripted(["Fine, thanks."])
    run(engine, registry, conv)
    assert engine.params[0].constraint is None or \
        "calculate" not in str(engine.params[0].constraint.schema)
    conv = Conversation()
    conv.add_user("what's 23.75 / 5?")
    engine = Scripted([call("calculate", expression="23.75 / 5"), "It comes to 4.75."])
    events, final = run(engine, registry, conv)
    assert steps(events) == [("calculate", {"expression": "23.75 / 5"})]
    assert final.text == "It comes to 4.75."


@pytest.mark.parametrize("message", ["how much for a men's cut?",
                                     "if I hand over £90 how much change do I get"])
def test_a_question_about_a_page_is_no_edit_whatever_words_it_borrows(registry, message):
    conv = Conversation()
    conv.add_user(message, [menu()])
    events, _ = run(Scripted([call("edit_image", image="#1", operation="crop",
                                   box=[0, 0, 10, 10])] * 2), registry, conv, prompt="compact")
    assert [tool for tool, _ in steps(events)][:1] == ["ocr"]


def test_an_edit_of_a_page_is_still_an_edit(registry):
    conv = Conversation()
    conv.add_user("rotate it by 90 degrees", [menu()])
    engine = Scripted([call("edit_image", image="#1", operation="rotate", degrees=90),
                       "Here it is: #2."])
    events, final = run(engine, registry, conv, prompt="compact")
    assert [tool for tool, _ in steps(events)] == ["edit_image"]


def test_another_readings_work_on_a_page_is_left_to_the_model(registry):
    conv = Conversation()
    conv.add_user("describe this picture", [menu()])
    engine = Scripted([call("caption", image="#1"), "A menu of a cafe."])
    events, final = run(engine, registry, conv, prompt="compact")
    assert [tool for tool, _ in steps(events)] == ["caption"]


def test_how_many_on_a_page_of_text_is_the_pages_count(registry):
    conv = Conversation()
    conv.add_user("how many croissants are on the menu?", [menu()])
    engine = Scripted([call("detect", image="#1", objects=["croissant"]), "I found none."])
    events, _ = run(engine, registry, conv, prompt="compact")
    assert [tool for tool, _ in steps(events)][:1] == ["ocr"]


@pytest.mark.parametrize("message, tool", [
    ("is there a charge for a croissant on sundays?", "ocr"),  # its words stand on the page
    ("are there any cats in this picture?", "detect"),  # none of its words do
])
def test_a_question_whose_words_stand_on_the_page_is_the_readings(registry, message, tool):
    conv = Conversation()
    conv.add_user(message, [menu()])
    engine = Scripted([call("detect", image="#1", objects=["cat"]), "I found none."])
    events, _ = run(engine, registry, conv, prompt="compact")
    assert [tool for tool, _ in steps(events)][:1] == [tool]
