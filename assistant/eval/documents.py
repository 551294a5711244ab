"""Documents evaluation: questions about menus, receipts, timetables, invoices, tickets, forms
and multi-page PDFs, each asked in a fresh chat through the whole agent, with the document
attached the way the app attaches an upload.

    python -m assistant.eval documents [--dataset dev|heldout|FILE] [--limit N] --json

A dataset is JSONL, one document per line (paper.py draws it):

    {"id": "bakery-receipt-1", "kind": "photo", "filename": "IMG_2231.jpg",
     "paper": [80, 160], "rotate": 3.0, "noise": 0.2,
     "pages": [{"items": [{"text": "BÄCKEREI HOFMANN", "x": 40, "y": 10, "size": 14,
                           "bold": true, "align": "center"}, ...]}],
     "questions": [{"q": "What do two rolls cost?", "answer": ["1,80"], "also_ok": ["0,90"],
                    "kind": "lookup"}]}

`kind` photo (a picture of one page on a desk, turned `rotate` degrees anticlockwise,
degraded by `noise` 0..1), pdf (a PDF with a text layer) or scan (a PDF of page pictures
only). `paper` is width x height in mm; an item's x, y are mm from the paper's top-left (y the
top of the line), size in points, align left / right / center. A question's kind is lookup,
arithmetic, yesno, page or text; `answer` lists the acceptable forms of the right value,
`also_ok` document values a good answer may quote besides it.

Grading (grade()): the answer must contain one of `answer` (a yes/no question: start with
that yes or no), and no other value of the document: the numbers, prices, times and dates of
its items, less those of `answer`, `also_ok` and the question ("page 2" in an answer says
where it was found and is not a value). An answer that reads the whole page out names the
price asked for, and every other price too: it is wrong.
"""

from __future__ import annotations

import inspect
import re
import statistics
import tempfile
import time
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

from assistant.eval.sets import bad, records, resolve

DOCUMENT_KINDS = ("photo", "pdf", "scan")
QUESTION_KINDS = ("lookup", "arithmetic", "yesno", "page", "text")
DOCUMENT_FIELDS = {"id", "kind", "filename", "paper", "rotate", "noise", "pages", "questions"}
ITEM_FIELDS = {"text", "x", "y", "size", "bold", "align"}
QUESTION_FIELDS = {"q", "answer", "also_ok", "kind"}
YES, NO = {"yes", "yeah", "yep"}, {"no", "nope"}
PAGE_WORDS = {("word", "page"), ("word", "pages"), ("word", "p")}


# --- grading -------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"(?P<date>(?<!\d)(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./]\d{1,2}[./](?:\d{4}|\d{2}))(?![\d]))"
    r"|(?P<time>(?<!\d)\d{1,2}[:h]\d{2}(?![\d]))"
    r"|(?P<number>\d(?:[\d.,'’]*\d)?)"
    r"|(?P<word>[^\W\d_]+)")


def _number(raw: str) -> str:
    """A number written with thousands separators and a decimal comma or point, as one form:
    "1.234,50", "1,234.50" and "1234.5" are all "1234.5"; "3,10" is "3.1"."""
    raw = re.sub(r"['’]", "", raw)  # 1'234.50: an apostrophe only ever groups thousands
    marks = [c for c in raw if not c.isdigit()]
    groups = re.split(r"[.,]", raw)
    if not marks:
        whole, frac = raw, ""
    elif "," in marks and "." in marks:  # the last mark is the decimal one
        cut = max(raw.rfind(","), raw.rfind("."))
        whole, frac = re.sub(r"\D", "", raw[:cut]), raw[cut + 1:]
    elif len(marks) > 1:  # 1.234.567: thousands
        whole, frac = "".join(groups), ""
    elif len(groups[1]) == 3 and groups[0] != "0":  # 1,234 or 1.234: thousands
        whole, frac = "".join(groups), ""
    else:  # 3,10 or 3.10 or 0,250
        whole, frac = groups
    whole = whole.lstrip("0") or "0"
    frac = frac.rstrip("0")
    return f"{whole}.{frac}" if frac else whole


def _time(raw: str) -> str:
    hours, minutes = re.split(r"[:h]", raw)
    return f"{int(hours)}:{minutes}"


def _date(raw: str) -> str:
    return ".".join(str(int(p)) for p in re.split(r"[./-]", raw))


