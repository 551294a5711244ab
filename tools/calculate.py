"""`calculate`: arithmetic a model should never guess. A small parser of its own (no eval, no
names): numbers as documents write them ("3,10", "1.234,56", "€2.40"), + - * / x × ÷ %,
parentheses, and clock times ("08:35 - 07:50" is 45 minutes), in exact decimals.

    calculate("2 * 2.10 + 2.40")  -> 6.60
    calculate("08:35 - 07:50")    -> 45 minutes
    calculate("23.75 / 5")        -> 4.75
"""

from __future__ import annotations

import re
from decimal import Decimal, DivisionByZero, InvalidOperation, localcontext

from pydantic import Field

from tools import values as V
from tools.base import Observation, Tool, ToolArgs, ToolError

LIMIT = 200  # characters of an expression
TOKEN = re.compile(r"\s*(?:(?P<time>\d{1,2}:\d{2})|(?P<num>[€$£¥]?\s?\d[\d.,]*)\s*(?P<cur>[€$£¥]|"
                   r"EUR|USD|GBP|CHF)?|(?P<op>[-+*/×x÷%()]))", re.I)


class CalculateArgs(ToolArgs):
    expression: str = Field(description="the arithmetic to work out, e.g. 2 * 2.10 + 2.40, "
                                        "08:35 - 07:50, (12.50 + 8) / 3", max_length=LIMIT)


class Quantity:
    """A number, or a clock time (minutes), with the decimals it was written with."""

    def __init__(self, value: Decimal, minutes: bool = False, places: int = 0, comma=False,
                 currency: str = ""):
        self.value, self.minutes, self.places = value, minutes, places
        self.comma, self.currency = comma, currency


def tokens(expression: str) -> list[tuple[str, str]]:
    out, at = [], 0
    text = expression.strip()
    while at < len(text):
        m = TOKEN.match(text, at)
        if not m or m.end() == at:
            rest = text[at:].strip()
            raise ToolError(f"cannot work out {expression!r}: {rest[:20]!r} is not a number or "
                            "one of + - * / % ( )")
        at = m.end()
        if m.group("time"):
            out.append(("time", m.group("time")))
        elif m.group("num"):
            out.append(("num", m.group("num") + (m.group("cur") or "")))
        else:
            op = m.group("op").lower()
            out.append(("op", {"x": "*", "×": "*", "÷": "/"}.get(op, op)))
    return out


class _Parser:
    """expression := term (('+'|'-') term)*; term := factor (('*'|'/') factor)*;
    factor := ('-'|'+') factor | atom '%'?; atom := number | time | '(' expression ')'."""

    def __init__(self, items: list[tuple[str, str]], text: str):
        self.items, self.at, self.text = items, 0, text

    def peek(self):
        return self.items[self.at] if self.at < len(self.items) else ("end", "")

    def take(self):
        item = self.peek()
        self.at += 1
        return item

    def expression(self) -> Quantity:
        left = self.term()
        while self.peek() in (("op", "+"), ("op", "-")):
            op = self.take()[1]
            right = self.term()
            if right.value is not None and getattr(right, "percent", False):
                right = Quantity(left.value * right.value / 100, left.minutes, left.places,
                                 left.comma, left.currency)
            left = _combine(left, op, right, self.text)
        return left

    def term(self) -> Quantity:
        left = self.factor()
        while self.peek() in (("op", "*"), ("op", "/")):
            op = self.take()[1]
            right = self.factor()
            if getattr(right, "percent", False):
                right = Quantity(right.value / 100, places=right.places + 2)
            left = _combine(left, op, right, self.text)
        return left

    def factor(self) -> Quantity:
        if self.peek() in (("op", "-"), ("op", "+")):
            sign = self.take()[1]
            q = self.factor()
            if sign == "-":
                q.value = -q.value
            return q
        q = self.atom()
        if self.peek() == ("op", "%"):
            self.take()
            q.percent = True
        return q

    def atom(self) -> Quantity:
        kind, text = self.take()
        if kind == "time":
            hours, minutes = map(int, text.split(":"))
            return Quantity(Decimal(hours * 60 + minutes), minutes=True)
        if kind == "num":
            found = V.find(text)
            value = found[0] if found else None
            number = value.number if value is not None else V.number(text)
            if number is None:
                raise ToolError(f"cannot work out {self.text!r}: {text!r} is no number")
            digits = re.sub(r"[^\d.,]", "", text)
            mark = max(digits.rfind("."), digits.rfind(","))
            places = len(digits) - mark - 1 if mark >= 0 and number != number.to_integral() \
                or (mark >= 0 and len(digits) - mark - 1 == 2) else 0
            return Quantity(number, places=places, comma=mark >= 0 and digits[mark] == ",",
                            currency=value.currency if value is not None else "")
        if (kind, text) == ("op", "("):
            q = self.expression()
            if self.take() != ("op", ")"):
                raise ToolError(f"cannot work out {self.text!r}: a bracket is not closed")
            return q
        raise ToolError(f"cannot work out {self.text!r}: a number is missing"
                        + (f" before {text!r}" if text else " at the end"))


