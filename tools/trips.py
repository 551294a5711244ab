"""A journey along a timetable grid: stops as rows, each departure a column of times. "What
time does the 08:10 from Harbourside reach Fairfield?" is the time in Fairfield's row that
stands under the 08:10 of Harbourside's; "how long does it take" the difference. The column
is found by where the times stand on the page, not by their order in a row, since a train
that skips a stop leaves a gap ("|", "-") or nothing there."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tools import days
from tools import values as V
from tools.layout import Layout, Row

GRID = 3  # the times a row must hold to be a stop's row of a grid


@dataclass
class Leg:
    """From a time at one stop to the time under it at another."""
    start: V.Value
    origin: Row
    end: V.Value
    stop: Row

    @property
    def minutes(self) -> int:
        return self.end.minutes - self.start.minutes


def _times(row: Row) -> list[tuple[float, V.Value]]:
    """The row's clock times with where each stands across the page (its middle, in the
    page's pixels: a cell's width shared out by the letters when it holds several)."""
    out = []
    for cell in row.cells:
        x0, _, x1, _ = cell.box
        size = max(1, len(cell.text))
        for v in cell.values:
            if v.kind == "time":
                out.append((x0 + (x1 - x0) * (v.start + v.end) / 2 / size, v))
    return out


def _stop(row: Row, least: int = GRID) -> bool:
    """Whether the row is a stop's: `least` times or more after a short label that names no
    days ("Mon-Fri  07:10  08:10  09:10" is a day's departures, not a stop; a sentence
    with times in it is a note)."""
    return len(_times(row)) >= least and 0 < len(row.label.split()) <= 5 and \
        days.covered(row.label) is None


def _block(rows: list[Row], at: int) -> list[Row]:
    """The grid rows around rows[at]: the neighbours on its page that are stops' rows too."""
    def grid(r: Row) -> bool:  # a stop many departures pass by may show one time
        return r.page == rows[at].page and _stop(r, least=1)

    lo = hi = at
    while lo > 0 and grid(rows[lo - 1]):
        lo -= 1
    while hi + 1 < len(rows) and grid(rows[hi + 1]):
        hi += 1
    return rows[lo:hi + 1]


def leg(layout: Layout, start: V.Value, named: Callable[[Row], float]) -> Leg | None:
    """The leg from the time `start` (as the question gives it) to the stop the question
    names (`named` scores a row by the question's words; the best row other than the one
    `start` stands in); None when `start` stands in no grid, no other stop is named, or the
    time under it there is not later (another direction, or a stop it skips)."""
    rows = layout.rows
    found = []
    for i, row in enumerate(rows):
        for x, v in _times(row):
            if v.minutes == start.minutes and _stop(row):
                found.append((named(row), i, x, v))
    if not found:
        return None
    _, at, x, begun = max(found, key=lambda f: f[0])  # the one the question's words name
    origin = rows[at]
    others = [(named(r), r) for r in _block(rows, at) if r is not origin]
    score, stop = max(others, key=lambda o: o[0], default=(0.0, None))
    if stop is None or score <= 0 or sum(s == score for s, _ in others) > 1:
        return None
    width = max(1.0, (origin.box[2] - origin.box[0]) / max(1, len(_times(origin))))
    under = [(abs(tx - x), v) for tx, v in _times(stop) if abs(tx - x) < width / 2]
    if not under:
        return None
    end = min(under, key=lambda u: u[0])[1]
    if end.minutes <= begun.minutes:
        return None
    return Leg(begun, origin, end, stop)