# a unit of time said in full or short is the same answer ("15 min", "15 minutes")
UNITS = {w: short for short, ws in (("min", "min mins minute minutes minuten minutos minuti"),
                                    ("h", "h hr hrs hour hours stunden heures horas ore uur"))
         for w in ws.split()}


def tokens(text: str) -> list[tuple[str, str]]:
    """(kind, form) for each word, number, time and date of `text`, normalised: case and
    accents folded, numbers in one form whatever their separators; other signs dropped."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    out = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        raw = m.group()
        form = {"date": _date, "time": _time, "number": _number}.get(kind, str)(raw)
        form = UNITS.get(form, form) if kind == "word" else form
        out.append((kind, form))
    return out


def values(text: str) -> set[tuple[str, str]]:
    """The numbers, prices, times and dates in `text`, normalised."""
    return {t for t in tokens(text) if t[0] != "word"}


def _contains(haystack: list, needle: list) -> bool:
    n = len(needle)
    return n > 0 and any(haystack[i:i + n] == needle for i in range(len(haystack) - n + 1))


def document_values(doc: dict) -> set[tuple[str, str]]:
    """Every value in the document's items."""
    return {v for page in doc["pages"] for item in page["items"] for v in values(item["text"])}


def grade(answer: str, question: dict, doc_values: set) -> tuple[bool, str]:
    """Whether `answer` is right for `question`, and what is wrong with it ("" if nothing).
    Right: it holds one of question["answer"] (a yes/no question: its first word is that yes
    or no) and none of `doc_values` other than those of the answers, also_ok and question
    (a number right after "page" or "p." says where the answer was found: it does not count)."""
    said = tokens(answer)
    if question["kind"] == "yesno":
        first = said[0][1] if said and said[0][0] == "word" else ""  # "2 pm, yes" is no yes
        expected = {a.strip().casefold() for a in question["answer"]}
        said_as = "yes" if first in YES else "no" if first in NO else None
        if said_as is None:
            return False, "does not start with yes or no"
        if said_as not in expected:
            return False, f"says {said_as}"
    elif not any(_contains(said, tokens(a)) for a in question["answer"]):
        return False, "the answer is not in it"
    allowed = set(values(question["q"]))
    for text in [*question["answer"], *question.get("also_ok", [])]:
        allowed |= values(text)
    quoted = {t for i, t in enumerate(said)  # "(page 2)" says where, not what
              if not (i and t[0] == "number" and said[i - 1] in PAGE_WORDS)}
    extra = sorted(form for kind, form in (doc_values - allowed) & quoted)
    if extra:
        return False, f"also names {', '.join(extra[:6])}{' ...' if len(extra) > 6 else ''}"
    return True, ""


# --- the sets ------------------------------------------------------------------------------

