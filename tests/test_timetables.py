"""Timetables and opening hours: the days a column or a line holds for, in the page's
language, meet the day a question asks about; hour and minute grids become times; a date
inside a season's span picks the season's hours; a departure on a grid of stops reaches
another stop at the time under it."""

from __future__ import annotations

import pytest

from tests.page_lines import line
from tools import days, layout, lookup


@pytest.mark.parametrize("text, held", [
    ("Mo-Fr", {0, 1, 2, 3, 4}),
    ("Montag bis Samstag", {0, 1, 2, 3, 4, 5}),
    ("Sonn- und Feiertage", {6, days.HOLIDAY}),
    ("dal lunedì al venerdì", {0, 1, 2, 3, 4}),
    ("Thu & Fri only", {3, 4}),
    ("tous les jours sauf le lundi", {1, 2, 3, 4, 5, 6}),
    ("Tägl.", None),  # an abbreviation of "daily" it does not know: no days, not all days
    ("Samedis, dimanches et jours fériés", {5, 6, days.HOLIDAY}),
    ("Weekends", {5, 6}),
    ("sexta a domingo", {4, 5, 6}),
])
def test_the_days_a_line_holds_for_in_its_own_language(text, held):
    found = days.covered(text)
    assert (set(found) if found is not None else None) == held


def test_a_short_day_counts_only_where_it_is_plainly_a_day():
    assert days.covered("Sa") == {5}  # alone in a column heading
    assert days.covered("Sa 9-13") == {5}
    assert days.covered("so good") is None  # "so" is German Sunday, and a word
    assert days.asked("how much was the sun cream") is None
    assert days.asked("do they deliver on sundays?") == {6}
    assert days.asked("open at the weekend?") == {5, 6}


def grid_page():
    """A tram stop's grid: a heading a column group, its hour and then its minutes; the
    recogniser missed the hours of the second row."""
    rows = [("Montag - Freitag", 100), ("Samstag", 700), ("Sonn- und Feiertage", 1200)]
    out = [line("Linie 5 Hauptbahnhof", 100, 20, 600, 60)]
    out += [line(t, x, 100, x + 25 * len(t), 140) for t, x in rows]
    grid = [
        (["5", "40"], [], []),
        ([None, "10", "30", "50"], [None, "20"], []),
        (["7", "10", "30", "50"], ["7", "20", "50"], ["7", "35"]),
        (["8", "05", "35"], ["8", "20", "50"], ["8", "35"]),
        (["9", "05", "35"], ["9", "50"], ["9", "35"]),
    ]
    for i, groups in enumerate(grid):
        y = 160 + 50 * i
        for start, cells in zip((100, 700, 1200), groups, strict=True):
            for j, text in enumerate(cells):
                if text is not None:
                    x = start + 90 * j
                    out.append(line(text, x, y, x + 40, y + 36))
    return layout.read([(1, out)])


def test_an_hour_and_minute_grid_reads_as_times_under_their_days():
    page = grid_page()
    times = {(c.header, c.text) for r in page.rows for c in r.cells if c.header}
    assert ("Samstag", "6:20") in times  # the hour no one printed, from the row above
    assert ("Montag - Freitag", "6:50") in times and ("Sonn- und Feiertage", "9:35") in times
    assert not any(t.startswith(("0:", "40:")) for _, t in times)


@pytest.mark.parametrize("question, value", [
    ("first tram on saturday?", "6:20"),
    ("when is the last one on a sunday", "9:35"),
    ("it's 7:15 on a wednesday, when is the next tram?", "7:30"),
    ("what is the first departure on a public holiday?", "7:35"),
])
def test_a_question_about_a_day_takes_that_days_column(question, value):
    found = lookup.answer(question, grid_page())
    assert found is not None and found.values == [value], found


