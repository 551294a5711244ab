"""A page's text as a person reads it: lines grouped into rows by their geometry, each row's
label and values ("Cappuccino 3.10", "AMOUNT EUR 7.50", "Entry 14:05"), tables as rows under
column headers, and where on which page every piece stands.

The input is what a reader returns: lines with boxes (OCR of a photo or a scan, or a PDF's
text layer), in any order. A photo of paper is seldom square to the camera: the page's slant
is measured from the lines' own edges (OCR gives each line's four corners) and undone before
rows are formed, so "Cappuccino" on the left and "3.10" on the right of a page turned by
five degrees still share a row. Nothing here depends on a language: rows come from
positions, values from how numbers, times and dates are written (tools/values.py).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from statistics import median

from tools import days
from tools import values as V

LEADERS = re.compile(r"(?:\s*[.·…_]{2,}\s*|\s+-{2,}\s+)")


@dataclass
class Cell:
    """One piece of a row: its text (dot leaders gone), the label part and the values."""
    text: str
    box: list[int]  # x0, y0, x1, y1 in the page picture
    label: str = ""  # the words that are not values ("AMOUNT", "Cappuccino")
    values: list[V.Value] = field(default_factory=list)
    header: str = ""  # the column it stands under, in a table
    x: float = 0.0  # left and right edges, the slant undone
    right: float = 0.0


@dataclass
class Row:
    page: int
    number: int  # 1-based, top to bottom on its page
    cells: list[Cell]
    y: float = 0.0  # the middle, the slant undone

    @property
    def text(self) -> str:
        return "  ".join(c.text for c in self.cells)

    @property
    def label(self) -> str:
        return " ".join(c.label for c in self.cells if c.label)

    @property
    def values(self) -> list[V.Value]:
        return [v for c in self.cells for v in c.values]

    @property
    def box(self) -> list[int]:
        boxes = [c.box for c in self.cells]
        return [min(b[0] for b in boxes), min(b[1] for b in boxes),
                max(b[2] for b in boxes), max(b[3] for b in boxes)]

    def pairs(self) -> list[tuple[str, list[Cell]]]:
        """(label, the cells of its values) for each label in the row, the cells with values
        after it up to the next label: "Espresso 2.40  Tea 2.00" is two pairs, "Brezel 2 x
        0,90 1,80" one. A cell's own label and values pair first ("AMOUNT EUR 7.50")."""
        out: list[tuple[str, list[Cell]]] = []
        for cell in self.cells:
            if cell.label and (cell.values or not out or out[-1][1] or not cell.header):
                out.append((cell.label, [cell] if cell.values else []))
            elif cell.values and out:
                out[-1][1].append(cell)
            elif cell.values:
                out.append((cell.header, [cell]))
            elif out:  # a label cell under a header, after another: words of one label
                out[-1] = (f"{out[-1][0]} {cell.label}", out[-1][1])
        return out


@dataclass
class Layout:
    """The rows of every page read, top to bottom."""
    rows: list[Row]
    angles: dict[int, float] = field(default_factory=dict)  # page -> slant undone, degrees

    @property
    def pages(self) -> list[int]:
        return sorted({r.page for r in self.rows})


def _angle(line: dict) -> float | None:
    """The slant of a line from its top edge (OCR's four corners), degrees; None for a box."""
    points = line.get("points")
    if not points or len(points) < 2:
        return None
    (x0, y0), (x1, y1) = points[0], points[1]
    width = math.hypot(x1 - x0, y1 - y0)
    box = line["box"]
    if width < 2 * max(1, box[3] - box[1]) * 0.3 or width < 20:
        return None
    return math.degrees(math.atan2(y1 - y0, x1 - x0))


def slant(lines: list[dict]) -> float:
    """The page's slant: the median of its longer lines' slants (0 for a text layer). The
    detector gives some lines of a turned page a box square to the picture, exactly 0
    degrees, which says nothing of the slant: when five or more lines have one of their
    own, those decide."""
    angles = [a for a in map(_angle, lines) if a is not None and abs(a) < 30]
    turned = [a for a in angles if a != 0.0]
    if len(turned) >= 5:
        angles = turned
    return median(angles) if angles else 0.0


# a line's name with a number in it: "ICE 108", "RE 9", "IC 2170", "S5" (not "EUR 12", "VAT 20")
CODE = re.compile(r"(?<![\w.,])(?!(?:EUR|USD|GBP|CHF|VAT|TVA|IVA|MWST|QTY|NR|NO|TEL|KG|CM|MM)\b)"
                  r"[A-Z]{1,3}\s?\d{1,5}(?![\d.,:%]|\s?%)")