def _number_ok(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_document(doc, path: Path, number: int) -> None:
    from assistant.eval.paper import unprintable

    def no(reason: str):
        raise bad(path, number, reason)

    if not isinstance(doc, dict):
        no("a document must be a JSON object")
    missing = {"id", "kind", "paper", "pages", "questions"} - set(doc)
    if missing:
        no(f"missing {', '.join(sorted(missing))}")
    unknown = set(doc) - DOCUMENT_FIELDS
    if unknown:
        no(f"unknown fields {sorted(unknown)}")
    if not isinstance(doc["id"], str) or not doc["id"]:
        no("id must be a non-empty string")
    if doc["kind"] not in DOCUMENT_KINDS:
        no(f"kind must be one of {', '.join(DOCUMENT_KINDS)}, not {doc['kind']!r}")
    paper = doc["paper"]
    if (not isinstance(paper, list) or len(paper) != 2 or not all(map(_number_ok, paper))
            or not all(20 <= v <= 1000 for v in paper)):
        no(f"paper must be [width, height] in mm, each 20 to 1000, not {paper!r}")
    for key, low, high in (("rotate", -45, 45), ("noise", 0, 1)):
        if key in doc and not (_number_ok(doc[key]) and low <= doc[key] <= high):
            no(f"{key} must be a number from {low} to {high}, not {doc[key]!r}")
    if "filename" in doc:
        suffixes = (".png", ".jpg", ".jpeg") if doc["kind"] == "photo" else (".pdf",)
        if not isinstance(doc["filename"], str) or not doc["filename"].lower().endswith(
                suffixes) or "/" in doc["filename"] or "\\" in doc["filename"]:
            no(f"filename of a {doc['kind']} must be a plain file name ending in "
               f"{' or '.join(suffixes)}, not {doc['filename']!r}")
    pages = doc["pages"]
    if not isinstance(pages, list) or not pages:
        no("pages must be a non-empty list")
    if doc["kind"] == "photo" and len(pages) != 1:
        no(f"a photo has one page, not {len(pages)}")
    width, height = paper
    for p, page in enumerate(pages, 1):
        if not isinstance(page, dict) or set(page) != {"items"} or not isinstance(
                page["items"], list):
            no(f"page {p} must be {{\"items\": [...]}}")
        for i, item in enumerate(page["items"], 1):
            where = f"page {p} item {i}"
            if not isinstance(item, dict):
                no(f"{where} must be a JSON object")
            missing = {"text", "x", "y", "size"} - set(item)
            if missing:
                no(f"{where} is missing {', '.join(sorted(missing))}")
            unknown = set(item) - ITEM_FIELDS
            if unknown:
                no(f"{where} has unknown fields {sorted(unknown)}")
            if not isinstance(item["text"], str) or not item["text"].strip():
                no(f"{where}: text must be a non-empty string")
            odd = unprintable(item["text"])
            if odd:
                no(f"{where}: the paper's fonts cannot show {odd!r} (Windows-1252 only)")
            if not all(_number_ok(item[k]) for k in ("x", "y", "size")):
                no(f"{where}: x, y and size must be numbers")
            if not (0 <= item["x"] <= width and 0 <= item["y"] <= height):
                no(f"{where} at ({item['x']}, {item['y']}) mm is off the {width}x{height} mm "
                   f"paper")
            if not 4 <= item["size"] <= 72:
                no(f"{where}: size must be 4 to 72 points, not {item['size']}")
            if item.get("align", "left") not in ("left", "right", "center"):
                no(f"{where}: align must be left, right or center, not {item['align']!r}")
            if not isinstance(item.get("bold", False), bool):
                no(f"{where}: bold must be true or false")
    questions = doc["questions"]
    if not isinstance(questions, list) or not questions:
        no("questions must be a non-empty list")
    for q, question in enumerate(questions, 1):
        where = f"question {q}"
        if not isinstance(question, dict):
            no(f"{where} must be a JSON object")
        missing = {"q", "answer", "kind"} - set(question)
        if missing:
            no(f"{where} is missing {', '.join(sorted(missing))}")
        unknown = set(question) - QUESTION_FIELDS
        if unknown:
            no(f"{where} has unknown fields {sorted(unknown)}")
        if not isinstance(question["q"], str) or not question["q"].strip():
            no(f"{where}: q must be a non-empty string")
        if question["kind"] not in QUESTION_KINDS:
            no(f"{where}: kind must be one of {', '.join(QUESTION_KINDS)}, not "
               f"{question['kind']!r}")
        for key in ("answer", "also_ok"):
            forms = question.get(key, [])
            if not isinstance(forms, list) or not all(isinstance(a, str) and tokens(a)
                                                      for a in forms):
                no(f"{where}: {key} must be a list of strings with a word or number each")
        if not question["answer"]:
            no(f"{where}: answer must not be empty")
        if question["kind"] == "yesno" and not {a.casefold() for a in question["answer"]} <= {
                "yes", "no"}:
            no(f"{where}: the answer to a yes/no question is \"yes\" or \"no\"")


def load(path: str | Path = "dev") -> list[dict]:
    """The documents of a file (or of a shipped set), each checked: a bad one raises BadData
    with its file and line."""
    path = resolve(path, "documents")
    out, seen = [], {}
    for number, doc in records(path):
        _check_document(doc, path, number)
        if doc["id"] in seen:
            raise bad(path, number, f"id {doc['id']!r} is also on line {seen[doc['id']]}")
        seen[doc["id"]] = number
        doc["line"] = number
        out.append(doc)
    return out


# --- asking --------------------------------------------------------------------------------

def attach(conv, doc: dict, path: Path, question: str, limits) -> str | None:
    """Add the user's message with the document attached as the app attaches an upload; the
    reason it cannot be (a PDF before the app reads PDFs), or None."""
    name = path.name
    if doc["kind"] == "photo":
        from assistant.images import load_image

        image = load_image(path, max_bytes=limits.max_image_bytes,
                           max_pixels=limits.max_image_pixels)
        conv.add_user(question, images=[image], names=[name])
        return None
    try:
        from assistant.documents import load_attachment
    except ImportError:
        return "PDFs skipped: assistant.documents (load_attachment) is not there yet"
    if "pages" not in inspect.signature(conv.add_user).parameters:
        return "PDFs skipped: Conversation.add_user takes no pages yet"
    attachments = load_attachment(path, name, limits)
    conv.add_user(question, images=[a.image for a in attachments],
                  names=[a.name for a in attachments], pages=[a.page for a in attachments])
    return None


def ask(agent, doc: dict, path: Path, question: dict, limits, values: set) -> dict:
    """One question in a fresh chat: a row with the answer, its grade, the tools called and
    the seconds taken (or the reason it was skipped)."""
    from assistant.agent.trace import Final, Step
    from assistant.conversation import Conversation
    from assistant.errors import AssistantError

    row = {"document": doc["id"], "document_kind": doc["kind"], "kind": question["kind"],
           "q": question["q"], "expected": question["answer"][0]}
    conv = Conversation()
    start = time.perf_counter()
    try:
        skipped = attach(conv, doc, path, question["q"], limits)
        if skipped:
            return {**row, "skipped": skipped}
        events = list(agent.run(conv))
    except AssistantError as e:  # one question's failure, not the run's
        events, error = [], f"error: {e}"
    else:
        error = ""
    seconds = time.perf_counter() - start
    final = next((e for e in reversed(events) if isinstance(e, Final)), None)
    answer = error or (final.text if final is not None else "")
    right, why = (False, error) if error else grade(answer, question, values)
    return {**row, "answer": answer, "right": right, "why": why, "seconds": seconds,
            "tools": [e.tool for e in events if isinstance(e, Step) and e.status == "running"]}


def evaluate(agent, documents: list[dict], limits=None, limit: int | None = None,
             progress: bool = True, show_failures: bool = True) -> dict:
    """Ask every question (the first `limit` of them) of every document; the figures, and the
    failures when `show_failures`. Each document is drawn once, into a folder that goes when
    the run ends."""
    from tqdm import tqdm

    from assistant.config import Settings
    from assistant.eval.paper import render

    limits = limits or Settings().limits
    todo = [(d, i, q) for d in documents for i, q in enumerate(d["questions"], 1)][:limit]
    rows = []
    with tempfile.TemporaryDirectory(prefix="documents-eval-") as folder:
        drawn: dict[str, Path] = {}
        for doc, i, question in tqdm(todo, desc="documents", disable=not progress):
            if doc["id"] not in drawn:
                where = Path(folder) / f"{len(drawn)}"
                where.mkdir()
                drawn[doc["id"]] = render(doc, where)
            row = ask(agent, doc, drawn[doc["id"]], question, limits, document_values(doc))
            rows.append({"id": f"{doc['id']}#{i}", **row})
    return summarize(rows, show_failures)


def summarize(rows: list[dict], show_failures: bool = True) -> dict:
    """Accuracy overall, by kind of question and of document; seconds and tools per question;
    what was skipped and why; the failures (id, question, answer) only when asked for."""
    done = [r for r in rows if "skipped" not in r]

    def figures(group: list[dict]) -> dict:
        return {"n": len(group), "accuracy": sum(r["right"] for r in group) / max(1, len(group))}

    def by(key: str, kinds) -> dict:
        groups = defaultdict(list)
        for r in done:
            groups[r[key]].append(r)
        return {k: figures(groups[k]) for k in kinds if groups[k]}

    skipped = Counter(r["skipped"] for r in rows if "skipped" in r)
    seconds = [r["seconds"] for r in done]
    tools = Counter(t for r in done for t in r["tools"])
    result = {
        "n": len(done), "right": sum(r["right"] for r in done),
        "accuracy": sum(r["right"] for r in done) / max(1, len(done)),
        "by_question_kind": by("kind", QUESTION_KINDS),
        "by_document_kind": by("document_kind", DOCUMENT_KINDS),
        "seconds_per_question": statistics.fmean(seconds) if seconds else 0.0,
        "seconds_max": max(seconds, default=0.0),
        "tools": dict(tools.most_common()),
        "questions_without_tools": sum(not r["tools"] for r in done),
        "skipped": [{"reason": reason, "questions": n} for reason, n in skipped.items()],
    }
    if show_failures:
        result["failures"] = [{"id": r["id"], "q": r["q"], "expected": r["expected"],
                               "answer": r["answer"][:400], "why": r["why"],
                               "tools": r["tools"], "seconds": round(r["seconds"], 2)}
                              for r in done if not r["right"]]
    return result
