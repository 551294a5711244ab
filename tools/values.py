"""The values printed on paper, read from text: amounts with their currency, times, dates,
plain numbers, percentages. Written the way each place writes them ("3,10 €", "€3.10",
"CHF 7.20", "1.234,56", "07:50", "14h05", "2:05 pm", "12.03.2026", "2026-03-12"); each value
knows where in the text it stood, so a line can be split into its label and its values.

Not here: which value a question asks for (tools/lookup.py), the arithmetic on them
(tools/calculate.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

SYMBOLS = "€$£¥₹₩₽₺₪฿"
CODES = ("EUR", "USD", "GBP", "CHF", "JPY", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "PLN",
         "CZK", "HUF", "INR", "CNY", "RMB", "BRL", "MXN", "ZAR", "TRY", "RON", "SGD", "HKD")
CURRENCY = rf"(?:[{SYMBOLS}]|\b(?:{'|'.join(CODES)})\b|\bFr\.|\bkr\b|\bzł|\bR\$|\bUS\$)"
# 1.234,56  1,234.56  3,10  3.10  12  1 234,56  (a space between thousands)
AMOUNT = r"\d{1,3}(?:[.,\u202f\u00a0 ]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
MONTHS = {name: i for i, names in enumerate([
    "jan january janvier januar enero gennaio janeiro januari",
    "feb february fevrier février februar febrero febbraio fevereiro februari",
    "mar march mars märz maerz marzo marco março maart",
    "apr april avril abril aprile",
    "may mai mayo maggio maio mei",
    "jun june juin juni junio giugno junho",
    "jul july juillet juli julio luglio julho",
    "aug august aout août agosto augustus",
    "sep sept september septembre septiembre settembre setembro",
    "oct october octobre oktober octubre ottobre outubro",
    "nov november novembre noviembre novembro",
    "dec december decembre décembre dezember diciembre dicembre dezembro"], 1)
    for name in names.split()}
MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))

PATTERNS = [
    # 2h35min, 2 h 35 min, 45 min, 3 hours (a span, not a time of day)
    ("duration", re.compile(r"(?<![\w.,:])(\d{1,3})\s*(?:h\s*(\d{1,2})\s*m(?:in\w*)?|"
                            r"(?:hours?|hrs?)\s*(?:and\s*)?(\d{1,2})(?:\s*m(?:in\w*)?)?)(?!\w)"
                            r"|(?<![\w.,:])(\d{1,4})\s*(min(?:utes?|s)?|hours?|hrs?|Std\.?|Min\.?)(?!\w)"
                            # "45m" beside "1h 15m" in a column of durations
                            r"|(?<![\w.,:])(\d{1,3})(m)(?![\w²³])",
                            re.I)),
    ("date", re.compile(r"(?<![\d.])(\d{4})-(\d{1,2})-(\d{1,2})(?![\d])")),
    ("date", re.compile(r"(?<![\d.:])(\d{1,2})[./-](\d{1,2})[./-](\d{4}|\d{2})(?![\d.:])")),
    ("date", re.compile(rf"(?<!\w)(\d{{1,2}})\.?\s+({MONTH})\.?,?\s+(\d{{4}})(?!\d)", re.I)),
    ("date", re.compile(rf"(?<!\w)({MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})(?!\d)",
                        re.I)),
    # "11 June", "June 11": a day of a year the page does not say (year 2000 stands in)
    ("date", re.compile(rf"(?<![\w.])(\d{{1,2}})\.?\s+({MONTH})\b\.?(?!,?\s+\d)()", re.I)),
    ("date", re.compile(rf"(?<!\w)({MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?![.:,]?\d)()",
                        re.I)),
    # 2:05 pm, 7 am, 14:05, 14h05, 7.50 (a time only beside am/pm, or in a timetable row)
    ("time", re.compile(r"(?<![\d.,:])(\d{1,2})(?:[:h](\d{2})|\.(\d{2}))?\s*([ap]\.?m\.?)(?!\w)",
                        re.I)),
    ("time", re.compile(r"(?<![\d.,:])([01]?\d|2[0-3])(?::|h(?=\d))([0-5]\d)(?![\d:])")),
    ("dotted", re.compile(r"(?<![\w.,:])([01]?\d|2[0-3])\.([0-5]\d)(?![\w.,:])")),
    # pence as British prices write them ("+40p", "95p"): an amount in pounds
    ("pence", re.compile(r"(?<![\w.,])(\d{1,2})p(?!\w)")),
    # an amount stands alone: not the digits of a code ("DE44", "2026-0142", "A4")
    ("amount", re.compile(rf"{CURRENCY}\s?-?(?:{AMOUNT})(?![\w])|(?<![\w.,-])-?"
                          rf"(?:{AMOUNT})(?![\w]|[.,-]\w|\s?[\"″”])\s?{CURRENCY}?")),  # 12" is a size
]

# a person, named with a title ("Mrs Helen Carraway", "Herr Dr. Weber", "Sra. Ana Ruiz")
TITLES = (r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Herr|Frau|Mme|Mlle|Sr|Sra|Srta|Sig|Sig\.ra|Dott|"
          r"Dott\.ssa|Dhr|Mevr|Dña|Doña)\.?|M\.")
PERSON = re.compile(rf"(?<![\w.])(?:(?:{TITLES}) )+(?:[A-Z][\w'’-]*\.? ){{0,2}}"
                    r"[A-Z][^\W\d_]+(?:[-'’][A-Z][^\W\d_]+)?")
# what reads as a code: letters and digits together, with dashes or slashes ("INV-2026-0412")
CODE = re.compile(r"(?<![\w-])(?=[\w/-]*\d)(?=[\w/-]*[A-Za-z])[A-Za-z0-9][\w/-]{3,}"
                  r"(?:\s[A-Z0-9]{2,4}){0,4}(?![\w-])|(?<![\w.,-])\d{5,}(?![\w.,-])")


@dataclass(frozen=True)
class Value:
    kind: str  # "amount" (a number, with or without currency), "time", "date", "percent",
    # "duration" (a span: "2h35min", "45 min")
    text: str  # as printed
    start: int  # where in its text
    end: int
    number: Decimal | None = None  # amounts and percents
    currency: str = ""  # "€", "EUR" (amounts only)
    minutes: int | None = None  # times: since midnight; durations: how long
    day: date | None = None  # dates

    @property
    def money(self) -> bool:
        """An amount with a currency or with two decimals (3.10): a price, not a count."""
        return self.kind == "amount" and (bool(self.currency) or
                                          bool(re.search(r"[.,]\d{2}$", self.digits)))

    @property
    def digits(self) -> str:
        return re.sub(rf"{CURRENCY}|\s", "", self.text)


def number(text: str) -> Decimal | None:
    """'1.234,56' -> 1234.56, '3,10' -> 3.10, '1,234' -> 1234, '12' -> 12. With both marks the
    last is the decimal one; a lone mark before three digits groups thousands ("0.500" aside)."""
    t = re.sub(r"[\s\u202f\u00a0]", "", text).lstrip("+")
    if not re.fullmatch(r"-?\d[\d.,]*", t) or t[-1] in ".,":
        return None
    marks = [c for c in t if c in ".,"]
    if len(set(marks)) == 2:
        last = max(t.rfind("."), t.rfind(","))
        t = re.sub(r"[.,]", "", t[:last]) + "." + t[last + 1:]
    elif len(marks) > 1:
        t = re.sub(r"[.,]", "", t)
    elif marks:
        whole, _, part = t.replace(",", ".").partition(".")
        t = whole + part if len(part) == 3 and whole.lstrip("-") not in ("0", "") else \
            f"{whole}.{part}"
    try:
        return Decimal(t)
    except InvalidOperation:
        return None


def _time(m: re.Match) -> int | None:
    groups = m.groups()
    hour = int(groups[0])
    if len(groups) == 4:  # with am/pm
        minute = int(groups[1] or groups[2] or 0)
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if groups[3].lower().startswith("p") else 0)
    else:
        minute = int(groups[1])
    return hour * 60 + minute if hour < 24 and minute < 60 else None


def _date(m: re.Match) -> date | None:
    a, b, c = m.groups()
    if not c:  # no year: only a month written as a name ("June", not "may 5 people")
        month = b if a.isdigit() else a
        if not month[:1].isupper():
            return None
        c = "2000"
    try:
        if a.isdigit() and len(a) == 4:
            return date(int(a), int(b), int(c))
        if a.isdigit() and b.isdigit():  # day first, as most of the world writes it
            year = int(c) + (2000 if len(c) == 2 else 0)
            day, month = int(a), int(b)
            if month > 12 >= day:
                day, month = month, day
            return date(year, month, day)
        if a.isdigit():
            return date(int(c), MONTHS[b.lower()], int(a))
        return date(int(c), MONTHS[a.lower()], int(b))
    except (ValueError, KeyError):
        return None


GLUED = re.compile(r"(\d{1,2}[./-]\d{1,2}[./-]\d{4})(?=\d{1,2}[:h]\d{2})")
# OCR drops the space between a number and a word: "18advance", "Room214"
DIGIT_WORD = re.compile(r"(?<=\d)(?=[^\W\d_]{3,})(?![a-z]{0,2}\b)")
TAX_CLASS = re.compile(r"(\d[.,]\d{2})([A-Z])\b")
WORD_DIGIT = re.compile(r"\b([A-ZÀ-Þ][a-zß-ÿ]{2,}|[A-ZÀ-Þ]{6,})(?=\d)")  # "Room214", "PLATFORM2"


def unglue(text: str) -> str:
    """OCR's glued date and time ("03/11/202609:12"), number and word ("18advance") apart
    again, "∈" read for "€" put right; times and units stay whole ("7pm", "2h35min")."""
    text = GLUED.sub(r"\1 ", text).replace("∈", "€")  # the recogniser's euro sign
    text = TAX_CLASS.sub(r"\1 \2", text)  # "2,29B": a price and its tax class
    return WORD_DIGIT.sub(r"\1 ", DIGIT_WORD.sub(" ", text))


def find(text: str, dotted: bool = False) -> list[Value]:
    """The values in `text`, left to right, none overlapping (a date before a time before an
    amount). `dotted`: "7.50" is a time (in a timetable), not an amount."""
    taken: list[tuple[int, int]] = []
    out = []
    for kind, pattern in PATTERNS:
        if kind == "dotted" and not dotted:
            continue
        for m in pattern.finditer(text):
            start, end = m.span()
            while end > start and text[end - 1] == " ":
                end -= 1
            if any(s < end and start < e for s, e in taken):
                continue
            value = _make(kind, m, text[start:end], start, end)
            if value is not None:
                taken.append((start, end))
                out.append(value)
    for v in list(out):  # "15%" is a percent
        after = text[v.end:v.end + 2].lstrip()
        if v.kind == "amount" and not v.currency and after.startswith("%"):
            out[out.index(v)] = Value("percent", v.text + "%", v.start,
                                      text.index("%", v.end) + 1, v.number)
    return sorted(out, key=lambda v: v.start)


# a month's name typed in lower case beside a day ("on 6 august"); not "may", a verb too
TYPED_MONTH = re.compile(rf"(?<=\d )(?!may\b)({MONTH})\b|\b(?!may\b)({MONTH})(?= \d)")


def asked(question: str) -> list[Value]:
    """The values of a question as people type them: a month in lower case is still a
    month ("thursday 6 august"), "7.50" a time."""
    typed = TYPED_MONTH.sub(lambda m: m.group(0).capitalize(), question)
    return find(typed, dotted=True)


RANGE = re.compile(r"^\s*(?:-|–|—|to|till|until|through|bis|au|à|al|a|t/m|tot|tem|fino al)\s*$",
                   re.I)


def date_ranges(text: str) -> list[tuple[date, date]]:
    """The spans of dates `text` gives ("20 July - 28 August 2026", "du 01/07 au 31/08/2026"),
    the first taking the second's year when it has none of its own."""
    found = [v for v in find(text) if v.kind == "date"]
    out = []
    for a, b in zip(found, found[1:], strict=False):
        if RANGE.match(text[a.end:b.start]):
            first = a.day.replace(year=b.day.year) if a.day.year == 2000 else a.day
            out.append((first, b.day))
    return out


