"""The words with which a message asks for a new picture: an edit of each kind, or a drawing.

A small model may answer "which leaves first, the 42 or the 7?" with a crop, or "make it bw"
with a crop of the whole picture. The tools that make pictures (Tool.makes) say, through
`Tool.asked(message)`, which of their jobs a message asks for, from these words, and the agent
offers only those (assistant/agent/loop.py). The lists are generous on purpose: a word that
could ask for an edit keeps it on offer; only a message with none of them loses it.
"""

from __future__ import annotations

import re


def _words(*stems: str) -> re.Pattern:
    """Any of `stems` at the start of a word (spaces in a stem match any spacing)."""
    alternatives = "|".join(re.escape(s).replace(r"\ ", r"\s+") for s in stems)
    return re.compile(rf"(?<![\w])(?:{alternatives})", re.I)


SIZE = r"\d+\s*(?:x|\*|by|×)\s*\d+"  # 200x200, 256 by 256

# Each edit, and the words that ask for it.
EDITS: dict[str, re.Pattern] = {
    "grayscale": _words("grey", "gray", "black and white", "black & white", "black-and-white",
                        "b&w", "b/w", "bw", "monochrom", "mono", "desaturat", "colourless",
                        "colorless", "no colour", "no color", "without colour",
                        "without color", "remove the colour", "remove the color", "noir",
                        "decolo", "greyscale", "grayscale"),
    "rotate": _words("rotat", "turn", "spin", "upside", "sideways", "degree", "clockwise",
                     "anticlockwise", "anti-clockwise", "counterclockwise",
                     "counter-clockwise", "tilt", "straighten", "right way", "wrong way",
                     "orientation", "portrait", "landscape", "90", "180", "270"),
    "flip": _words("flip", "mirror", "revers", "reflect", "horizontal", "vertical", "backward",
                   "upside"),
    "crop": _words("crop", "cut", "trim", "zoom", "close up", "close-up", "closeup", "half",
                   "corner", "portion", "section", "region", "part of", "keep only",
                   "only keep", "only want", "centre", "center", "middle", "edge", "border",
                   "frame"),
    "resize": re.compile(_words("resiz", "size", "smaller", "bigger", "larger", "shrink",
                                "enlarg", "scale", "upscal", "downscal", "thumbnail", "pixel",
                                "px", "width", "wide", "height", "tall", "tiny", "small", "big",
                                "large", "reduce", "double", "halve", "half").pattern
                         + rf"|{SIZE}", re.I),
    "blur": _words("blur", "soft", "smooth", "fuzz", "pixelat", "obscur", "hide", "anonymi",
                   "privacy", "private", "censor", "out of focus", "defocus", "unfocus",
                   "less sharp", "unsharp", "haz"),
    "draw_boxes": _words("box", "outline", "mark", "highlight", "circle around", "circle round",
                         "circle them", "circle it", "annotat", "square around", "square round"),
    # an edit said in words, for an instruction-editing model
    "instruct": _words("make", "turn", "change", "add", "remove", "replace", "put", "give",
                       "convert", "transform", "look like", "style", "into", "edit", "fix",
                       "colour", "color", "paint"),
}

# Words that ask for a new picture to be drawn.
DRAWING = _words("draw", "paint", "sketch", "creat", "generat", "design", "illustrat", "render",
                 "poster", "logo", "banner", "icon", "flyer", "card", "wallpaper", "make me",
                 "make us", "make a", "make an", "make one", "make another", "make two",
                 "make three", "make four", "make some", "picture of", "image of", "drawing",
                 "another", "one more", "doodle", "art")

# Edits that no drawing is described with ("small", "a grey circle" and "a box" may be)
CHANGES = ("rotate", "flip", "crop", "blur")
# Words that point at a picture already there.
POINTS = re.compile(r"\b(?:it|this|that|these|those|them|#\d+|picture|photo|image|pic|"
                    r"version|original|copy|one)\b", re.I)
# A question (not a request that happens to end with "?": "can you draw ...?" names a drawing).
QUESTION = re.compile(r"\?\s*$|^\s*(?:what|which|who|whose|where|when|why|how|is|are|was|were|"
                      r"does|do|did|has|have)\b", re.I)


def edits(message: str, operations) -> list[str]:
    """The edits among `operations` that `message` has words for."""
    return [op for op in operations if op in EDITS and EDITS[op].search(message)]


# boxes drawn round what a picture shows are marks on it, not a new picture
BOXES_ROUND = re.compile(r"\b(?:draw|put|add|place)\s+(?:an?\s+|some\s+)?(?:box(?:es)?|"
                         r"rectangles?|outlines?|frames?)\s+(?:a)?round\b", re.I)


# A verb that asks for a drawing, and words that ask for something read off a picture
DRAW_VERB = _words("draw", "sketch", "paint", "design", "creat", "generat", "illustrat",
                   "render", "doodle")
READING = _words("caption", "descri", "summar", "transcri", "alt text", "explain", "read",
                 "count", "list", "name", "identif", "recogni", "what", "which", "how many",
                 "tell", "find", "detect", "look", "see", "text of")


# A question about the text in a picture ("what does it say?", "what's written on the label")
ABOUT_TEXT = re.compile(r"\b(?:say|says|said|saying|written|writing|read|reads|text|words?|"
                        r"spell(?:ed|t)?|lettering|inscription)\b", re.I)


def about_text(message: str) -> bool:
    """Whether `message` asks about a picture's text: a tool that reads none (a classifier, a
    detector) is then not offered. A drawing with lettering ("draw a sign that says OPEN") is
    no question about text."""
    return bool(ABOUT_TEXT.search(message)) and (bool(QUESTION.search(message)) or
                                                 not asks_to_draw(message))


# A request to find things in a picture, count them or say where they are
LOCATE = re.compile(r"\bfind(?!\s+out)\b|\blocate\b|\bhow\s+many\b|\bcount\b|"
                    r"\bbox(?:es)?\b|\bpoint\s+out\b|\bwhere(?:'s|\s+is|\s+are)\s+"
                    r"(?:the|my|a|an|all|any)\b", re.I)


def asks_where(message: str) -> bool:
    """Whether `message` asks to find, count or place things ("find the cars", "how many
    faces?", "where's the cat?"): a tool that only names what a picture shows (a classifier)
    is then not offered. "find out what this is" names it."""
    return bool(LOCATE.search(message))


def only_draws(message: str) -> bool:
    """Whether `message` asks for a drawing in so many words ("draw me three of those but
    green", "could you design a label with PLUM JAM") and for nothing read off a picture:
    then no tool that reads one is offered. A question, or any word of reading ("create a
    caption for it", "draw what you see"), keeps them."""
    return bool(DRAW_VERB.search(message)) and asks_to_draw(message) is True and \
        not QUESTION.search(message) and not READING.search(message)


def asks_to_draw(message: str) -> bool | None:
    """Whether `message` asks for a drawing: True with a drawing word; False for a question,
    boxes round things ("draw boxes around the faces"), or a change to a picture already
    there ("now make it black and white", "turn it upside down") without one; None when
    there is no telling ("a red circle on blue")."""
    if BOXES_ROUND.search(message):
        return False
    if DRAWING.search(message):
        return True
    if QUESTION.search(message):
        return False
    if POINTS.search(message) and (edits(message, CHANGES) or
                                   EDITS["grayscale"].search(message)):
        return False
    return None
