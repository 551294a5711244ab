"""Answers from what was read: the row a question is about, its value, and the arithmetic the
question asks for, computed (tools/calculate.py), never guessed.

A question about one item finds the entry (a row's label and values, or a table cell under
its column) whose words match the question's. The words are the document's own: a question
word that stands nowhere in the document counts for nothing, whatever its language, and a
word that stands in many rows counts for less than a rare one ("Cappuccino" over "Café").
OCR's slips and plurals still match ("croissants", "Cappucino").

What the question wants done with the entries comes from its values first (two times in
"how long between the 07:50 and the 08:35?" are a difference, whatever the words) and then
from a few words, in the languages of the documents people bring (totals, change, splitting a
bill, the first or last, the cheapest, which page, yes or no). Those word lists only choose
the arithmetic; they never decide which row is meant.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal

from tools import values as V
from tools.layout import Cell, Layout, Row


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in text if not unicodedata.combining(c)).replace("ß", "ss")


def words(text: str) -> list[str]:
    """The words of `text` (letters, any script; digits aside), folded: case and accents."""
    return [w for w in re.findall(r"[^\W\d_]+", _fold(text)) if len(w) >= 2 or not w.isascii()]


def _cue(*stems: str) -> re.Pattern:
    return re.compile(r"(?<!\w)(?:" + "|".join(stems) + r")", re.I)


# What the question wants done. Hints for choosing the arithmetic, in the documents' languages.
TOTAL = _cue(r"total", r"altogether", r"all together", r"together", r"in all\b", r"sum\b",
             r"combined", r"both\b", r"add(?:ed)? up", r"come to", r"comes to", r"insgesamt",
             r"zusammen", r"ensemble", r"en tout", r"en total", r"in totale", r"totaal",
             r"how much (?:for|would|will|do|does|is it for)", r"what would .* cost",
             r"how much .* and ")
CHANGE = _cue(r"change\b", r"get back", r"back from", r"paid? with", r"paying with",
              r"pay with", r"hand over", r"from an? \d", r"from a (?:ten|twenty|fifty|hundred)",
              r"rendu", r"wechselgeld", r"cambio\b", r"resto\b")
SPLIT = _cue(r"split", r"share", r"each\b", r"per (?:person|head)", r"apiece", r"divid",
             r"between \d", r"among \d", r"pro person", r"par personne", r"por persona")
LEAST = _cue(r"cheapest", r"least expensive", r"lowest", r"smallest", r"minimum", r"cheaper",
             r"moins cher", r"billigste", r"günstigste", r"mas barat", r"più economic")
MOST = _cue(r"most expensive", r"dearest", r"priciest", r"highest", r"largest", r"biggest",
            r"maximum", r"more expensive", r"le plus cher", r"teuerste", r"mas car",
            r"più car")
FIRST = _cue(r"first\b", r"earliest", r"premier", r"première", r"erste", r"primer", r"prim[oa]\b")
LAST = _cue(r"last\b", r"latest", r"final\b", r"dernier", r"dernière", r"letzte", r"[uú]ltim")
AFTER = _cue(r"after\b", r"next\b", r"from\b", r"following", r"later than", r"après",
             r"nach\b", r"después", r"dopo")
BEFORE = _cue(r"before\b", r"earlier than", r"by\b", r"avant", r"vor\b", r"antes", r"prima")
PAGE = _cue(r"which page", r"what page", r"on page", r"page (?:is|has|number)", r"pages? \?",
            r"welche seite", r"quelle page", r"qu[eé] p[aá]gina")
DAYS = _cue(r"days?\b", r"how long until", r"how many weeks", r"tage\b", r"jours\b", r"d[ií]as\b")
MINUTES = _cue(r"how long", r"minutes?\b", r"gap", r"difference", r"between", r"wait",
               r"how much time", r"duration", r"takes?\b")
YES_NO = re.compile(r"^\s*(?:so\s+|and\s+|but\s+|ok\s+|hey\s+)?(?:is|are|was|were|do|does|did|"
                    r"can|could|will|would|has|have|had|should|shall|may|must|any)\b", re.I)
NEGATIVE = _cue(r"no\b", r"not\b", r"none\b", r"never\b", r"closed\b", r"cancel", r"n/a\b",
                r"kein", r"nicht\b", r"geschlossen", r"ferm[eé]", r"pas de\b", r"aucun",
                r"cerrad", r"sin\b", r"chius", r"nessun", r"geen\b", r"gesloten", r"fechad",
                r"sem\b", r"nao\b", r"não\b", r"—$", r"-$", r"✗", r"×$")
# the words with which a document names its total ("Total", "Summe", "Importe")
TOTAL_ROW = _cue(r"total", r"summe", r"gesamt", r"somme", r"montant", r"importe", r"totale",
                 r"amount due", r"balance due", r"to pay", r"à payer", r"zu zahlen", r"a pagar",
                 r"da pagare", r"te betalen", r"grand total", r"bedrag", r"betrag")
NUMBER_WORDS = {w: n for n, ws in enumerate([
    "", "a an one un une uno una ein eine einen eins um uma een",
    "two deux zwei dos due dois twee pair couple",
    "three trois drei tres tre três drie", "four quatre vier cuatro quattro quatro",
    "five cinq fünf cinco cinque vijf", "six sechs seis sei zes",
    "seven sept sieben siete sette sete zeven", "eight huit acht ocho otto oito",
    "nine neuf neun nueve nove negen", "ten dix zehn diez dieci dez tien"])
    for w in ws.split()} | {"dozen": 12, "twelve": 12, "eleven": 11, "twenty": 20,
                            "fifty": 50, "hundred": 100}


@dataclass
class Entry:
    """One thing a page says: a label and its values, in a row (and column) of a page."""
    row: Row
    label: str
    cells: list[Cell]
    header: str = ""  # the column, in a table
    section: str = ""  # the heading above it ("DESSERTS")

    @property
    def values(self) -> list[V.Value]:
        return [v for c in self.cells for v in c.values]

    @property
    def box(self) -> list[int]:
        boxes = [c.box for c in self.cells] or [c.box for c in self.row.cells]
        return [min(b[0] for b in boxes), min(b[1] for b in boxes),
                max(b[2] for b in boxes), max(b[3] for b in boxes)]

    @property
    def name(self) -> str:
        return ", ".join(x for x in (self.label, self.header) if x) or self.row.text


@dataclass
class Found:
    """An answer read off a document."""
    text: str  # the sentence for the user
    entries: list[Entry] = field(default_factory=list)  # where it was read
    values: list[str] = field(default_factory=list)  # the values it gives, as written
    kind: str = "value"  # value, row, total, change, split, difference, days, yesno, page

    def data(self) -> dict:
        return {"answer": self.text, "kind": self.kind, "values": self.values,
                "cited": [{"page": e.row.page, "row": e.row.number, "text": e.row.text,
                           "box": e.box} for e in self.entries]}


def entries(layout: Layout) -> list[Entry]:
    out, section = [], ""
    for row in layout.rows:
        pairs = row.pairs()
        if not row.values and len(row.cells) == 1 and len(words(row.text)) <= 4:
            section = row.text  # a heading, or a note ("Sundays: closed"): both an entry
        for label, cells in pairs or [(row.text, [])]:
            header = next((c.header for c in cells if c.header), "")
            if header and len(cells) > 1:  # a row of a table: one entry per column
                for c in cells:
                    out.append(Entry(row, label, [c], c.header, section))
            else:
                out.append(Entry(row, label, cells, header, section))
    return out


def _similar(a: str, b: str) -> bool:
    """Whether the question's word `a` is the document's word `b`, OCR slips, plurals and
    abbreviations aside."""
    if a == b:
        return True
    short = min(len(a), len(b))
    if short >= 4:
        prefix = len(_common(a, b))
        if prefix >= max(4, math.ceil(0.75 * short)):
            return True
    if len(b) >= 3 and len(a) >= len(b) + 2 and a.startswith(b):
        return True  # the document abbreviates: "Sat" for "saturday"
    allowed = 1 if short < 8 else 2  # "capucino" is a cappuccino
    return short >= 5 and abs(len(a) - len(b)) <= allowed and _edits(a, b) <= allowed


def _common(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _edits(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


class Matcher:
    """Scores entries against a question's words, by the document's own vocabulary."""

    def __init__(self, all_entries: list[Entry]):
        self.entries = all_entries
        self.own = [set(words(f"{e.label} {e.header}")) for e in all_entries]
        self.context = [set(words(f"{e.section} {e.row.text}")) for e in all_entries]
        rows: dict[int, set[str]] = {}
        for e, own, context in zip(all_entries, self.own, self.context, strict=True):
            rows.setdefault(id(e.row), set()).update(own | context)
        self.rows = len(rows) or 1
        self.df: dict[str, int] = {}
        for vocabulary in rows.values():
            for w in vocabulary:
                self.df[w] = self.df.get(w, 0) + 1

    def weight(self, word: str) -> float:
        return math.log(1 + self.rows / self.df.get(word, 1)) * min(len(word), 8) / 8

    def match(self, question_word: str, vocabulary: set[str]) -> str | None:
        return next((w for w in vocabulary if _similar(question_word, w)), None)

    def known(self, question: str) -> list[str]:
        """The question's words that the document has."""
        vocabulary = set(self.df)
        return [w for w in dict.fromkeys(words(question)) if self.match(w, vocabulary)]

    def scores(self, question_words: list[str]) -> list[tuple[float, set[str], Entry]]:
        out = []
        for e, own, context in zip(self.entries, self.own, self.context, strict=True):
            score, hit = 0.0, set()
            for q in question_words:
                if (w := self.match(q, own)) is not None:
                    score += self.weight(w)
                    hit.add(q)
                elif (w := self.match(q, context)) is not None:
                    score += 0.5 * self.weight(w)
                    hit.add(q)
            if score:
                out.append((score, hit, e))
        out.sort(key=lambda s: (-s[0], s[2].row.page, s[2].row.number))
        return out