def within(day: date, span: tuple[date, date]) -> bool:
    """Whether a day falls in a span; a day of no year (2000) by its month and day alone,
    a span over the new year included."""
    first, last = span
    if day.year != 2000:
        return first <= day <= last
    key = (day.month, day.day)
    a, b = (first.month, first.day), (last.month, last.day)
    return a <= key <= b if a <= b else key >= a or key <= b


def _make(kind: str, m: re.Match, text: str, start: int, end: int) -> Value | None:
    if kind == "date":
        day = _date(m)
        return Value("date", text, start, end, day=day) if day else None
    if kind == "duration":
        hours, short, spelled, alone, unit, bare, _ = m.groups()
        if bare is not None:
            minutes = int(bare)
        elif alone is not None:
            minutes = int(alone) * (60 if unit.lower().startswith(("h", "s")) else 1)
        else:
            minutes = int(hours) * 60 + int(short or spelled)
        return Value("duration", text, start, end, minutes=minutes)
    if kind == "dotted":
        return Value("time", text, start, end, minutes=int(m.group(1)) * 60 + int(m.group(2)))
    if kind == "time":
        minutes = _time(m)
        return Value("time", text, start, end, minutes=minutes) if minutes is not None else None
    if kind == "pence":
        return Value("amount", text, start, end, Decimal(m.group(1)) / 100, "£")
    currency = re.search(CURRENCY, text)
    amount = number(re.sub(CURRENCY, "", text))
    if amount is None:
        return None
    return Value("amount", text, start, end, amount, currency.group(0) if currency else "")


