"""Whether an answer rests on what the tools returned.

After a tool has read, counted or described a picture, the answer is a report of its result:
a small model may still write a fluent sentence that shares nothing with it ("True." after the
sign was read as "OPEN 24 HOURS") or a number no one gave it ("It takes 1 hours."). The loop
asks for such an answer again, and if the second one is no better, shows the result itself
(assistant/agent/loop.py). Three checks, all about words, none about meaning:
- every number in the answer was written by the user or a tool (a picture's handle, "#2", is
  no number here);
- every value it quotes ("FREEWIFI") and every code of letters then digits ("B12",
  "maple42") was written by the user or a tool (spaces and case aside: OCR glues words
  together);
- unless a call made a picture, the answer shares a word with the results, or, when they
  found nothing, says so;
- after text was read, the answer adds no word of its own beyond those that say what a
  reading is ("It leaves at", "The total is"): "It is 24 hours old." about a sign reading
  "OPEN 24 HOURS" shares "24 hours" and still says what no one read;
- after text was read, an answer that is not a plain yes or no uses something of the reading
  the message did not already say ("The password is PASSWORD." to "what's the wifi
  password" about a card reading "WIFI PASSWORD maple42" only repeats the question).
"""

from __future__ import annotations

import re

from tools.base import Observation
from tools.report import READINGS

NUMBER = re.compile(r"(?<![#\d.:,])\d+(?:[.:,]\d+)*")  # "#2" is a handle, not a number
WORD = re.compile(r"[a-z]+|\d+")
QUOTED = re.compile(r'"([^"\n]{2,80})"|\u201c([^\u201d\n]{2,80})\u201d')
# words in capitals after a cue to write them ("a sign saying OPEN TODAY")
CAPITALS_AFTER_CUE = re.compile(
    r"\b(?i:saying|says|that reads|reading|with the (?:words?|text)|the words?|written)\s+"
    r"([A-Z0-9][A-Z0-9'!&.-]*(?:\s+[A-Z0-9][A-Z0-9'!&.-]*)*)(?![\w])")
# a code has a letter right before a digit ("B12", "maple42"; not "2nd", "10am", "4k")
CODE = re.compile(r"(?<![#\w])(?=[a-z\d]*[a-z]\d)[a-z\d]{2,}(?!\w)", re.I)
YES_NO = re.compile(r"\s*(?:yes|no|yeah|yep|nope)\b", re.I)
# "what kind of cat is this?": the answer names the kind, not only the question's noun
KIND = re.compile(r"\b(?:what|which)\s+(?:kind|breed|type|sort|species|variety|make|model)s?\b",
                  re.I)
BREED = re.compile(r"\b(?:breed|species|variety)s?\b", re.I)
HOW_MANY = re.compile(r"\bhow\s+many\b|\bcount\b|\bnumber\s+of\b", re.I)
# an answer that gives a count, in figures or words ("1", "one", "no", "none", "both")
COUNT = re.compile(r"\d|\b(?:no|none|nobody|nothing|zero|one|two|three|four|five|six|seven|"
                   r"eight|nine|ten|eleven|twelve|single|both|several|many|dozens?)\b|n't\b",
                   re.I)
NEGATIVE = re.compile(r"\b(?:no|not|none|nothing|cannot|without|zero|0)\b|n't\b", re.I)
# Words every report may use whatever the result: they show no reading of it.
COMMON = frozenset("""
the and are was were has have had for with this that these those there here its you your
image picture photo photograph pic shows show showing see seen says say said text
found find look looks like likely most probably think seems seem what which who how can
could would will just one some any all about from into onto out over under near also very
really quite done made make marked mark tool result results answer answers describe
describes description read reads reading write written detector classifier model
""".split())


# Words an answer about text that was read may use besides the message's and the text's:
# what says which value it is.
READING = frozenset("""
leave leaves leaving left depart departs departure arrive arrives arrival time due boarding
board open opens closed close closes until hour minute today daily from between and
platform gate room seat track stop terminal total cost costs price amount pay due sum
password code number phone call serial model label sign card notice board ticket written
word line top bottom first second last only empty blank nothing text letter digit
day night tonight morning afternoon evening noon midnight week weekday weekend
ask asked want wanted need use yes yeah yep nope
""".split())


def _words(text: str) -> set[str]:
    """Content words, singular-ish ("cats" -> "cat"), and numbers (a picture's handle, "#2",
    is neither)."""
    out = set()
    for w in WORD.findall(re.sub(r"#\d+", " ", text.lower())):
        if w.isdigit():
            out.add(w)
        elif len(w) >= 3 and w not in COMMON:
            out.add(w[:-1] if w.endswith("s") and len(w) > 3 else w)
    return out


def shares(answer: str, text: str) -> bool:
    """Whether `answer` uses a content word (or number) of `text`."""
    return bool(_words(answer) & _words(text))


def content_words(text: str) -> set[str]:
    """The content words of `text`, singular-ish, without numbers."""
    return {w for w in _words(text) if not w.isdigit()}


_READING = content_words(" ".join(READING))  # as the words of an answer are compared


def quoted(text: str) -> list[str]:
    """The values `text` quotes ("SALE", “PLUM JAM”)."""
    return [q.strip() for a, b in QUOTED.findall(text) if (q := a or b).strip()]


def lettering(text: str) -> list[str]:
    """The text a message asks to have written in a picture: what it quotes, and words in
    capitals after "saying", "that reads", "with the words" (a sign saying OPEN TODAY)."""
    capitals = [m.rstrip(".") for m in CAPITALS_AFTER_CUE.findall(text)]
    return quoted(text) + [m for m in capitals if len(m) > 1]