def _quantities(question: str, items: list[str]) -> dict[str, int]:
    """How many of each item word the question asks for: "two croissants and an espresso"."""
    tokens = re.findall(r"\d+|[^\W\d_]+", _fold(question))
    out = {}
    for i, t in enumerate(tokens):
        if not any(_similar(t, item) for item in items):
            continue
        for back in (1, 2):
            if i - back < 0:
                break
            before = tokens[i - back]
            if before.isdigit() and int(before) < 100:
                out[t] = int(before)
                break
            if before in NUMBER_WORDS:
                out[t] = NUMBER_WORDS[before]
                break
    return out


def _money_value(e: Entry) -> V.Value | None:
    amounts = [v for v in e.values if v.kind == "amount"]
    money = [v for v in amounts if v.money]
    return (money or amounts or [None])[-1]


def _sentence(e: Entry, shown: list[V.Value], pages: int) -> str:
    where = f" (page {e.row.page})" if pages > 1 else ""
    if not shown:
        return f'It says "{e.row.text}"{where}.'
    return f"{e.name}: {', '.join(v.text for v in shown)}{where}."


def answer(question: str, layout: Layout) -> Found | None:
    """What the document says to `question`, or None when the question's words find nothing
    in it and its values ask for no arithmetic."""
    asked = V.find(question, dotted=True)
    times = [v for v in asked if v.kind == "time"]
    dates = [v for v in asked if v.kind == "date"]
    if len(times) >= 2 and not (TOTAL.search(question) and not MINUTES.search(question)):
        a, b = times[0], times[1]
        gap = b.minutes - a.minutes
        gap += 24 * 60 if gap < 0 else 0
        return Found(f"From {a.text} to {b.text} is {V.minutes_text(gap)}.", [],
                     [V.minutes_text(gap)], "difference")
    if len(dates) >= 2:
        days = abs((dates[1].day - dates[0].day).days)
        return Found(f"From {dates[0].text} to {dates[1].text} is {days} days.", [],
                     [f"{days} days"], "days")
    found = entries(layout)
    matcher = Matcher(found)
    known = matcher.known(question)
    scored = matcher.scores(known)
    pages = len(layout.pages)
    if PAGE.search(question) and scored:
        best = scored[0][2]
        return Found(f'Page {best.row.page}: "{best.row.text}".', [best],
                     [f"page {best.row.page}"], "page")
    numbers = [v for v in asked if v.kind == "amount"]
    if CHANGE.search(question) or SPLIT.search(question) or TOTAL.search(question) or \
            _quantities(question, known) or _items(scored, len(known)) > 1:
        done = _arithmetic(question, found, matcher, known, scored, numbers)
        if done is not None:
            return done
    if not scored and (LEAST.search(question) or MOST.search(question)):
        scored = [(1.0, set(), e) for e in found if _money_value(e) is not None]
    if not scored:
        return None
    best_score = scored[0][0]
    top = [s for s in scored if s[0] >= best_score * 0.999]
    if YES_NO.search(question):
        e = top[0][2]
        said = f"{e.row.text}"
        no = bool(NEGATIVE.search(said)) or all(not c.values and NEGATIVE.search(c.text)
                                                for c in e.cells if c.text)
        return Found(f'{"No" if no else "Yes"}: "{said}".', [e], ["no" if no else "yes"], "yesno")
    return _value(question, top, scored, pages, times)


