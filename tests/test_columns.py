"""Pages of columns: two lists side by side on a wide page, a menu whose sizes are columns,
and the column a question names chosen for its answer and for a sum."""

from __future__ import annotations

import pytest

from tests.page_lines import line
from tools import layout, lookup

pytestmark = pytest.mark.unit


def word(text, x, y, slant=0.0):
    """A short line as a text detector gives it: its box square, its corners tilted by a
    degree or so that the page does not have."""
    x1, y1 = x + 24 * len(text), y + 40
    out = line(text, x, y, x1, y1, slant, centre=((x + x1) / 2, (y + y1) / 2))
    out["box"] = [x, y, x1, y1]
    return out


def two_lists(slant=1.2):
    """CONES over the left list, CUPS over the right one, on a page 2,000 wide."""
    out = [word("CONES", 100, 40), word("CUPS", 1100, 40)]
    items = [("Small", "2.80", "Small", "2.50"), ("Medium", "3.50", "Medium", "3.20"),
             ("Large", "4.30", "Large", "4.00")]
    for i, (left, lp, right, rp) in enumerate(items):
        y = 120 + 70 * i
        out += [word(left, 100, y, slant), word(lp, 800, y), word(right, 1100, y, slant),
                word(rp, 1800, y)]
    return out


def test_a_degree_the_words_corners_invent_does_not_split_two_columns():
    rows, slant = layout.rows(two_lists())
    assert slant == 0.0
    assert [r.text for r in rows][1:3] == ["Small  2.80  Small  2.50",
                                           "Medium  3.50  Medium  3.20"]


def test_a_real_slant_is_still_undone():
    turned = [line(x["text"], *x["box"], angle=3.0, centre=(1000, 300)) for x in
              [word("Espresso", 100, 100), word("2.40", 1500, 100),
               word("Cappuccino", 100, 170), word("3.10", 1500, 170),
               word("Tea", 100, 240), word("2.00", 1500, 240)]]
    rows, slant = layout.rows(turned)
    assert slant == pytest.approx(3.0, abs=0.3)
    assert [r.text for r in rows] == ["Espresso  2.40", "Cappuccino  3.10", "Tea  2.00"]


def test_names_over_lists_side_by_side_are_their_sections_not_a_tables_columns():
    page = layout.read([(1, two_lists())])
    assert not any(c.header for r in page.rows for c in r.cells)
    found = lookup.answer("how much for a medium cone", page)
    assert found is not None and found.values == ["3.50"]
    found = lookup.answer("and a large cup?", page)
    assert found is not None and found.values == ["4.00"]


def pizza_menu():
    """Sizes as columns, a line of toppings under each pizza."""
    out = [word("PIZZA", 100, 40), word('Small 10"', 900, 40), word('Medium 14"', 1200, 40),
           word('Large 18"', 1500, 40)]
    pizzas = [("Margherita", "tomato, basil", ["$12.99", "$16.99", "$20.99"]),
              ("Veggie", "peppers, onions, olives", ["$13.99", "$18.49", "$22.99"]),
              ("Hawaiian", "ham, pineapple", ["$14.49", "$18.99", "$23.49"])]
    y = 110
    for name, toppings, prices in pizzas:
        out += [word(name, 100, y)] + [word(p, x, y) for p, x in
                                       zip(prices, (900, 1200, 1500), strict=True)]
        out.append(word(toppings, 100, y + 50))
        y += 110
    out += [word("SIDES", 100, y), word("Green salad", 100, y + 60), word("$7.50", 900, y + 60)]
    return layout.read([(1, out)])


def test_a_line_under_an_item_does_not_end_its_table():
    cells = {c.text: c.header for r in pizza_menu().rows for c in r.cells}
    assert cells["$14.49"] == 'Small 10"' and cells["$23.49"] == 'Large 18"'
    assert cells["$7.50"] == ""  # a list below with one price is no row of it


def test_the_column_a_question_names_answers_it_without_its_size_figures():
    found = lookup.answer("what about a small hawaiian", pizza_menu())
    assert found is not None and found.values == ["$14.49"]
    assert "10" not in found.text  # the size's inches are not asked for


def test_a_sum_takes_the_column_the_question_names():
    found = lookup.answer("a medium veggie and a green salad, how much?", pizza_menu())
    assert found is not None and found.values == ["$25.99"]


