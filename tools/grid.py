"""Hour and minute grids, as bus and tram stops print their times: under each column
heading (the days it holds for), a row an hour, its hour first and then its minutes:

    Maandag t/m vrijdag        Zaterdag        Zon- en feestdagen
    7   02 17 32 47            7   15 45
    8   02 17 32 47            8   15 45       8   25

Read as a list of numbers it means nothing; read as a grid it is 7:02, 7:17, ... for each
column. The hour columns are found by what they hold, not by a word: a column of whole
numbers that goes up by one an hour row by row. Each hour column starts a group of
columns that runs to the next one, named by the heading above it. An hour the recogniser
missed on a row is the row's hour in the other groups, or the row above's plus one."""

from __future__ import annotations

import re
from statistics import median

from tools import values as V
from tools.layout import Cell, Row

NUMBERS = re.compile(r"\d{1,2}(?:\s+\d{1,2})*")


def _tokens(row: Row) -> list[tuple[float, float, int, list[int]]] | None:
    """(left, right, number, box) of each number of a row made only of 1-2 digit numbers."""
    out = []
    for c in row.cells:
        if not NUMBERS.fullmatch(c.text.strip()):
            return None
        width = (c.right - c.x) / max(1, len(c.text))
        for m in re.finditer(r"\d+", c.text):
            left, right = c.x + m.start() * width, c.x + m.end() * width
            box = [round(c.box[0] + m.start() * width), c.box[1],
                   round(c.box[0] + m.end() * width), c.box[3]]
            out.append((left, right, int(m.group(0)), box))
    return out if len(out) >= 2 and all(t[2] < 60 for t in out) else None


def _columns(grid: list[list[tuple]], tolerance: float) -> list[list[tuple[int, tuple]]]:
    """The tokens of all grid rows gathered into columns by their left edge:
    each column a list of (row index, token)."""
    placed = sorted((t[0], i, t) for i, tokens in enumerate(grid) for t in tokens)
    columns: list[list[tuple[int, tuple]]] = []
    last = None
    for left, i, t in placed:
        if last is None or left - last > tolerance:
            columns.append([])
        columns[-1].append((i, t))
        last = left
    return columns


def _is_hours(column: list[tuple[int, tuple]], rows: int) -> bool:
    """A column that goes up by one hour row by row (an hour may be missing)."""
    if len(column) < max(3, 0.5 * rows) or len({i for i, _ in column}) < len(column):
        return False
    hours = [t[2] for _, t in sorted(column, key=lambda p: p[0])]
    if any(h > 24 for h in hours) or any(b <= a for a, b in zip(hours, hours[1:], strict=False)):
        return False
    ones = sum(1 for a, b in zip(hours, hours[1:], strict=False) if b - a == 1)
    return ones >= 0.6 * (len(hours) - 1)


def _name(left: float, right: float, header: list[Cell]) -> str:
    """The heading over the span of a group of columns (most overlap)."""
    best, most = "", 0.0
    for h in header:
        overlap = min(right, h.right) - max(left, h.x)
        if overlap > most:
            best, most = h.text, overlap
    return best


def read(page_rows: list[Row]) -> None:
    """Turn each hour/minute grid of a page's rows into times, in place: the grid's rows get
    one cell a time ("7:15", under "Zaterdag"), its heading row stays as it is."""
    i = 0
    while i < len(page_rows):
        j = i
        grid = []
        while j < len(page_rows) and (tokens := _tokens(page_rows[j])) is not None:
            grid.append(tokens)
            j += 1
        if len(grid) >= 3:
            header = page_rows[i - 1].cells if i and not page_rows[i - 1].values else []
            _times(page_rows[i:j], grid, header)
        i = max(j, i + 1)


def _times(grid_rows: list[Row], grid: list[list[tuple]], header: list[Cell]) -> None:
    height = median(c.box[3] - c.box[1] for r in grid_rows for c in r.cells)
    columns = _columns(grid, 0.6 * height)
    hours = [c for c in columns if _is_hours(c, len(grid))]
    if not hours:
        return
    starts = [min(t[0] for _, t in c) for c in hours]
    ends = starts[1:] + [float("inf")]
    names = [_name(s - height, e - height, header) for s, e in zip(starts, ends, strict=True)]
    hour_of = [{i: t[2] for i, t in c} for c in hours]
    marks = {id(t) for c in hours for _, t in c}
    last: list[int | None] = [None] * len(hours)
    for i, (row, tokens) in enumerate(zip(grid_rows, grid, strict=True)):
        cells = []
        seen = [h[i] for h in hour_of if i in h]
        for g, (start, end) in enumerate(zip(starts, ends, strict=True)):
            minutes = [t for t in tokens if start - height <= t[0] < end - height and
                       id(t) not in marks]
            hour = hour_of[g].get(i)
            if hour is None:
                hour = seen[0] if seen else (last[g] + 1 if last[g] is not None else None)
            if hour is None or hour > 24:
                continue
            last[g] = hour
            for left, right, minute, box in minutes:
                text = f"{hour}:{minute:02d}"
                cells.append(Cell(text, box, names[g], V.find(text), names[g], left, right))
        if cells:
            row.cells = cells