def _items(scored, known: int) -> int:
    """How many different priced rows the question names, each by words of its own."""
    seen, rows = set(), set()
    for score, hit, e in scored:
        if _money_value(e) is None or not (hit - seen) or score < scored[0][0] * 0.5:
            continue
        if id(e.row) not in rows:
            rows.add(id(e.row))
            seen |= hit
    return len(rows) if known > 1 else 0


def _value(question, top, scored, pages, times) -> Found:
    """One entry's value; among entries that match as well, the first, last, cheapest or
    dearest, or the first time after one the question gives."""
    candidates = [e for _, _, e in top]
    timed = [(v, e) for e in candidates for v in e.values if v.kind == "time"]
    priced = [(v, e) for e in candidates if (v := _money_value(e)) is not None]
    if timed and (FIRST.search(question) or LAST.search(question) or times):
        if times and AFTER.search(question):
            later = [(v, e) for v, e in timed if v.minutes >= times[0].minutes]
            timed = later or timed
            v, e = min(later or timed, key=lambda p: p[0].minutes)
        elif times and BEFORE.search(question):
            v, e = max([p for p in timed if p[0].minutes <= times[0].minutes] or timed,
                       key=lambda p: p[0].minutes)
        elif LAST.search(question):
            v, e = max(timed, key=lambda p: p[0].minutes)
        else:
            v, e = min(timed, key=lambda p: p[0].minutes)
        return Found(_sentence(e, [v], pages), [e], [v.text], "value")
    if len(priced) > 1 and (LEAST.search(question) or MOST.search(question)):
        pick = min if LEAST.search(question) else max
        v, e = pick(priced, key=lambda p: p[0].number)
        return Found(_sentence(e, [v], pages), [e], [v.text], "value")
    e = candidates[0]
    vals = e.values
    if not vals:
        return Found(_sentence(e, [], pages), [e], [], "row")
    if all(v.kind == "time" for v in vals) and len(vals) > 1 and not e.header:
        shown = vals
    else:
        money = _money_value(e)
        shown = [money] if money is not None else [vals[-1]]
    return Found(_sentence(e, shown, pages), [e], [v.text for v in shown], "value")


