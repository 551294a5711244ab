"""Questions about the answer just given, answered from it without a tool.

After "It leaves at 17:20." people ask "is that am or pm?"; after "The total is 13.50."
"what does each of us pay if there are 3 of us?"; after "The password is maple42." "how do
I get online with it?". A model that only ever saw a tool turn followed by a new request calls
a tool for these. `follow_up(answer, rng)` gives one (message, answer) pair worked out from the
values in `answer` (times, amounts, a platform or gate, a password, a number), or None when it
holds none; `again(answer, rng)` asks for any answer once more.
"""

from __future__ import annotations

import random
import re

TIME = re.compile(r"(?<!\d)(\d{1,2}):(\d{2})\b")
AMOUNT = re.compile(r"\b(\d+\.\d{2})\b")
PLACE = re.compile(r"\b(Platform|Gate|Room) (\w+)")
PASSWORD = re.compile(r"password is (\S+?)\.?$")
PHONE = re.compile(r"\b(\d{3}-\d{4})\b")
SERIAL = re.compile(r"serial number is (\d+)")

AGAIN = ["say that again", "can you repeat that", "sorry, what?", "come again?",
         "what did you say", "repeat please", "once more?", "i missed that, again?"]
REFERENCES = [(9, 0, "9am"), (12, 0, "noon"), (18, 0, "6pm"), (8, 0, "8 in the morning"),
              (14, 0, "2pm"), (20, 0, "8pm"), (17, 30, "half past five in the afternoon"),
              (10, 0, "10 am"), (15, 0, "15:00"), (7, 30, "7:30")]


def again(answer: str, rng: random.Random) -> tuple[str, str]:
    return rng.choice(AGAIN), answer


def follow_up(answer: str, rng: random.Random) -> tuple[str, str] | None:
    """A question about a value in `answer`, and its answer; None when `answer` has none."""
    times = [(int(h), int(m)) for h, m in TIME.findall(answer)]
    if (found := PASSWORD.search(answer)):
        return _password(found.group(1), rng)
    if (found := SERIAL.search(answer)):
        return _code(found.group(1), "serial number", rng)
    if (found := PHONE.search(answer)):
        return _code(found.group(1), "number", rng)
    if (found := PLACE.search(answer)):
        return _place(found.group(1), found.group(2), rng)
    if len(times) == 2:
        return _span(times, "parking" not in answer.lower(), rng)
    if len(times) == 1:
        return _time(times[0], rng)
    if (found := AMOUNT.search(answer)):
        return _amount(float(found.group(1)), found.group(1), rng)
    return None


def _clock(h: int, m: int) -> str:
    return f"{h}:{m:02d}"


def _twelve(h: int, m: int) -> str:
    hour = h % 12 or 12
    return f"{hour}:{m:02d} {'am' if h < 12 else 'pm'}"


def _duration(minutes: int) -> str:
    h, m = divmod(minutes, 60)
    parts = ([f"{h} hour{'s' if h != 1 else ''}"] if h else []) + \
        ([f"{m} minute{'s' if m != 1 else ''}"] if m else [])
    return " and ".join(parts) or "no time"


def _time(t: tuple[int, int], rng: random.Random) -> tuple[str, str]:
    h, m = t
    kind = rng.randrange(4)
    if kind == 0:
        return (rng.choice(["what time was it again", "sorry, what time?", "remind me of the time",
                            "the time once more?", "when was that again"]), f"{_clock(h, m)}.")
    if kind == 1:
        return (rng.choice(["is that am or pm", "in 12 hour time?", "is that morning or evening",
                            "what's that on a 12-hour clock", "am or pm?"]),
                f"{_clock(h, m)} is {_twelve(h, m)}.")
    rh, rm, said = rng.choice(REFERENCES + [(24, 0, "midnight")] * (kind == 2))
    if kind == 2:
        word = rng.choice(["before", "after"])
        question = rng.choice([f"is that {word} {said}", f"so it's {word} {said}?",
                               f"that's {word} {said}, right?"])
        earlier = (h, m) < (rh, rm)
        true = earlier if word == "before" else (h, m) > (rh, rm)
        relation = "before" if earlier else "after" if (h, m) > (rh, rm) else "exactly at"
        return question, f"{'Yes' if true else 'No'}: {_clock(h, m)} is {relation} {said}."
    wait = (h * 60 + m) - (rh * 60 + rm)
    question = rng.choice([f"how long do i have if it's {_clock(rh, rm)} now",
                           f"it's {_clock(rh, rm)} now, how much time is left",
                           f"how many minutes from {_clock(rh, rm)}"])
    if wait < 0:
        return question, f"It already went at {_clock(h, m)}, {_duration(-wait)} before " \
                         f"{_clock(rh, rm)}."
    return question, f"{_duration(wait)}: from {_clock(rh, rm)} to {_clock(h, m)}."