def _split(text: str, dotted: bool) -> tuple[str, list[V.Value]]:
    """A piece of text as its label (the words) and its values."""
    codes = [m.span() for m in CODE.finditer(text)]
    found = [v for v in V.find(text, dotted=dotted)
             if not any(s <= v.start and v.end <= e for s, e in codes)]
    rest = text
    for v in reversed(found):
        rest = rest[:v.start] + " " + rest[v.end:]
    label = LEADERS.sub(" ", rest)
    label = re.sub(r"(?<!\w)[xX×@=](?!\w)", " ", label)  # "2 x 0,90": the x is no label
    label = re.sub(r"\s+", " ", label).strip(" :;|-–—/*\t")
    if label and not re.search(r"[^\W\d_]", label):
        label = ""  # what is left is marks
    elif len(label) == 1 and found and text.rstrip().endswith(label):
        label = ""  # "2,39 B": a tax class after the amount, not a name
    return label, found


# words that join two values into one ("12:00 to 21:00", "10am till 4pm")
JOINS = frozenset("to till until and or bis und à au a al y e tot tm en ou - – — / & till".split())


def _pieces(text: str, dotted: bool) -> list[tuple[int, int]]:
    """Where one OCR line holds several label-value pairs ("Espresso 2.40 Tea 2.00", "Doors
    7:00 pm Music 8:00 pm"): a piece ends after a price or a time that words follow and
    another price or time ends. Counts inside a label ("Enfant (4 à 15 ans) 2,80 €") and
    ranges ("12:00 - 21:00") stay whole."""
    found = V.find(text, dotted=dotted)
    final = [v for v in found if v.money or v.kind in ("time", "date")]
    cuts = []
    for a, b in zip(final, final[1:], strict=False):
        between = text[a.end:b.start]
        words = re.findall(r"[^\W\d_]{3,}", between)
        joined = [w for w in re.findall(r"\S+", between.lower()) if w in JOINS]
        if words and not joined and not re.match(r"\s*[-–—/]", between):
            cut = a.end + len(between) - len(between.lstrip())
            cuts.append(cut)
    bounds = [0, *cuts, len(text)]
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def _dotted(lines: list[dict]) -> bool:
    """Whether "7.50" on this page is a time: the page is a timetable (more times with a
    colon than prices, or many numbers like 7.50 and no currency)."""
    text = " ".join(x["text"] for x in lines)
    colon = len(re.findall(r"(?<!\d)\d{1,2}:\d{2}(?!\d)", text))
    money = sum(1 for v in V.find(text) if v.kind == "amount" and v.currency)
    if colon >= 3 and colon > money:
        return True
    # "7.50  8.35  9.30 ... 17.15" under "MONDAY - SATURDAY": times through the day, nearly
    # all of them clock times, on a page that names days and prints no currency
    dotted = [(int(h), int(m)) for h, m in re.findall(r"(?<![\d.,])(\d{1,2})\.(\d{2})(?![\d.,])",
                                                      text)]
    clock = [(h, m) for h, m in dotted if h <= 23 and m <= 59]
    return (money == 0 and len(clock) >= 10 and len(clock) >= 0.9 * len(dotted) and
            sum(h >= 10 for h, _ in clock) >= 0.3 * len(clock) and
            days.covered(text) is not None)


def _group(lines: list[dict], angle: float) -> list[list[tuple]]:
    """The lines, turned back by `angle`, grouped into rows: (y, left, right, height,
    line) each, a row's lines side by side and not overlapping."""
    a = math.radians(-angle)
    cos, sin = math.cos(a), math.sin(a)
    placed = []
    for line in lines:
        x0, y0, x1, y1 = line["box"]
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        # the centre turned back; the width and height of the line itself, unturned
        ux, uy = cx * cos - cy * sin, cx * sin + cy * cos
        points = line.get("points")
        if points and len(points) == 4:
            width = math.dist(points[0], points[1])
            height = math.dist(points[1], points[2])
        else:
            width, height = x1 - x0, y1 - y0
        placed.append((uy, ux - width / 2, ux + width / 2, max(height, 1.0), line))
    placed.sort(key=lambda p: p[0])
    groups: list[list[tuple]] = []
    for item in placed:
        y, left, right, height, _ = item
        best, gap = None, None
        for g in groups[-6:]:  # rows close above
            gy = sum(p[0] for p in g) / len(g)
            gh = max(p[3] for p in g)
            d = abs(y - gy)
            if d < 0.5 * max(height, gh) and not any(left < p[2] and p[1] < right for p in g) \
                    and (gap is None or d < gap):
                best, gap = g, d
        if best is None:
            groups.append([item])
        else:
            best.append(item)
    return groups