def test_not_a_member_is_the_non_member_column():
    page = layout.read([(1, [word("Member", 900, 40), word("Non-member", 1300, 40),
                             word("Adult swim", 100, 110), word("£3.20", 900, 110),
                             word("£5.40", 1300, 110)])])
    for question in ("how much is a swim for an adult if i'm not a member",
                     "adult swim, non member price?"):
        found = lookup.answer(question, page)
        assert found is not None and found.values == ["£5.40"], question
    found = lookup.answer("adult swim for a member?", page)
    assert found is not None and found.values == ["£3.20"]


def test_a_yes_or_no_about_a_day_the_line_does_not_name_is_no():
    page = layout.read([(1, [word("Class notes", 100, 40),
                             word("Swimming kit needed on Mondays and Fridays", 100, 110),
                             word("Library books back by Thursday", 100, 180)])])
    found = lookup.answer("does he need his swimming kit on wednesday?", page)
    assert found is not None and found.text.startswith("No")
    found = lookup.answer("does he need his swimming kit on friday?", page)
    assert found is not None and found.text.startswith("Yes")


def test_a_line_that_says_what_an_item_is_belongs_to_it_not_to_the_items_below():
    page = pizza_menu()
    found = lookup.answer("how much is the large one with pineapple?", page)
    assert found is not None and found.values == ["$23.49"]
    read = {e.label: e for e in lookup.entries(page)}
    assert read["Hawaiian"].note == "ham, pineapple"
    assert read["Hawaiian"].section == "" and read["Green salad"].section == "SIDES"


def test_a_yes_or_no_quotes_the_sentence_that_answers_not_the_whole_line():
    page = layout.read([(1, [word("Notes", 100, 40), word(
        "Swimming kit needed on Mondays. Chess club: Tuesdays 15:10 - 16:10 in room 4.",
        100, 110)])])
    found = lookup.answer("does he need his swimming kit on wednesday?", page)
    assert found is not None and found.text == 'No: "Swimming kit needed on Mondays.".'


def test_a_price_word_of_the_question_does_not_bring_a_discount_on():
    """"charge" asks for a price: the line of a discount for paying early ("gewähren")
    matches it only by its letters and says nothing of who or when."""
    lines = [word("Rechnung", 100, 40), word("6 Stk. Rauchwarnmelder", 100, 110),
             word("179,40", 1300, 110)]
    for i, item in enumerate(["Kabel NYM 3x1,5", "Steckdose", "Arbeitszeit", "Anfahrt"]):
        lines += [word(item, 100, 180 + 70 * i), word(f"{20 + i},00", 1300, 180 + 70 * i)]
    lines.append(word("Bei Zahlung innerhalb von 7 Tagen gewähren wir 2% Skonto.", 100, 500))
    found = lookup.answer("how much did they charge for the detectors",
                          layout.read([(1, lines)]))
    assert found is not None and found.values == ["179,40"]


def sailings(times, heading="MONDAY - SATURDAY"):
    out = [word("BAY FERRIES", 100, 20), word(heading, 100, 80),
           word("Depart Harbour", 100, 140), word("Depart Island", 900, 140)]
    for i, (a, b) in enumerate(times):
        out += [word(a, 100, 200 + 60 * i), word(b, 900, 200 + 60 * i)]
    return out


def test_times_written_with_a_dot_on_a_timetable_are_times():
    times = [("7.50", "8.10"), ("9.30", "9.50"), ("11.30", "11.50"), ("14.00", "14.20"),
             ("16.00", "16.20"), ("17.15", "17.35")]
    page = layout.read([(1, sailings(times) + [word("Adult 6.40", 100, 700),
                                               word("Free", 100, 760),
                                               word("Car 24.00", 100, 820)])])
    found = lookup.answer("when does the last ferry leave the harbour on a tuesday", page)
    assert found is not None and found.values == ["17.15"]
    kinds = {v.text: v.kind for r in page.rows for v in r.values}
    assert kinds["6.40"] == "amount" and kinds["24.00"] == "amount"


def test_a_price_list_without_a_currency_keeps_its_prices():
    prices = [("Espresso", "2.40"), ("Latte", "3.10"), ("Mocha", "3.50"), ("Tea", "2.00"),
              ("Scone", "2.50"), ("Toast", "3.20"), ("Soup", "5.50"), ("Salad", "7.50"),
              ("Quiche", "8.20"), ("Panini", "6.40"), ("Cake", "3.40")]
    lines = [word("Open Monday - Saturday", 100, 20)]
    for i, (item, price) in enumerate(prices):
        lines += [word(item, 100, 80 + 60 * i), word(price, 900, 80 + 60 * i)]
    page = layout.read([(1, lines)])
    assert all(v.kind == "amount" for r in page.rows for v in r.values)