def ferry_page():
    """Two header rows (where from, then time and days) and a days cell beside each time."""
    rows = [[("Leaving Harbour", 100), ("Leaving Island", 600)],
            [("Time", 100), ("Days", 300), ("Time", 600), ("Days", 800)],
            [("06:50", 100), ("Mon-Fri", 300), ("07:40", 600), ("Mon-Fri", 800)],
            [("10:00", 100), ("Daily", 300), ("11:10", 600), ("Daily", 800)],
            [("17:30", 100), ("Daily", 300), ("18:20", 600), ("Sat-Sun", 800)],
            [("19:45", 100), ("Fri only", 300), ("20:30", 600), ("Mon-Fri", 800)]]
    out = [line("Harbour - Island crossing", 100, 20, 700, 60)]
    for i, cells in enumerate(rows):
        y = 100 + 50 * i
        out += [line(t, x, y, x + 22 * len(t), y + 36) for t, x in cells]
    return layout.read([(1, out)])


@pytest.mark.parametrize("question, value", [
    ("last boat leaving the island on a tuesday?", "20:30"),
    ("last boat leaving the island on a saturday?", "18:20"),
    ("last boat from the harbour on a monday", "17:30"),
    ("earliest sailing from the harbour on sunday", "10:00"),
])
def test_the_days_beside_each_time_and_its_column_choose_the_sailing(question, value):
    found = lookup.answer(question, ferry_page())
    assert found is not None and found.values == [value], found


def hours_page():
    lines = [line("Opening hours", 80, 20, 400, 60),
             line("Monday", 80, 100, 260, 136), line("Closed", 500, 100, 640, 136),
             line("Tuesday", 80, 150, 260, 186), line("9am - 5pm", 500, 150, 700, 186),
             line("Wednesday", 80, 200, 300, 236), line("9am - 8pm", 500, 200, 700, 236),
             line("Saturday", 80, 250, 260, 286), line("11am - 3pm", 500, 250, 720, 286),
             line("Christmas week (21 December - 2 January 2027):", 80, 320, 1000, 356),
             line("Tuesday to Saturday 10am - 2pm only. Closed on Mondays.", 80, 370,
                  1100, 406)]
    return layout.read([(1, lines)])


@pytest.mark.parametrize("question, value", [
    ("how many hours is it open on saturday?", "4 hours"),
    ("until when is it open on wednesday", "8pm"),
    ("what time does it close on tuesday?", "5pm"),
    ("we'd come on wednesday 30 december, until when are they open?", "2pm"),
])
def test_opening_hours_by_day_and_by_season(question, value):
    found = lookup.answer(question, hours_page())
    assert found is not None and found.values == [value], found


def stops_page(skipped: str = "|"):
    """Stops as rows and departures as columns; the second departure passes Kirchberg by."""
    rows = [("Bahnhof Süd", ["06:05", "06:35", "07:05"]),
            ("Kirchberg", ["06:11", skipped, "07:11"]),
            ("Am Markt", ["06:18", "06:44", "07:18"]),
            ("Klinikum", ["06:26", "06:52", "07:26"])]
    lines = []
    for i, (stop, times) in enumerate(rows):
        y = 60 + 40 * i
        lines.append(line(stop, 40, y, 240, y + 26))
        for j, t in enumerate(times):
            lines.append(line(t, 300 + 110 * j, y, 380 + 110 * j, y + 26))
    return layout.read([(1, lines)])


@pytest.mark.parametrize("question, values", [
    ("the 06:35 from bahnhof süd, when is it at the klinikum?", ["06:52"]),
    ("how long does the 07:05 take to klinikum", ["21 minutes"]),
    ("i'm taking the 06:44 at am markt - what time do i reach the klinikum?", ["06:52"]),
])
def test_a_departure_reaches_another_stop_at_the_time_under_it(question, values):
    found = lookup.answer(question, stops_page())
    assert found is not None and found.values == values, found


def test_a_stop_passed_by_or_behind_is_no_journey():
    from tools import trips, values

    page = stops_page()
    named = {"Kirchberg": 1.0}
    start = next(v for v in values.find("06:35") if v.kind == "time")
    assert trips.leg(page, start, lambda r: named.get(r.label, 0.0)) is None  # no time there
    later = next(v for v in values.find("06:52") if v.kind == "time")
    back = {"Bahnhof Süd": 1.0}
    assert trips.leg(page, later, lambda r: back.get(r.label, 0.0)) is None  # behind it
