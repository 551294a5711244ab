"""What the model reads at each step of the agent: kept short and about the message at hand.

A small model loses the thread in a long chat: it copies an earlier answer, or calls a tool
on a picture the user has moved on from. So the agent never shows it the whole chat:

- the last `WINDOW` exchanges before the message, as text (pictures left out, long texts cut);
  older ones are dropped;
- the message itself with the pictures it is about (`focus`): the ones it names ("#2", "the
  first picture", "image 3", a file name, "the original": what the latest picture was made
  from, "the cat picture": one the chat has called a cat, "the grey one": one with no colour),
  else the ones it brings, else the chat's latest picture (what "it" and "this" mean).

The same view is what the default model is trained on (assistant/train/agent_data.py), so it
reads at run time exactly the kind of text it learned from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from PIL import Image

from assistant.agent.grounding import content_words
from assistant.conversation import Conversation, Turn
from assistant.errors import UnknownImage

WINDOW = 2  # earlier exchanges the model reads
MOST_SHOWN = 3  # pictures shown with one message
LONGEST = 300  # characters of an earlier turn's text

HANDLE = re.compile(r"#(\d+)\b")
_NUMBERED = re.compile(r"\b(?:image|picture|photo|pic|img)\s*(?:no\.?|number)?\s*#?(\d+)\b",
                       re.I)
ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4,
            "4th": 4, "fifth": 5, "5th": 5}
# what people call a picture ("the first sign", "the new label")
_NOUN = (r"(?:image|picture|photo|pic|one|img|drawing|shot|snap|screenshot|scan|upload|"
         r"attachment|sign|label|receipt|poster|card|ticket|menu|notice|timetable|flyer)s?")
_ORDINAL = re.compile(rf"\b({'|'.join(ORDINALS)})\s+(?:\w+\s+)?{_NOUN}\b", re.I)
# "describe the first", "and the second?": an ordinal that ends the clause
_ORDINAL_ALONE = re.compile(rf"\bthe\s+({'|'.join(ORDINALS)})\b"
                            r"(?=\s*(?:[?.!,;]|$|\s+(?:again|too|please|pls|as well)\b))", re.I)
_LATEST = re.compile(rf"\b(?:last|latest|newest|new|most recent|recent)\s+{_NOUN}\b", re.I)
_BOTH = re.compile(rf"\b(?:both|the two|these two|those two)(?:\s+{_NOUN})?\b", re.I)
_ORIGINAL = re.compile(r"\b(?:original|unedited)\b", re.I)
_LINEAGE = re.compile(r"^\d+_[a-z_]+_(\d+)$")  # a tool's picture: {id}_{tool}_{parent}
_BOXED = re.compile(r"^\d+_detect_\d+$")
# "the grey one", "the b&w version"; "the colour one": a picture by whether it has colour
_VERSION = rf"(?:{_NOUN}|version|copy)"
_GREY = re.compile(r"\b(?:gr[ae]y(?:scale)?|black[ -]and[ -]white|b&w|b/w|bw|monochrome|mono)"
                   rf"\s+{_VERSION}\b", re.I)
_COLOUR = re.compile(rf"\b(?:colou?r(?:ed|ful)?|in colou?r)\s+{_VERSION}\b|"
                     rf"\b{_VERSION}\s+in\s+colou?r\b", re.I)
# "the cat picture", "the one with the dog", "the photo of my receipt": a picture by what the
# chat has said about it
_DESCRIBED = re.compile(rf"\b(?:the|that|this|my)\s+([a-z]+)\s+{_NOUN}\b"
                        rf"|\b(?:the|that)\s+{_NOUN}\s+(?:with|of)\s+"
                        r"(?:the\s+|a\s+|an\s+|my\s+|some\s+)?([a-z]+)", re.I)
_NOT_CONTENT = {*ORDINALS, "last", "latest", "newest", "new", "recent", "original", "unedited",
                "other", "same", "next", "previous", "whole", "entire", "two", "both", "each"}


@dataclass(frozen=True)
class Focus:
    named: tuple[str, ...]  # pictures the message refers to
    brought: tuple[str, ...]  # pictures attached to the message

    @property
    def explicit(self) -> tuple[str, ...]:
        """Pictures the message is about for sure: named or brought."""
        return tuple(dict.fromkeys(self.named + self.brought))


def origin(handle: str, conversation: Conversation) -> str:
    """The picture that `handle` was made from, through every edit: one no tool made."""
    seen = set()
    while handle not in seen:
        seen.add(handle)
        m = _LINEAGE.match(conversation.image(handle).name)
        parent = f"#{m.group(1)}" if m else ""
        if parent not in conversation.images:
            return handle
        handle = parent
    return handle


def _content(text: str) -> set[str]:
    return content_words(HANDLE.sub(" ", text))


def described(conversation: Conversation) -> dict[str, set[str]]:
    """What the chat has said about each picture before the last message: the words of the
    message that brought it, and of the answers about it (the answer to a message that was
    about it, and an answer that names it, "Here it is: #3", for a picture a tool made)."""
    about: dict[str, set[str]] = {h: set() for h in conversation.images}
    turns = conversation.turns
    last = max((i for i, t in enumerate(turns) if t.role == "user"), default=-1)
    latest: list[str] = []
    for i, turn in enumerate(turns[:last]):
        if turn.role != "user":
            continue
        answer = turns[i + 1].text if i + 1 < last and turns[i + 1].role == "assistant" else ""
        made = [f"#{n}" for n in HANDLE.findall(answer) if f"#{n}" in conversation.images]
        try:
            targets = turn.images or _named(turn.text, conversation) or latest
        except UnknownImage:
            targets = latest
        said = _content(answer)
        for handle in targets:
            about[handle] |= said | (_content(turn.text) if handle in turn.images else set())
        for handle in made:
            about[handle] |= said
        latest = (made or list(turn.images) or latest)[-1:]
    for handle, ref in conversation.images.items():
        if _BOXED.match(ref.name):  # what the detector made: "the one with the boxes"
            about[handle] |= _content("box boxes")
    return about


def named(text: str, conversation: Conversation) -> list[str]:
    """Handles the text refers to, in order: by handle, number, ordinal, as the latest or the
    original, by file name, or by what the chat has said about it ("the cat picture"). A
    handle that does not exist but could ("#3" in a chat of two pictures) raises
    UnknownImage, which lists the ones there are; a number far beyond them ("room #12",
    "image 90 degrees") is not taken for one."""
    found = _named(text, conversation, positions=True)
    if len(conversation.images) > 1:
        about = None
        for m in _DESCRIBED.finditer(text):
            word = (m.group(1) or m.group(2)).lower()
            if word in _NOT_CONTENT:
                continue
            about = about if about is not None else described(conversation)
            wanted = _content(word)
            hits = [h for h, words in about.items() if wanted & words]
            if 0 < len(hits) < len(conversation.images):
                found += [(m.start(), h) for h in hits]
    return list(dict.fromkeys(h for _, h in sorted(found, key=lambda f: f[0])))


def _named(text: str, conversation: Conversation, positions: bool = False):
    """`named` without references by content: the handles, or (position, handle) pairs."""
    handles = list(conversation.images)
    found: list[tuple[int, str]] = []
    for m in HANDLE.finditer(text):
        n = int(m.group(1))
        if f"#{n}" in conversation.images:
            found.append((m.start(), f"#{n}"))
        elif 0 < n <= conversation.next_number + 1:
            raise UnknownImage(f"#{n}", handles)
    for m in _NUMBERED.finditer(text):
        if f"#{m.group(1)}" in conversation.images:
            found.append((m.start(), f"#{m.group(1)}"))
    for m in [*_ORDINAL.finditer(text), *_ORDINAL_ALONE.finditer(text)]:
        n = ORDINALS[m.group(1).lower()]
        if n <= len(handles):
            found.append((m.start(), handles[n - 1]))
    if handles:
        for m in _LATEST.finditer(text):
            found.append((m.start(), handles[-1]))
        for m in _BOTH.finditer(text):
            found += [(m.start(), h) for h in handles[-2:]]
        for m in _ORIGINAL.finditer(text):  # "the original": what the latest was made from
            if origin(handles[-1], conversation) != handles[-1]:
                found.append((m.start(), origin(handles[-1], conversation)))
        for pattern, grey in ((_GREY, True), (_COLOUR, False)):
            for m in pattern.finditer(text):
                hits = [h for h in handles if is_grey(conversation.images[h].image) == grey]
                if 0 < len(hits) < len(handles):
                    found += [(m.start(), h) for h in hits]
    lowered = text.lower()
    for handle, ref in conversation.images.items():
        name = ref.name.lower()
        stem = name.rsplit(".", 1)[0]
        at = lowered.find(name) if name else -1
        if at < 0 and len(stem) > 3 and not stem.isalpha():  # "img_2031", "4_detect_2"
            at = lowered.find(stem)
        if at >= 0:
            found.append((at, handle))
    if positions:
        return found
    return list(dict.fromkeys(h for _, h in sorted(found, key=lambda f: f[0])))


def is_grey(image: Image.Image) -> bool:
    """Whether a picture has no colour (every pixel's red, green and blue nearly equal)."""
    if image.mode in ("L", "1", "LA", "I", "F"):
        return True
    small = image.convert("RGB").resize((32, 32))
    return all(max(p) - min(p) <= 8 for p in small.getdata())


# "the other one", "the other picture": of two, the one the message before was not about
_OTHER = re.compile(rf"\bthe\s+other(?:\s+{_NOUN})?\b", re.I)


def focus(conversation: Conversation) -> Focus:
    """The pictures the last user message is about (see the module's docstring)."""
    turn = last_user(conversation)
    if turn is None:
        return Focus((), ())
    names = named(turn.text, conversation)
    if not names and _OTHER.search(turn.text):
        names = _other(conversation)
    return Focus(tuple(names), tuple(turn.images))


def _other(conversation: Conversation) -> list[str]:
    """The picture "the other one" means: the only one of the chat's pictures that the user's
    message before the last was not about (named, brought, or else the latest of its time).
    Nothing when that leaves more than one."""
    users = [t for t in conversation.turns if t.role == "user"]
    if len(users) < 2:
        return []
    before = users[-2]
    about = named(before.text, conversation) or list(before.images)
    shown_then = [h for h in conversation.images if h in about] or about
    rest = [h for h in conversation.images if h not in shown_then]
    uploaded = [h for h in rest if not _LINEAGE.match(conversation.images[h].name)]
    rest = uploaded or rest  # of the user's pictures, not a copy a tool made
    return rest if len(rest) == 1 else []


def shown(conversation: Conversation) -> list[str]:
    """The pictures shown to the model with the last user message."""
    f = focus(conversation)
    handles = list(f.explicit) or list(conversation.images)[-1:]
    return handles[-MOST_SHOWN:]


def last_user(conversation: Conversation) -> Turn | None:
    return next((t for t in reversed(conversation.turns) if t.role == "user"), None)


# "and this one?", "same for this pic", "what about this": a message that asks again what the
# one before asked, of another picture (a second sentence may add context, not a question)
_FILLER = r"(?:ok(?:ay)?|and|so|now|also|then|cool|nice|great|thanks|thx|hmm|right)[,!.]?\s+"
_AGAIN = (r"(?:(?:and\s+)?(?:what|how)\s+about|same(?:\s+again|\s+question)?\s+(?:for|with)|"
          r"do|try)\s+")
_THIS = (r"(?:this|that|these|here|this\s+one|that\s+one|the\s+(?:new|next|other|last|"
         r"latest|second|third)(?:\s+one)?|(?:this|that|the\s+new|the\s+next)\s+(?:pic|picture|"
         r"photo|image|one)s?)")
_ELLIPSIS = re.compile(rf"^\s*(?:{_FILLER})*(?:{_AGAIN})?{_THIS}"
                       r"(?:\s+(?:one|too|as\s+well|also|pls|please|again))*\s*"
                       r"(?:[?.!]+[^?]*)?$", re.I)


def request(conversation: Conversation) -> str:
    """The last user message as the model reads it: one that only asks again ("and this
    one?") comes after the request it repeats, the latest earlier message that said what it
    wanted ("read this timetable for me / and this one?")."""
    users = [t.text for t in conversation.turns if t.role == "user"]
    if not users:
        return ""
    if not _ELLIPSIS.match(users[-1]):
        return users[-1]
    said = next((u for u in reversed(users[:-1]) if not _ELLIPSIS.match(u)), None)
    return users[-1] if said is None else f"{said} / {users[-1]}"


def _cut(text: str) -> str:
    return text if len(text) <= LONGEST else text[:LONGEST].rstrip() + "…"


def turns(conversation: Conversation) -> list[Turn]:
    """The turns the model reads: a window of earlier exchanges as text, then the last user
    message with the pictures it is about."""
    at = max((i for i, t in enumerate(conversation.turns) if t.role == "user"), default=-1)
    if at < 0:
        return []
    earlier = conversation.turns[:at]
    starts = [i for i, t in enumerate(earlier) if t.role == "user"]
    if len(starts) > WINDOW:
        earlier = earlier[starts[-WINDOW]:]
    out = [Turn(t.role, _cut(t.text)) for t in earlier if t.text.strip()]
    out.append(Turn("user", request(conversation), shown(conversation)))
    return out
