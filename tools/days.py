"""Which days of the week a piece of text covers: "Mon-Sat", "Daily", "Fri & Sat only",
"Maandag t/m vrijdag", "Zon- en feestdagen", "sauf le dimanche". Timetables and opening
hours group their times by the days they hold for, and a question asks about one day ("the
last boat on a sunday?", "open on Tuesday?"); the two meet here, in numbers, whatever
languages the page and the question are in.

Days are 0 (Monday) to 6 (Sunday); 7 stands for public holidays, which timetables put with
Sundays or on their own. Full day names count anywhere; short forms ("Mo", "sa", "mar")
only where they are plainly days (in a range or a list of days, or standing alone), since
most of them are also words ("sun", "do", "so", "ma", "mer")."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

HOLIDAY = 7
WEEK = frozenset(range(7))
WORKDAYS = frozenset(range(5))

# per day: full names (with the plural and adverbial endings below) | short forms
NAMES = [
    "monday montag lundi lunes lunedi segunda maandag | mon mo lu lun ma",
    "tuesday dienstag mardi martes martedi terca dinsdag | tue tues di mar ter",
    "wednesday mittwoch mercredi miercoles mercoledi quarta woensdag | wed mi mer mie wo qua",
    "thursday donnerstag jeudi jueves giovedi quinta donderdag | thu thur thurs do jeu jue gio",
    "friday freitag vendredi viernes venerdi sexta vrijdag | fri fr ven vie vr sex",
    "saturday samstag sonnabend samedi sabado sabato zaterdag | sat sa sam sab za",
    "sunday sonntag dimanche domingo domenica zondag | sun so dim dom zo",
]
ENDINGS = ("", "s", "e", "en", "es", "n", "-feira", "feira")
GROUPS = [
    (WEEK, r"daily|every ?day|7 days(?: a week)?|taglich|tous les jours|todos los dias|"
           r"tutti i giorni|todos os dias|dagelijks|jeden tag|alle dagen|chaque jour"),
    (WORKDAYS, r"week ?days?|working days|werktags?|werktagen?|werkdagen|en semaine|"
               r"jours ouvr[ae]bles|(?:dias )?laborables|(?:giorni )?feriali|dias uteis"),
    (frozenset({5, 6}), r"week-?ends?|wochenende[ns]?|fin(?:es)? de semana|fine settimana|"
                        r"fi[mn]s? de semana"),
    (frozenset({HOLIDAY}), r"(?:public|bank) holidays?|feiertag(?:e|en)?|feestdag(?:en)?|"
                           r"(?:jours? )?f[ée]ri[ée]s?|festivos?|festivi|feriados?"),
]
RANGE = r"\s*(?:-|–|—|to|till|until|through|thru|bis|a|à|au|al|t/m|tot(?: en met)?)\s*"
LIST = r"\s*(?:&|,|\+|/|and|und|et|y|e|en|u\.)\s*"
# days after these are taken away: "daily except Sundays", "closed on Saturdays"
EXCEPT = re.compile(r"\b(?:except|not on|but not|sauf|au(?:ss|ß)er|excepto|salvo|tranne|exceto|"
                    r"behalve|niet op|closed on|ferme les?|geschlossen am|cerrado (?:el|los)|"
                    r"chiuso (?:il|la)|fechado (?:ao|aos)|gesloten op)\b", re.I)
# words that may stand beside a short day alone ("Fri only"); not months ("Mar 2026")
ONLY = {"only", "nur", "seulement", "uniquement", "solo", "apenas", "somente", "alleen",
        "soltanto"}
MONTHS = {"mar"}  # Tuesday in French and Spanish, March in many languages
HOLIDAY_ALONE = re.compile(r"\bholidays?\b", re.I)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower()).replace("ß", "ss")
    return "".join(ch for ch in text if not unicodedata.combining(ch))


FULL: dict[str, int] = {}
SHORT: dict[str, int] = {}
for _day, _line in enumerate(NAMES):
    _full, _short = _line.split("|")
    for _name in _full.split():
        for _end in ENDINGS:
            FULL.setdefault(_fold(_name + _end), _day)
    for _name in _short.split():
        SHORT[_fold(_name)] = _day
WORD = re.compile(r"[^\W\d_]+(?:-feira)?", re.U)


def _day(word: str, short: bool) -> int | None:
    if word in FULL:
        return FULL[word]
    return SHORT.get(word.rstrip(".")) if short else None


def _joined(text: str) -> str:
    """ "zon- en feestdagen" as "zondagen en feestdagen", "Sonn- und Feiertage" as
    "Sonntage und Feiertage": the first word's missing end is the second word's."""
    def whole(m: re.Match) -> str:
        head, link, tail = m.group(1), m.group(2), m.group(3)
        for k in range(1, len(tail)):
            if head + tail[k:] in FULL:
                return f"{head + tail[k:]} {link} {tail}"
        return m.group(0)
    return re.sub(r"\b([^\W\d_]+)-\s+(en|und|et|and|e|y)\s+([^\W\d_]+)", whole, text)


def _spans(text: str, short: bool) -> list[tuple[int, int, frozenset[int]]]:
    """(start, end, days) of each day, range of days or group of days named in `text`."""
    found = []
    for days, pattern in GROUPS:
        for m in re.finditer(rf"(?<!\w)(?:{pattern})(?!\w)", text):
            found.append((m.start(), m.end(), days))
    tokens = [(m.start(), m.end(), m.group(0)) for m in WORD.finditer(text)]
    named = []
    for i, (start, end, word) in enumerate(tokens):
        day = _day(word, True)
        if day is None:
            continue
        if word not in FULL:
            # a short form only beside another day, or alone in the text
            near = [tokens[j] for j in (i - 1, i + 1) if 0 <= j < len(tokens)]
            between = [text[min(end, t[1]):max(start, t[0])] for t in near]
            beside = any(_day(t[2], True) is not None and
                         re.fullmatch(f"{RANGE}|{LIST}|\\.?{RANGE}|\\.?{LIST}", b, re.I)
                         for t, b in zip(near, between, strict=True))
            alone = all(t[2] in ONLY for t in tokens if t[0] != start) and word not in MONTHS
            if not (short and (beside or alone)):
                continue
        named.append((start, end, day))
    i = 0
    while i < len(named):
        start, end, day = named[i]
        if i + 1 < len(named) and re.fullmatch(rf"\.?{RANGE}", text[end:named[i + 1][0]], re.I):
            last = named[i + 1][2]
            span = frozenset((day + k) % 7 for k in range((last - day) % 7 + 1))
            found.append((start, named[i + 1][1], span))
            i += 2
            continue
        found.append((start, end, frozenset({day})))
        i += 1
    return sorted(found)


@lru_cache(maxsize=4096)  # a page's headings and sections are asked about for every entry
def covered(text: str, short: bool = True) -> frozenset[int] | None:
    """The days `text` says it holds for, or None when it names no day. "except Sundays"
    takes them away from the week (or from the days named before it)."""
    text = _joined(_fold(text))
    spans = _spans(text, short)
    if not spans:
        if HOLIDAY_ALONE.search(text) and not re.search(r"school|summer|vacances|ferien", text):
            return frozenset({HOLIDAY})
        return None
    cut = EXCEPT.search(text)
    kept = frozenset().union(*(d for s, _, d in spans if cut is None or s < cut.start()))
    taken = frozenset().union(*(d for s, _, d in spans if cut is not None and s > cut.start()))
    if cut is not None:
        kept = (kept or WEEK) - taken
    return kept or None


def asked(question: str) -> frozenset[int] | None:
    """The days a question asks about ("on a saturday", "sundays", "at the weekend"): full
    names and groups only, so "sun cream" or "do they" names no day."""
    return covered(question, short=False)
