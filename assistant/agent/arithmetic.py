"""Sums in an answer are worked out, not guessed.

A small model asked "what does each of us pay?" after "The total is 23.75." writes the sum
the right way ("23.75 / 5 = ") and then a plausible wrong result ("4.80"). As a calculator
fills in the result a language model leaves to it, the loop computes the result of every
"A op B = C" it writes (op one of + - * / x × ÷; "B%" after + or - is a percentage of A)
and puts the true value in place of C, with as many decimals as C had (two for money when
A had two). While an answer streams, what follows an "=" is held back until its number
ends, so the wrong figure is never shown.
"""

from __future__ import annotations

import re

NUM = r"\d+(?:[.,]\d+)?"
SUM = re.compile(rf"(?<![\w.,:])({NUM})\s*([-+*/x×÷])\s*({NUM})(\s*%)?\s*=\s*(-?{NUM})"
                 r"(?![\d])")
# the end of a text that may still become "= 12.50": hold it back
OPEN = re.compile(r"=\s*-?[\d.,]*$")


def _number(text: str) -> float:
    return float(text.replace(",", "."))


def _decimals(text: str) -> int:
    parts = re.split(r"[.,]", text)
    return len(parts[1]) if len(parts) > 1 else 0


def _value(a: float, op: str, b: float, percent: bool) -> float | None:
    if percent:
        if op not in "+-":
            return a * b / 100 if op in "*x×" else None
        b = a * b / 100
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op in "*x×":
        return a * b
    return a / b if b else None


def _written(value: float, like: str, a: str, b: str) -> str:
    places = max(_decimals(like), _decimals(a) if _decimals(a) == 2 else 0)
    if places == 0 and value != int(value):
        places = max(2, _decimals(a), _decimals(b))
    text = f"{value:.{places}f}"
    return text.replace(".", ",") if "," in like else text


def fix(text: str) -> str:
    """`text` with the result of each sum it writes computed."""
    def right(m: re.Match) -> str:
        a, op, b, percent, said = m.groups()
        if m.string[m.end(1):m.start(3)] == "x":
            return m.group(0)  # "1920x1080 = ..." is a size, not a product
        value = _value(_number(a), op, _number(b), bool(percent))
        if value is None:
            return m.group(0)
        return m.string[m.start():m.start(5)] + _written(value, said, a, b)
    return SUM.sub(right, text)


def ready(text: str) -> str:
    """What of a streaming answer can be shown now: `text` with its sums computed, less an
    "=" whose number may not have ended."""
    open_ = OPEN.search(text)
    return fix(text[:open_.start()] if open_ else text)