def _arithmetic(question, found, matcher, known, scored, numbers) -> Found | None:
    """Totals of what the question names (times how many), the change from a note, a bill
    split between people."""
    quantities = _quantities(question, known)
    picked: list[tuple[Entry, int]] = []
    covered: set[str] = set()
    rows: set[int] = set()
    for score, hit, e in scored:
        if score < scored[0][0] * 0.5 or not (hit - covered) or id(e.row) in rows:
            continue
        if _money_value(e) is None:
            continue
        count = next((n for q, n in quantities.items() if any(_similar(q, h) for h in hit)), 1)
        picked.append((e, count))
        covered |= hit
        rows.add(id(e.row))
    counts = set(quantities.values())
    plain = [n for n in numbers if n.number is not None and
             not any(n.number == c for c in counts)]
    split = SPLIT.search(question)
    change = CHANGE.search(question)
    if not picked or (split or change) and not (TOTAL.search(question) or quantities or
                                                 len(picked) > 1):
        total_entry = _document_total(found)
        if total_entry is None:
            return None
        picked = [(total_entry, 1)]
    like = _money_value(picked[0][0])
    total = sum((_money_value(e).number * n for e, n in picked), Decimal(0))
    parts = " + ".join(f"{n} × {e.label} ({_money_value(e).text})" if n != 1 else
                       f"{e.label} ({_money_value(e).text})" for e, n in picked)
    cited = [e for e, _ in picked]
    if change and plain:
        paid = plain[-1].number
        back = paid - total
        return Found(f"The change from {V.money(paid, like)} is {V.money(back, like)} "
                     f"({parts} = {V.money(total, like)}).", cited, [V.money(back, like)],
                     "change")
    people = [n for n in plain if n.number == n.number.to_integral() and 1 < n.number < 100]
    spelled = [NUMBER_WORDS[w] for w in re.findall(r"[^\W\d_]+", _fold(question))
               if w in NUMBER_WORDS and NUMBER_WORDS[w] > 1]
    if split and (people or spelled):
        n = int(people[-1].number) if people else spelled[-1]
        each = (total / n).quantize(Decimal("0.01"))
        return Found(f"Split {n} ways, {V.money(total, like)} is {V.money(each, like)} each.",
                     cited, [V.money(each, like)], "split")
    if len(picked) == 1 and picked[0][1] == 1:
        return None  # one thing, once: its value, not a sum
    return Found(f"That comes to {V.money(total, like)}: {parts}.", cited,
                 [V.money(total, like)], "total")


def _document_total(found: list[Entry]) -> Entry | None:
    """The entry that gives the document's total: the last labelled as one, else the one
    with the largest amount of money."""
    named = [e for e in found if TOTAL_ROW.search(e.label) and _money_value(e) is not None]
    if named:
        return named[-1]
    priced = [e for e in found if (v := _money_value(e)) is not None and v.money]
    return max(priced, key=lambda e: _money_value(e).number) if priced else None