def _combine(a: Quantity, op: str, b: Quantity, text: str) -> Quantity:
    if op in "*/" and a.minutes and b.minutes:
        raise ToolError(f"cannot work out {text!r}: times can be added or subtracted, not "
                        "multiplied")
    try:
        value = {"+": a.value + b.value, "-": a.value - b.value, "*": a.value * b.value,
                 "/": a.value / b.value if b.value else None}[op]
    except (InvalidOperation, DivisionByZero):
        value = None
    if value is None:
        raise ToolError(f"cannot work out {text!r}: division by zero")
    minutes = (a.minutes != b.minutes) if op in "+-" else (a.minutes or b.minutes)
    if op == "-" and a.minutes and b.minutes:
        minutes = False  # a span of minutes, not a time of day
        value = value if value >= 0 else value + 24 * 60
        return _span(value)
    return Quantity(value, minutes, max(a.places, b.places), a.comma or b.comma,
                    a.currency or b.currency)


def _span(minutes: Decimal) -> Quantity:
    q = Quantity(minutes)
    q.span = True
    return q


def evaluate(expression: str) -> str:
    """The result of `expression`, written as its inputs were: "6.60", "45 minutes"."""
    if len(expression) > LIMIT:
        raise ToolError(f"the expression is {len(expression)} characters; the limit is {LIMIT}")
    items = tokens(expression)
    if not items:
        raise ToolError("there is nothing to work out: give an expression like 2 * 2.10 + 2.40")
    with localcontext() as context:
        context.prec = 28
        parser = _Parser(items, expression)
        q = parser.expression()
        if parser.at != len(items):
            raise ToolError(f"cannot work out {expression!r}: {parser.peek()[1]!r} is out of "
                            "place")
    if getattr(q, "span", False):
        return V.minutes_text(int(q.value))
    if q.minutes:
        return V.clock(int(q.value))
    places = q.places if q.places else (2 if q.value != q.value.to_integral() else 0)
    if q.value != q.value.to_integral() and q.value.quantize(Decimal(10) ** -places) != q.value:
        places = max(places, 2)
    text = f"{q.value.quantize(Decimal(10) ** -places) if places else q.value.to_integral():f}"
    text = text.replace(".", ",") if q.comma else text
    return f"{text} {q.currency}".strip() if q.currency else text


class Calculate(Tool):
    name = "calculate"
    description = ("Work out arithmetic exactly: + - * / % and brackets on numbers as written "
                   "on paper (3,10 or 3.10), and differences of clock times (08:35 - 07:50).")
    Args = CalculateArgs
    image_args = ()
    backend = "exact decimal arithmetic (offline)"

    def run(self, args: CalculateArgs, images) -> Observation:
        result = evaluate(args.expression)
        return Observation(f"{args.expression} = {result}", data={"result": result,
                                                                 "answer": result})