def _values(text: str) -> list[str]:
    """What an answer presents as read verbatim: quoted values and codes of letters and
    digits."""
    return quoted(text) + CODE.findall(text)


def _compact(text: str) -> str:
    return re.sub(r"\s+", "", text.lower())


PLACES = ("page", "row")  # where a reading stands on its document: no count an answer gives


def _numbers(value, out: set[str]) -> set[str]:
    """The numbers in a tool's structured result that an answer may repeat: those written in
    its strings, its whole numbers outside coordinate lists, and counts of labelled things (a
    list of boxes: how many, and how many share each label; none: 0)."""
    if isinstance(value, str):
        out.update(NUMBER.findall(value))
    elif isinstance(value, int) and not isinstance(value, bool):
        out.add(str(value))
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in PLACES:
                _numbers(item, out)
    elif isinstance(value, (list, tuple)):
        if not value:
            out.add("0")
        if all(isinstance(item, (int, float)) for item in value):
            return out  # a box's coordinates, a colour: no count an answer would give
        labels = [item.get("label") for item in value if isinstance(item, dict)]
        if any(label is not None for label in labels):
            out.add(str(len(value)))
            out.update(str(labels.count(label)) for label in set(labels) if label is not None)
        for item in value:
            _numbers(item, out)
    return out


# what a result read (tools/report.py READINGS), with the classifier's groups ("cat" over
# "Egyptian Mau") and what the detector looked for
READ_KEYS = (*READINGS, "groups", "objects")


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for k, v in value.items() if k not in ("box", "backend") for t in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _strings(v)]
    return [str(value)] if isinstance(value, int) and not isinstance(value, bool) else []


def _read(result: Observation) -> str:
    """What a result says of its picture (the text read, the labels, the caption): what an
    answer must share a word with. A result that read nothing gives its whole text ("New
    image #2" is no reading of a picture: "The new picture is #2." shares nothing with
    "found 1 face")."""
    read = [t for k in READ_KEYS if k in result.data for t in _strings(result.data[k])]
    return "\n".join(read) if read else result.text


def _labels(results: list[Observation], key: str) -> set[str]:
    return _words(" ".join(x.get("label", "") for r in results for x in r.data.get(key, [])
                           if isinstance(x, dict)))


def _kinds(results: list[Observation]) -> set[str]:
    """The words of the kinds a classifier named ("egyptian", "mau", "tabby"), without those
    of the groups it put them in ("cat")."""
    return _labels(results, "labels") - _labels(results, "groups")


def asks_kind(asked: str, results: list[Observation]) -> bool:
    """Whether the message asks for a kind finer than the classifier's group: "what kind of
    cat is this?", "what breed?" (not "what kind of animal is this?", which "cat" answers)."""
    return bool(KIND.search(asked)) and (bool(BREED.search(asked)) or
                                         bool(_labels(results, "groups") & _words(asked)))


def uncounted(answer: str, asked: str, results: list[Observation]) -> str | None:
    """What is wrong with an answer to "how many" that gives no count, or None: answered
    directly ("circle"), or after a detection that counted."""
    if not HOW_MANY.search(asked) or COUNT.search(answer):
        return None
    if not results:
        return "it does not say how many; answer with a number."
    if any("boxes" in r.data for r in results):
        return "it does not say how many; answer with the number the tool found."
    return None


def ungrounded(answer: str, asked: str, results: list[Observation], made: bool,
               worded: bool = True) -> str | None:
    """What in `answer` rests on nothing the tools returned, or None. `asked`: the user's
    message; `results`: this answer's successful calls; `made`: a call made a picture (the
    answer may then just show it: only its numbers are checked); `worded`: its words are
    checked too (English: the small default's), not only its numbers and codes, which hold
    in any language."""
    if not results:
        return None
    given = set(NUMBER.findall(asked))
    for result in results:
        _numbers(result.data, given)
    invented = [n for n in dict.fromkeys(NUMBER.findall(answer)) if n not in given]
    written = _compact(asked + "\n" + "\n".join(r.text for r in results))
    invented += [v for v in dict.fromkeys(_values(answer)) if _compact(v) not in written]
    if invented:
        return (f"it says {', '.join(invented)}, which neither the user nor a tool said; "
                "answer from the tool's result.")
    if made or not worded:
        return None
    said = "\n".join(r.text for r in results)
    text_read = "lines" in results[-1].data
    if text_read:  # text was read: the answer says what, no more
        extra = content_words(answer) - content_words(asked + "\n" + said) - _READING
        if extra and shares(answer, said):
            return (f"it says {', '.join(sorted(extra))}, which the text read does not; "
                    "answer with what the tool read.")
    read = "\n".join(_read(r) for r in results)
    if shares(answer, read):
        new = _words(read) - _words(asked)
        if text_read and new and not _words(answer) & new and not YES_NO.match(answer):
            return ("it repeats the question but nothing the tool read; answer with the text "
                    "it read.")
        if asks_kind(asked, results) and (kinds := _kinds(results) - _words(asked)) and \
                not _words(answer) & kinds:
            return ("it does not name the kind the tool found, only what it is; answer with "
                    "the kind.")
        return None
    found_nothing = any(v == [] for r in results for v in r.data.values())
    if found_nothing and NEGATIVE.search(answer):
        return None
    return "it does not use what the tool returned; answer from the tool's result."