def is_value_text(text: str) -> bool:
    """Whether `text` is values only (with x, =, / and the like between): "2 x 0,90 1,80"."""
    rest = text
    for v in reversed(find(text)):
        rest = rest[:v.start] + rest[v.end:]
    return bool(find(text)) and not re.search(r"[^\W\d_]{2,}", rest.replace("x", "").replace(
        "X", ""))


def minutes_text(minutes: int) -> str:
    """45 -> "45 minutes", 95 -> "1 h 35 min" (and "1 hour 35 minutes" in words)."""
    sign = "-" if minutes < 0 else ""
    minutes = abs(minutes)
    if minutes < 60:
        return f"{sign}{minutes} minute{'s' if minutes != 1 else ''}"
    hours, rest = divmod(minutes, 60)
    h = f"{hours} hour{'s' if hours != 1 else ''}"
    return sign + (f"{h} {rest} minute{'s' if rest != 1 else ''}" if rest else h)


def clock(minutes: int) -> str:
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


def money(value: Decimal, like: Value | None = None) -> str:
    """`value` written as `like` writes money: its decimal mark and its currency's place."""
    places = 2 if like is None or like.money or value != value.to_integral() else 0
    text = f"{value:.{places}f}"
    if like is not None and "," in like.digits[-3:] and "." not in like.digits[-3:]:
        text = text.replace(".", ",")
    if like is None or not like.currency:
        return text
    if like.text.startswith(like.currency):
        return f"{like.currency}{' ' if like.text[len(like.currency):][:1] == ' ' else ''}{text}"
    return f"{text} {like.currency}"