def rows(lines: list[dict], page: int = 1) -> tuple[list[Row], float]:
    """The page's lines as rows, top to bottom, and the slant that was undone. A short
    line's corners give its slant only roughly (a degree off on a word or two), and a
    wrong degree across a wide page of two columns moves one column a whole line against
    the other: the slant kept is the one, of the lines' own and none, that sets the lines
    into fewer rows."""
    if not lines:
        return [], 0.0
    angle = slant(lines)
    dotted = _dotted(lines)
    groups = _group(lines, angle)
    if angle:
        level = _group(lines, 0.0)
        if len(level) < len(groups):
            groups, angle = level, 0.0
    groups.sort(key=lambda g: sum(p[0] for p in g) / len(g))
    out = []
    for number, g in enumerate(groups, 1):
        cells = []
        for _, left, right, _, line in sorted(g, key=lambda p: p[1]):
            raw = V.unglue(line["text"])
            pieces = _pieces(raw, dotted)
            width = (right - left) / max(1, len(raw))
            for start, end in pieces:  # "Doors 7pm  Music 8pm": a label and value each
                piece = raw[start:end]
                label, found = _split(piece, dotted)
                box = list(line["box"]) if len(pieces) == 1 else [
                    round(line["box"][0] + start * width), line["box"][1],
                    round(line["box"][0] + end * width), line["box"][3]]
                cells.append(Cell(LEADERS.sub(" ", piece).strip(), box, label, found,
                                  x=left + start * width, right=left + end * width))
        out.append(Row(page, number, cells, y=sum(p[0] for p in g) / len(g)))
    if dotted:
        _prices_among_prices(out)
    _priced_columns(out)
    _tables(out)
    from tools import grid  # it builds on this module's cells and rows

    grid.read(out)
    return out, angle


def _prices_among_prices(page_rows: list[Row]) -> None:
    """On a page of times written with a dot ("7.50"), a fare list still prints prices the
    same way: "7.40" under "14.80" and over "48.00" is a price. A dotted time is read as an
    amount when the cell above or below it in its column holds a price and no time, passed
    on up and down the column (over a "Free" between), never into a row of times."""
    changed = True
    while changed:
        changed = False
        for i, row in enumerate(page_rows):
            for cell in row.cells:
                if len(cell.values) == 1 and cell.values[0].kind == "time" and \
                        re.fullmatch(r"\d{1,2}\.\d{2}", cell.values[0].text) and \
                        sum(v.kind == "time" for v in row.values) == 1 and \
                        any(any(v.money for v in c.values) and
                            not any(v.kind == "time" for v in c.values)
                            for c in _above_and_below(page_rows, i, cell, valued=True)):
                    cell.label, cell.values = _split(cell.text, dotted=False)
                    changed = True


def _above_and_below(page_rows: list[Row], i: int, cell: Cell,
                     valued: bool = False) -> list[Cell]:
    """The cells of the rows just above and below row `i` that share `cell`'s column; with
    `valued`, the nearest above and below that hold values, two rows away at most."""
    def column(r: Row) -> list[Cell]:
        return [c for c in r.cells if min(cell.right, c.right) > max(cell.x, c.x) and
                (c.values or not valued)]
    out = []
    for side in (page_rows[max(0, i - 2):i][::-1], page_rows[i + 1:i + 3]):
        for r in side[:2 if valued else 1]:
            if found := column(r):
                out += found
                break
    return out


def _priced_columns(page_rows: list[Row]) -> None:
    """A price list prints its currency on a few prices only ("Coupe 22", "Coupe + barbe
    30 €", "Taille de barbe 12"): a whole number alone in its cell is a price when the
    cell above or below it in its column holds one, passed on down and up the column."""
    def price(cell: Cell) -> V.Value | None:
        money = [v for v in cell.values if v.money and v.currency]
        return money[0] if len(cell.values) == 1 and money else None

    changed = True
    while changed:
        changed = False
        for i, row in enumerate(page_rows):
            for cell in row.cells:
                if len(cell.values) != 1 or cell.values[0].kind != "amount" or \
                        cell.values[0].money or not re.fullmatch(r"\d{1,4}", cell.values[0].text):
                    continue
                like = next((p for c in _above_and_below(page_rows, i, cell)
                             if (p := price(c)) is not None), None)
                if like is not None:
                    v = cell.values[0]
                    cell.values = [V.Value("amount", v.text, v.start, v.end, v.number,
                                           like.currency)]
                    changed = True