def _span(times: list[tuple[int, int]], shop: bool, rng: random.Random) -> tuple[str, str]:
    (h0, m0), (h1, m1) = times
    start, end = _clock(h0, m0), _clock(h1, m1)
    kind = rng.randrange(3)
    if kind == 0:
        return (rng.choice(["how many hours is that", "how long is that in total",
                            "so how many hours a day"]),
                f"{_duration(h1 * 60 + m1 - h0 * 60 - m0)}, from {start} to {end}.")
    if kind == 1:
        return (rng.choice(["until when again?", "and it ends when?", "what was the end time"]),
                f"Until {end}.")
    rh, rm, said = rng.choice(REFERENCES)
    inside = (h0, m0) <= (rh, rm) < (h1, m1)
    if shop:
        question = rng.choice([f"are they open at {said}", f"can i go there at {said}",
                               f"will it be open at {said}"])
        verdict = "Yes" if inside else "No"
        return question, f"{verdict}: it is open from {start} to {end}."
    question = rng.choice([f"so can i park at {said} on a weekday", f"what about {said}?",
                           f"is {said} ok on a tuesday"])
    verdict = "No" if inside else "Yes"
    return question, f"{verdict}: no parking on weekdays from {start} to {end}."


def _amount(value: float, said: str, rng: random.Random) -> tuple[str, str]:
    kind = rng.randrange(4)
    if kind == 0:
        return (rng.choice(["how much was it again", "sorry, how much?", "the amount once more?",
                            "what was the figure"]), f"{said}.")
    if kind == 1:
        n = rng.randint(2, 6)
        question = rng.choice([f"how much each if there are {n} of us",
                               f"we're {n} people, what does each pay", f"divide that by {n}",
                               f"per person for {n}?", f"what's that shared {n} ways"])
        return question, f"{said} / {n} = {value / n:.2f} each."
    if kind == 2:
        p = rng.choice([5, 10, 12, 15, 20])
        question = rng.choice([f"and with a {p}% tip?", f"add {p} percent tip",
                               f"what if i tip {p}%"])
        return question, f"{said} + {p}% = {value * (1 + p / 100):.2f}."
    note = rng.choice([5, 10, 20, 50, 100])
    question = rng.choice([f"is {note} enough", f"can i pay with a {note}",
                           f"what change do i get from {note}"])
    if note >= value:
        return question, f"{note} covers it: {note} - {said} = {note - value:.2f} in change."
    return question, f"{note} is not enough: it is {said}, {value - note:.2f} short."


def _place(noun: str, value: str, rng: random.Random) -> tuple[str, str]:
    word = noun.lower()
    if rng.random() < 0.5:
        return (rng.choice([f"remind me which {word}", f"what {word} was that",
                            f"{word} number?", "sorry, where do i go?", "what was it again"]),
                f"{noun} {value}.")
    return (rng.choice(["only the number please", "just give me the number",
                        "the number alone?"]), f"{value}.")


def _password(word: str, rng: random.Random) -> tuple[str, str]:
    kind = rng.randrange(3)
    if kind == 0:
        return (rng.choice(["how do i get online with that", "what do i do with it",
                            "how do i use the password", "and how do i connect my phone"]),
                f"Open your wifi settings, pick the network and type the password {word}.")
    if kind == 1:
        return (rng.choice(["spell it out", "can you spell that", "letter by letter please"]),
                f"{'-'.join(word)}.")
    return rng.choice(["what was the password again", "password once more?"]), f"{word}."


def _code(code: str, noun: str, rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.5:
        return (rng.choice([f"what was the {noun} again", f"{noun} once more?",
                            "can you repeat the digits"]), f"{code}.")
    digits = code.replace("-", "")
    if rng.random() < 0.5:
        return rng.choice(["digits only", "just the digits", "no dash please"]), f"{digits}."
    return rng.choice(["read the digits one by one", "digit by digit?"]), f"{' '.join(digits)}."
