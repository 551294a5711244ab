"""The documents evaluation: its grading rules (any written form of the value, whole numbers
only, and an answer that reads the whole page out is wrong), the drawn documents (a photo and
PDFs of the paper's size, accents and € in the text layer), a bad set line refused by number,
and small runs through a scripted agent and the real agent loop, from the command line too."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from PIL import Image

from assistant.agent.trace import Final, Step
from assistant.errors import BadData
from assistant.eval import cli, documents, paper
from assistant.eval.documents import grade, tokens

RECEIPT = {
    "id": "tiny-receipt", "kind": "photo", "paper": [60, 50], "rotate": 2.0, "noise": 0.2,
    "pages": [{"items": [
        {"text": "BÄCKEREI HOFMANN", "x": 30, "y": 4, "size": 11, "bold": True,
         "align": "center"},
        {"text": "Brötchen", "x": 4, "y": 14, "size": 9},
        {"text": "1,80 €", "x": 56, "y": 14, "size": 9, "align": "right"},
        {"text": "Kaffee", "x": 4, "y": 20, "size": 9},
        {"text": "13,10 €", "x": 56, "y": 20, "size": 9, "align": "right"},
        {"text": "SUMME 14,90", "x": 4, "y": 28, "size": 10, "bold": True},
        {"text": "14.11.2026 07:42", "x": 4, "y": 36, "size": 8}]}],
    "questions": [
        {"q": "What do the Brötchen cost?", "answer": ["1,80"], "kind": "lookup"},
        {"q": "Is there coffee on it?", "answer": ["yes"], "kind": "yesno"},
        {"q": "What is the total?", "answer": ["14,90"], "also_ok": ["1,80", "13,10"],
         "kind": "arithmetic"}]}
LEAFLET = {
    "id": "tiny-leaflet", "kind": "pdf", "paper": [100, 70], "filename": "leaflet.pdf",
    "pages": [{"items": [{"text": "Piscine municipale", "x": 10, "y": 10, "size": 14}]},
              {"items": [{"text": "Tarifs : adulte 4,50 €, enfant 2,80 €", "x": 10, "y": 10,
                          "size": 10}]}],
    "questions": [{"q": "On which page are the prices?", "answer": ["2"], "kind": "page"}]}


def values_of(doc):
    return documents.document_values(doc)


# --- grading -------------------------------------------------------------------------------

@pytest.mark.parametrize("answer", [
    "1,80", "1.80", "It costs €1.80.", "1,80 €", "The Brötchen are **1.8** euros",
    "  1 . 80 ".replace(" . ", "."), "EUR 1,80 in total"])
def test_any_written_form_of_the_value_is_right(answer):
    question = RECEIPT["questions"][0]
    assert grade(answer, question, values_of(RECEIPT)) == (True, "")


@pytest.mark.parametrize("answer", ["11,80", "1,805", "21.80", "1,81", "one eighty"])
def test_numbers_match_only_as_whole_numbers(answer):
    right, why = grade(answer, RECEIPT["questions"][0], values_of(RECEIPT))
    assert not right and why == "the answer is not in it"


def test_thousands_separators_and_decimal_marks_are_one_form():
    forms = [f for _, f in tokens("1.234,50 1,234.50 1234.5 1'234.50 3,10 3.105 0,250")]
    assert forms == ["1234.5"] * 4 + ["3.1", "3105", "0.25"]
    assert tokens("09:05 9h05 14.11.2026 Straße") == [
        ("time", "9:05"), ("time", "9:05"), ("date", "14.11.2026"), ("word", "strasse")]


def test_a_unit_of_time_in_full_or_short_is_the_same_answer():
    q = {"q": "How long is the wait?", "answer": ["15 min"], "kind": "arithmetic"}
    assert grade("From 16:47 to 17:02 is 15 minutes.", q, set())[0]
    assert grade("It takes 1 hour.", {**q, "answer": ["1 h"]}, set())[0]
    assert not grade("15 days", q, set())[0]


def test_a_dump_of_the_whole_page_is_wrong():
    page = " ".join(i["text"] for i in RECEIPT["pages"][0]["items"])
    right, why = grade(page, RECEIPT["questions"][0], values_of(RECEIPT))
    assert not right and why.startswith("also names") and "13.1" in why
    # naming the asked value and another price of the document is wrong too
    assert not grade("1,80 € (the Kaffee is 13,10 €)", RECEIPT["questions"][0],
                     values_of(RECEIPT))[0]


def test_values_of_the_question_and_also_ok_may_be_quoted():
    total = RECEIPT["questions"][2]
    assert grade("1,80 + 13,10 = 14,90 €", total, values_of(RECEIPT)) == (True, "")
    assert not grade("14,90, bought at 07:42", total, values_of(RECEIPT))[0]
    q = {"q": "What does coffee cost at 07:42?", "answer": ["13,10"], "kind": "lookup"}
    assert grade("At 07:42 the coffee was 13,10.", q, values_of(RECEIPT))[0]


def test_saying_on_which_page_the_answer_is_does_not_count_as_another_value():
    doc = {**RECEIPT, "pages": [*RECEIPT["pages"], {"items": [
        {"text": "Seite 2 von 2", "x": 4, "y": 4, "size": 8}]}]}
    question = RECEIPT["questions"][0]
    assert grade("1,80 € (page 2)", question, values_of(doc)) == (True, "")
    assert grade("1,80 €, see p. 2", question, values_of(doc)) == (True, "")
    assert not grade("1,80 € for 2", question, values_of(doc))[0]
    on_page = {"q": "On which page is the total?", "answer": ["2"], "kind": "page"}
    assert grade("It is on page 2.", on_page, values_of(doc)) == (True, "")


@pytest.mark.parametrize("answer, right", [
    ("Yes, there is Kaffee.", True), ("yeah", True), ("Yep!", True), ("YES", True),
    ("No.", False), ("Nope", False), ("There is coffee, yes.", False), ("", False),
    ("**Yes**, Kaffee is on it", True), ("1 Kaffee: yes", False),
    ("Yes, for 13,10 €.", False)])  # 13,10 is another value of the document
def test_a_yes_or_no_answer_is_judged_by_its_first_word(answer, right):
    assert grade(answer, RECEIPT["questions"][1], values_of(RECEIPT))[0] is right
    no = {"q": "Is it closed?", "answer": ["no"], "kind": "yesno"}
    assert grade("Nope, it is open.", no, values_of(RECEIPT))[0]


# --- drawing -------------------------------------------------------------------------------

def test_a_photo_is_the_paper_on_a_desk_at_a_realistic_resolution(tmp_path):
    path = paper.render(RECEIPT, tmp_path)
    assert path.name == "tiny-receipt.png"
    with Image.open(path) as img:
        assert img.format == "PNG"
        w, h = img.size
    # the paper at 9 px/mm (540 x 450), turned, with the desk round it
    assert 540 * 1.1 < w < 540 * 1.5 and 450 * 1.1 < h < 450 * 1.4
    page = paper.page_images(RECEIPT, paper.PX_PER_MM)[0]
    assert page.size == pytest.approx((540, 450), abs=1)
    assert paper.photo(RECEIPT).tobytes() == paper.photo(RECEIPT).tobytes()  # seeded


def test_a_pdf_has_the_papers_size_and_a_text_layer_with_accents(tmp_path):
    import pypdfium2 as pdfium

    path = paper.render(LEAFLET, tmp_path)
    assert path.name == "leaflet.pdf"
    pdf = pdfium.PdfDocument(path)
    assert len(pdf) == 2
    assert pdf[0].get_size() == pytest.approx((100 * 72 / 25.4, 70 * 72 / 25.4), abs=0.1)
    assert "adulte 4,50 €, enfant 2,80 €" in pdf[1].get_textpage().get_text_range()
    scan = pdfium.PdfDocument(paper.scan_pdf({**LEAFLET, "kind": "scan", "rotate": 1.0,
                                              "noise": 0.3}))
    assert len(scan) == 2 and scan[1].get_textpage().get_text_range().strip() == ""
    first = paper.scan_pages(LEAFLET)[0]  # 200 dpi
    assert first.size == pytest.approx((100 * paper.SCAN_PX_PER_MM, 70 * paper.SCAN_PX_PER_MM),
                                       abs=1)


# --- the sets ------------------------------------------------------------------------------

def test_the_dev_set_loads_with_its_mix():
    docs = documents.load("dev")
    kinds = [q["kind"] for d in docs for q in d["questions"]]
    assert len(docs) == 15 and 55 <= len(kinds) <= 75
    assert {d["kind"] for d in docs} == {"photo", "pdf", "scan"}
    assert kinds.count("lookup") > kinds.count("arithmetic") > kinds.count("page") > 0
    assert any(len(d["pages"]) >= 3 for d in docs)
    assert len(documents.load("heldout")) >= 20  # written apart: only its size is looked at


@pytest.mark.parametrize("change, reason", [
    ({"kind": "jpeg"}, "kind must be one of photo, pdf, scan"),
    ({"paper": [80]}, "paper must be [width, height]"),
    ({"noise": 2}, "noise must be a number from 0 to 1"),
    ({"colour": "red"}, "unknown fields ['colour']"),
    ({"pages": [{"items": []}, {"items": []}]}, "a photo has one page, not 2"),
    ({"pages": [{"items": [{"text": "x", "x": 1, "y": 1}]}]}, "page 1 item 1 is missing size"),
    ({"pages": [{"items": [{"text": "x", "x": 90, "y": 1, "size": 9}]}]}, "off the 60x50 mm"),
    ({"pages": [{"items": [{"text": "price ₹5", "x": 1, "y": 1, "size": 9}]}]},
     "cannot show '₹'"),
    ({"questions": [{"q": "hi", "answer": ["1"], "kind": "guess"}]}, "question 1: kind must"),
    ({"questions": [{"q": "open?", "answer": ["maybe"], "kind": "yesno"}]}, '"yes" or "no"'),
    ({"questions": [{"q": "total?", "answer": "1,80", "kind": "lookup"}]},
     "answer must be a list of strings"),
    ({"filename": "receipt.pdf"}, "must be a plain file name ending in .png"),
])
def test_a_bad_document_is_refused_naming_its_file_and_line(tmp_path, change, reason):
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps(RECEIPT) + "\n\n" + json.dumps({**RECEIPT, **change}) + "\n",
                    encoding="utf-8")
    with pytest.raises(BadData) as caught:
        documents.load(path)
    assert f"{path}, line 3: " in str(caught.value) and reason in str(caught.value)


def test_a_repeated_id_and_a_line_that_is_not_json_are_refused(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps(RECEIPT) + "\n" + json.dumps(RECEIPT) + "\n", encoding="utf-8")
    with pytest.raises(BadData, match="line 2: id 'tiny-receipt' is also on line 1"):
        documents.load(path)
    path.write_text("{oops\n", encoding="utf-8")
    with pytest.raises(BadData, match="line 1: not JSON"):
        documents.load(path)


# --- runs ----------------------------------------------------------------------------------

class ScriptedAgent:
    """Answers each question from a table, calling the tools it names first."""

    def __init__(self, script: dict[str, tuple[list[str], str]]):
        self.script, self.attached = script, []

    def run(self, conv):
        turn = conv.turns[-1]
        self.attached.append([conv.images[h].name for h in turn.images])
        tools, answer = self.script[turn.text]
        for i, tool in enumerate(tools, 1):
            yield Step(i, tool, {"image": "#1"})
            yield Step(i, tool, {"image": "#1"}, status="done", observation="...")
        yield Final(answer, steps=len(tools) + 1)


def test_each_question_is_asked_in_a_fresh_chat_and_scored_with_its_tools():
    agent = ScriptedAgent({"What do the Brötchen cost?": (["ocr"], "They cost 1,80 €."),
                           "Is there coffee on it?": ([], "No."),
                           "What is the total?": (["ocr", "calculate"], "14,90 €"),
                           "On which page are the prices?": (["ocr"], "Page 2.")})
    result = documents.evaluate(agent, [RECEIPT, LEAFLET], progress=False)
    assert (result["n"], result["right"]) == (4, 3)
    assert result["by_question_kind"]["yesno"] == {"n": 1, "accuracy": 0.0}
    assert result["by_document_kind"] == {"photo": {"n": 3, "accuracy": 2 / 3},
                                          "pdf": {"n": 1, "accuracy": 1.0}}
    assert result["tools"] == {"ocr": 3, "calculate": 1}
    assert result["questions_without_tools"] == 1 and result["seconds_per_question"] >= 0
    assert [(f["id"], f["answer"], f["why"]) for f in result["failures"]] == [
        ("tiny-receipt#2", "No.", "says no")]
    # one picture per message for the photo, one per page for the PDF, named as uploads
    assert agent.attached[:3] == [["tiny-receipt.png"]] * 3
    assert [n.startswith("leaflet.pdf") for n in agent.attached[3]] == [True, True]
    hidden = documents.summarize([], show_failures=False)
    assert "failures" not in hidden and hidden["n"] == 0


def test_a_pdf_is_skipped_with_a_note_while_the_app_cannot_take_pdfs(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "assistant.documents", None)  # import fails
    agent = ScriptedAgent({"On which page are the prices?": ([], "2")})
    result = documents.evaluate(agent, [LEAFLET], progress=False)
    assert result["n"] == 0 and agent.attached == []
    assert result["skipped"] == [{"reason": "PDFs skipped: assistant.documents "
                                            "(load_attachment) is not there yet",
                                  "questions": 1}]


def test_the_real_agent_loop_answers_about_an_attached_photo():
    from assistant.agent import Agent
    from assistant.config import Settings
    from tools.registry import build

    class Engine:
        name = "scripted"

        def __init__(self):
            self.seen = []

        def default_params(self, **overrides):
            return SimpleNamespace(constraint=None, **overrides)

        def stream(self, conversation, params):
            self.seen.append(conversation)
            return SimpleNamespace(stream=Pieces(["The Brötchen ", "cost 1,80 €."]))

    class Pieces(list):
        def cancel(self):
            pass

    engine = Engine()
    doc = {**RECEIPT, "questions": RECEIPT["questions"][:1]}
    result = documents.evaluate(Agent(engine, build(Settings().tools)), [doc], progress=False)
    assert (result["n"], result["right"]) == (1, 1), result
    user = engine.seen[0].turns[-1]
    assert user.text == "What do the Brötchen cost?" and len(user.images) == 1


def test_the_command_line_shows_failures_only_when_asked(tmp_path, monkeypatch, capsys):
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps(RECEIPT) + "\n", encoding="utf-8")
    agent = ScriptedAgent({q["q"]: ([], "Nope.") for q in RECEIPT["questions"]})
    monkeypatch.setattr(cli, "_agent", lambda args: (SimpleNamespace(name="scripted"), agent))
    assert cli.main(["documents", "--dataset", str(path), "--limit", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["n"], result["right"], result["model"]) == (2, 0, "scripted")
    assert "failures" not in result
    assert cli.main(["documents", "--dataset", str(path), "--show-failures"]) == 0
    out = capsys.readouterr().out
    assert "0 of 3 document questions right" in out and "tiny-receipt#1" in out
    bad = tmp_path / "bad.jsonl"
    bad.write_text("[1]\n")
    assert cli.main(["documents", "--dataset", str(bad)]) == 2
    assert "line 1: a document must be a JSON object" in capsys.readouterr().err