def _tables(page_rows: list[Row]) -> None:
    """Name each cell under a header row by its column ("Sat" over "08:10"): a header is a
    row of two or more short cells without values, and a row below it takes its names (for
    its words as for its values) when two or more of its values stand under two different
    header cells, or one does and its cells stand under three."""
    header: list[Cell] | None = None
    stacked = False  # the row above was a header too
    for i, row in enumerate(page_rows):
        if len(row.cells) >= 2 and not row.values and \
                all(len(c.text.split()) <= 4 and ":" not in c.text and not V.CODE.search(c.text)
                    for c in row.cells):  # not "Invoice no.  INV-0412": a label and its code
            if i + 1 < len(page_rows) and heads_columns(row.cells, page_rows[i + 1]):
                header = None  # "CONES  CUPS" over two lists of items: sections, side by side
                continue
            # a header under a header ("Depart Port Ardan" over "Time  Days"): each name
            # takes the one above it
            header = _under(header, row.cells) if header and stacked else row.cells
            stacked = True
            continue
        stacked = False
        if header is None:
            continue
        if not row.values:
            if len(row.cells) > 1:
                header = None
            continue  # a line of words under an item ("tomato, mozzarella"): the table goes on
        edges = [(h.x + h.right) / 2 for h in header]
        bounds = [(edges[j - 1] + edges[j]) / 2 if j else -math.inf for j in range(len(edges))]
        under = {}
        for cell in row.cells:
            middle = (cell.x + cell.right) / 2
            j = max(k for k, b in enumerate(bounds) if middle >= b)
            if header[j].right >= cell.x - (cell.right - cell.x):
                under[id(cell)] = header[j].text
        valued = {under[id(c)] for c in row.cells if c.values and id(c) in under}
        if len(valued) < 2 and not (valued and len(set(under.values())) >= 3):
            header = None  # not a row of this table ("Total  30" under it)
            continue
        for cell in row.cells:  # words too: "Room" over "Language Lab"
            cell.header = under.get(id(cell), "")


def heads_columns(cells: list[Cell], below: Row) -> bool:
    """Whether a row of names heads lists of items side by side ("CONI  COPPETTE" over
    "Piccolo 2,80  Piccola 2,50"), not a table's columns: each name starts where an item's
    words start in the row below, as a heading stands over its list."""
    def starts_under(head: Cell) -> bool:
        slack = 1.5 * (head.right - head.x) / max(1, len(head.text))
        return any(c.label and abs(c.x - head.x) <= slack for c in below.cells)
    return len(cells) >= 2 and len(below.cells) > len(cells) and all(map(starts_under, cells))


def _under(upper: list[Cell], lower: list[Cell]) -> list[Cell]:
    """The lower header's cells named with the upper cell they stand under, when the upper
    row groups them (fewer cells, each over one or more of the lower)."""
    if len(upper) >= len(lower):
        return lower
    out = []
    for cell in lower:
        over = [u for u in upper if u.x - (u.right - u.x) / max(1, len(u.text)) <= cell.x]
        above = over[-1] if over else upper[0]
        out.append(Cell(f"{above.text} {cell.text}", cell.box, cell.label, cell.values,
                        x=cell.x, right=cell.right))
    return out


def read(pages: list[tuple[int, list[dict]]]) -> Layout:
    """The layout of pages, each given as (page number, its lines)."""
    all_rows, angles = [], {}
    for page, lines in pages:
        page_rows, angle = rows(lines, page)
        all_rows += page_rows
        angles[page] = round(angle, 1)
    return Layout(all_rows, angles)


def shown(layout: Layout, limit: int = 80) -> str:
    """The layout as text for a model: a row a line, its cells split by " | ", table cells
    with their column ("Sat: 08:10"), the page before each page's rows when there are
    several."""
    out, page = [], None
    many = len(layout.pages) > 1
    for row in layout.rows[:limit]:
        if many and row.page != page:
            out.append(f"page {row.page}:")
            page = row.page
        out.append(" | ".join(f"{c.header}: {c.text}" if c.header else c.text
                              for c in row.cells))
    if len(layout.rows) > limit:
        out.append(f"... {len(layout.rows) - limit} more rows")
    return "\n".join(out)
