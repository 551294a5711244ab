"""The English words with which a message asks for each tool's work: an edit of each kind, a
drawing, a reading of text, people found, a picture only named.

A small model may answer "which leaves first, the 42 or the 7?" with a crop, or "make it bw"
with a crop of the whole picture. These words are the hints (assistant/agent/hints.py) that
steer the small embedded default to the tools a message has words for; a capable model
chooses for itself and never meets them. The lists are generous on purpose: a word that
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
                 "tell", "find", "detect", "look", "see", "text of", "translat", "help",
                 "analy", "ocr", "classif", "extract", "scan")


# A question about the text in a picture ("what does it say?", "what's written on the label",
# a receipt's total)
ABOUT_TEXT = re.compile(r"\b(?:say|says|said|saying|written|writing|read|reads|text|words?|"
                        r"spell(?:ed|t)?|lettering|inscription|receipt|menu|total|prices?)\b",
                        re.I)


# Text that describes a picture for those who cannot see it: a caption, not text in it
ALT_TEXT = re.compile(r"\balt(?:ernative)?[\s-]*text\b", re.I)


def about_text(message: str) -> bool:
    """Whether `message` asks about a picture's text: only the tool that reads text (OCR) is
    then offered, or else none that reads none (a classifier, a detector). A request for a
    description, a question about people and a drawing with lettering ("draw a sign that
    says OPEN") are none."""
    if WORK["caption"].search(message) or asks_who_is_there(message):
        return False  # "describe it in a few words", "how many people in total?"
    return bool(ABOUT_TEXT.search(ALT_TEXT.sub(" ", message))) and \
        (bool(QUESTION.search(message)) or not asks_to_draw(message))


# A request to find things in a picture, count them or say where they are
LOCATE = re.compile(r"\bfind(?!\s+out)\b|\blocate\b|\bhow\s+many\b|\bcount\b|"
                    r"\bbox(?:es)?\b|\bpoint\s+out\b|\bwhere(?:'s|\s+is|\s+are)\s+"
                    r"(?:the|my|a|an|all|any)\b", re.I)


# People and faces, which the detector finds
PEOPLE_NOUN = re.compile(r"\b(?:people|persons?|faces?|humans?|man|men|woman|women|kids?|"
                         r"child(?:ren)?|boys?|girls?|any(?:one|body)|some(?:one|body)|"
                         r"no\s*(?:one|body))\b", re.I)

# Words that ask each reading tool for its work. In a follow-up (a message that brings and
# names no picture, in a chat whose pictures tools have read) a reading tool that the message
# has no words for is offered only to read again the picture it read, if the message is about
# that one (assistant/agent/loop.py `rereads`): "and when is boarding?" is asked of the
# sign's reading, not of a classifier.
WORK = {
    "ocr": re.compile(ABOUT_TEXT.pattern + r"|\b(?:ocr|transcri\w*|signs?|labels?|menu|receipt|"
                      r"ticket|prices?|cost|total|time|date|timetable|numbers?|address|phone|"
                      r"e-?mail|name|how\s+much)\b", re.I),
    "detect": re.compile(rf"{LOCATE.pattern}|{PEOPLE_NOUN.pattern}|\bdetect", re.I),
    "classify": re.compile(r"\bwhat\s*(?:is|'s|s|are|was)\s+(?:this|it|that|these|those|they)"
                           r"\b|\b(?:is|are)\s+(?:it|this|that|these|those|they)\s+(?:an?\s+)?"
                           r"(?!(?:open|closed|free|on|off|in|out)\b)[a-z]+\b|"
                           r"\bis\s+there\s+(?:an?|any)\s+(?!(?:text|words?|writing)\b)|"
                           r"\b(?:kind|type|sort|breed|species|animal|object|identif|"
                           r"recogni|classif)\w*|\bwhat\s+am\s+i\s+looking\s+at\b", re.I),
    "caption": re.compile(r"\b(?:descri|caption|summar|explain|alt\s*text|scene|overview)\w*|"
                          r"\bwhat\s*(?:'s|s|is|are)\s+(?:in|on|going\s+on|happening)\b|"
                          r"\bwhat\s+(?:do|can)\s+you\s+see\b|\btell\s+me\s+about\b|"
                          r"\blook\s+at\b|\bhappening\b|\bgoing\s+on\b", re.I),
    "vqa": re.compile(r"\b(?:colou?rs?|shapes?|vqa|where|left|right|size|big|small|(?:is|are)"
                      r"\s+there)\b", re.I),
}


# Whether or how many people or faces a picture shows: the detector measures it, where a
# model that looks at the picture guesses ("are there people in this photo?" -> "yes").
PRESENCE = re.compile(r"\b(?:is|are)\s+there\b|\bhow\s+many\b|\bcount\b|\bany(?:one|body)\b|"
                      r"\bsome(?:one|body)\b|\bno\s*(?:one|body)\b|\bany\s+(?:people|persons?|"
                      r"faces?|humans?)\b", re.I)


# "how many people does this recipe serve?", "... can fit in this car?": not who is in it
CAPACITY = re.compile(r"\b(?:serves?|feeds?|fits?|seats?|sleeps?|liked|likes|allowed|capacity|"
                      r"hold)\b|\b(?:people|persons)\s+(?:does|can|could|should|will|would|may|"
                      r"might)\b(?!\s+you\b)", re.I)


# A question whether or how many there are, whatever other words come with it
ASKS_PRESENCE = re.compile(r"\b(?:is|are)\s+(?:there|any(?:one|body))\b|\bhow\s+many\b", re.I)


def asks_who_is_there(message: str) -> bool:
    """Whether `message` asks whether or how many people or faces a picture shows ("are there
    people in this photo?", "is anyone in it", "count the faces"); not a drawing of them, nor
    how many a thing serves or holds."""
    if DRAW_VERB.search(message) or asks_to_draw(message) and not ASKS_PRESENCE.search(message):
        return False  # "draw someone waving"; but "here's another, is anyone on it?" asks
    return bool(PRESENCE.search(message) and PEOPLE_NOUN.search(message)) and \
        not CAPACITY.search(message)


def asks_work_of(tool: str, message: str) -> bool | None:
    """Whether `message` has words for the work of the reading tool named `tool`; None for a
    tool this module has no words for (it may do anything)."""
    words = WORK.get(tool)
    return None if words is None else bool(words.search(message))


def asks_where(message: str) -> bool:
    """Whether `message` asks to find, count or place things ("find the cars", "how many
    faces?", "where's the cat?"): a tool that only names what a picture shows (a classifier)
    is then not offered. "find out what this is" names it."""
    return bool(LOCATE.search(message))


# Words with which a message hands over pictures ("here are two pictures", "ok here it is")
PRESENTING = re.compile(r"^\W*(?:(?:ok(?:ay)?|so|and|hi|hey|hello|right|well|also|now|"
                        r"alright|thanks|thank\s+you|thx|cool|great)\b\W*)*"
                        r"(?:here(?:'s|s|\s+is|\s+are|\s+it\s+is|\s+they\s+are|\s+you\s+go|"
                        r"\s+goes)?|these\s+are|this\s+is|attached|uploaded|"
                        r"check\s+(?:this|these|it|that)\s+out|"
                        r"i(?:'ve|\s+have)?\s+(?:attached|uploaded|sent|added))\b", re.I)


# A second clause or sentence after the words that hand pictures over ("here is my receipt,
# how much do I owe"), or a question word anywhere
MORE = re.compile(r"[,;:.!?]\s*\w|\b(?:what|which|who|whose|where|when|why|how|can|could|"
                  r"would|will|should|please|pls|need|want|do|does|did)\b", re.I)


def presents_only(message: str) -> bool:
    """Whether `message` hands over pictures and asks nothing of them: a few words, no
    question, no second clause, no word of reading, editing or drawing ("here are two
    pictures", "ok here it is"; not "here's a sign, what does it say", "here it is, make it
    bw", "here's the timetable, I need the next train")."""
    found = PRESENTING.search(message)
    if not found or len(message[found.end():].split()) > 6:
        return False
    return not MORE.search(message[found.end():]) and not QUESTION.search(message) and \
        not READING.search(message) and asks_to_draw(message) is not True and \
        not any(words.search(message) for words in EDITS.values())


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


# Words for a picture a message is about ("the sign", "my photo", "this receipt")
PICTURE = re.compile(r"\b(?:pictures?|photos?|images?|pics?|screenshots?|scans?|signs?|labels?|"
                     r"receipts?|menus?|tickets?|timetables?|posters?|documents?|pages?|pdf|"
                     r"attach\w*|upload\w*)\b", re.I)
# A short question about "this" or "it" ("what is this?", "read this", "describe it")
THIS = re.compile(r"^\W*(?:\w+\W+){0,3}(?:this|these|it)\W*$", re.I)


def about_a_picture(message: str) -> bool:
    """Whether `message` asks about a picture it does not bring ("what's written on the
    sign?", "how many people are in my photo?", "read this"); not a drawing of one ("draw a
    sign that says OPEN")."""
    return (bool(PICTURE.search(message)) or bool(THIS.match(message))) and \
        asks_to_draw(message) is not True
