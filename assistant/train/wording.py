"""How people ask: the many wordings of each request the agent is trained on.

`ask(intent, rng, **slots)` writes one request: a core phrasing of the intent (with its slots
filled), often wrapped in what people put around a request ("hey, ", "could you ...",
"... thanks"), then written the way people type: lowercase, no final mark, a typo or two,
now and then all in capitals. Cores are grouped by intent; an intent's cores include direct
commands, questions, indirect requests that only imply the tool ("When does the train
leave?" implies reading the sign) and terse ones ("bw", "caption pls").

The evaluation sets (assistant/eval/data/*.jsonl) are never read here: the held-out ones were
written by someone else, in their own words.
"""

from __future__ import annotations

import random
import re

PICTURE = ["image", "picture", "photo", "pic", "screenshot", "shot", "img", "one"]
THIS = ["this", "the", "this", "that", "my"]

CORES: dict[str, list[str]] = {
    "read": [
        "read {this} {picture}", "what does it say", "what does the sign say",
        "what's written here", "what is written on it", "transcribe {this} {picture}",
        "copy the text out", "read me the sign", "what are the words", "can you read it",
        "text please", "what's the text", "extract the text from {this} {picture}",
        "what does the label say", "what's on the sign", "type out what it says",
        "tell me the words in {this} {picture}", "what does this note say",
        "read the writing", "what's printed on it", "pull the text out of {this} {picture}",
        "ocr {this}", "read it out loud", "i can't read this, what does it say",
        "my eyes are bad, what does the sign say", "what is the text in {this} {picture}",
        "what do the letters spell", "what's the message", "decipher this for me",
        "what language is this written in and what does it say", "read this label",
        "could you tell me what's written", "what words are on {this} {picture}",
        "whats it say", "read", "what's on the board", "what does the poster say",
        "what number is on it", "what's the number on the door", "which number is that",
        "what's the code on {this} {picture}", "what does the plate say",
        "copy what's written into the chat", "what's written on {this} {picture}",
        "read the small print", "can you make out the writing", "what's on the label",
        "what does the screen say", "type up the text for me", "what's the wording on it",
        "write out the words on {this} {picture}", "what text is there", "read off the numbers",
        "what are the numbers on {this} {picture}", "what does the handwriting say",
        "put what it says in the chat", "what does the ticket say", "what's on the card",
        "what does the notice say", "get the text off {this} {picture}", "transcribe it",
        "what does the writing on {this} {picture} say", "type it out for me",
    ],
    "read_time": [
        "when does the train leave", "what time does it leave", "when is the departure",
        "what time is the train", "when does the bus go", "when do we board",
        "what time does boarding start", "what time is it leaving", "departure time?",
        "when do i need to be there", "at what time does it go", "how late is the train",
        "when does it depart", "what time should i be at the station",
        "when does the shop open", "what time does it open", "when are they open",
        "what time do they close", "until when is it open", "opening hours?",
    ],
    "read_place": [
        "which platform", "what platform is it", "which platform do i need",
        "what gate is it", "which gate", "what room is this", "what's the room number",
        "which room", "where do i have to go", "what's the gate number",
        "which door do i need", "what floor is it on", "where is my gate",
        "which terminal", "what stop is this",
    ],
    "read_amount": [
        "how much is it", "what's the price", "how much does it cost", "what's the total",
        "how much do i owe", "what did i pay", "total amount?", "how much was it",
        "what's the final amount", "how much is the bill", "what does it cost",
        "price?", "what's the damage", "how much in total", "how much did i spend",
        "what's the amount due", "what do i have to pay", "what was the bill",
        "what's the sum at the bottom", "how much is on the receipt", "grand total?",
        "what did this cost me", "how much are they asking",
    ],
    "read_secret": [
        "what's the wifi password", "what's the password", "what's the wifi code",
        "how do i log in to the wifi", "password?", "what's the phone number",
        "what number should i call", "what's the number on it",
    ],
    "read_code": [
        "what's the serial number", "type out the serial for me", "what's the model number",
        "i need the serial number", "what's the s/n", "what does the sticker say",
        "read me the serial", "which model is it", "serial?", "what's the serial on the label",
        "give me the number on the sticker", "what's the product code",
    ],
    "read_rule": [
        "can i park here", "am i allowed to park here", "what are the rules here",
        "is parking ok here", "when can't i park", "can i leave my car here",
        "what hours does the parking rule apply", "what's the notice about",
        "can i park here on a weekday", "what does the parking sign mean",
    ],
    "classify": [
        "what animal is this", "what kind of animal is {this}", "what breed is it",
        "what is this thing", "what object is this", "identify this",
        "is this a cat or a dog", "what species is it", "classify {this} {picture}",
        "what category is {this} {picture}", "name this animal", "which animal is it",
        "is that a real cat", "what type of thing is {this}", "tell me what this is",
        "what's this animal called", "can you tell what kind of thing this is",
        "what is it", "what's that", "guess what this is", "what do you think this is",
        "which object is shown", "what kind of cat is it", "what kind of object is in the middle",
        "is it an animal or an object", "label {this} {picture}", "what's the main object",
        "what sort of creature is this", "id this for me", "which class is it",
        "what breed", "what kind of dog or cat is this", "which category does it belong to",
        "give it a label", "what's the name of this object", "what would you call this",
        "top labels for {this} {picture}", "what animal do you think it is",
    ],
    "caption": [
        "describe {this} {picture}", "what's in {this} {picture}", "what's happening here",
        "what do you see", "caption {this}", "give me a caption", "write alt text for it",
        "summarize {this} {picture}", "tell me about {this} {picture}",
        "explain {this} {picture}", "what's going on in {this} {picture}", "describe the scene",
        "describe it in one sentence", "what is shown here", "what does {this} {picture} show",
        "caption pls", "write a short description", "describe what you see",
        "give me a one-line description", "what is this a picture of",
        "can you describe it for a blind person", "what's in the shot",
        "how would you describe {this}", "write a caption for my post",
        "describe", "what am i looking at", "give a brief description of {this} {picture}",
        "what is in {this} {picture}", "what's this {picture} of",
        "so what's in it", "what can you see in {this} {picture}", "describe it briefly",
        "tell me what's going on", "one sentence about {this} {picture} please",
    ],
    "detect": [
        "find the {target}", "are there any {target}", "how many {target} are there",
        "count the {target}", "where are the {target}",
        "detect {target}", "box the {target}", "mark the {target}", "spot the {target}",
        "locate the {target}", "how many {target} can you see", "any {target} here?",
        "highlight every {one}", "draw a box around each {one}", "show me where the {target} are",
        "can you find the {one}", "is there a {one} in {this} {picture}",
        "count how many {target} are in {this} {picture}", "find every {one}",
        "point out the {target}", "where's the {one}",
        "detect all {target} please",
        "how many {target} do you see in {this} {picture}", "any {target} in {this} {picture}",
        "are there {target} in {this} {picture} or not", "can you see any {target}",
        "do you see {target} here", "number of {target}?",
        "{target} count", "are any {target} visible", "is there a {one} anywhere",
        "how many {target} are in {this} {picture}",
    ],
    "detect_people": [  # people without naming what to look for
        "is anyone in {this} {picture}", "who is in {this} {picture}",
        "is there anybody in {this} {picture}", "is somebody there",
        "are there people or is it empty", "anyone in {this} {picture}",
        "is anybody standing there", "is someone in the shot", "is it empty or is someone there",
        "is there a person or not",
    ],
    "grayscale": [
        "make it black and white", "b&w", "bw please", "convert it to grayscale",
        "greyscale it", "remove the colour", "remove the colors", "desaturate it",
        "make it monochrome", "no colours please", "turn it gray", "black and white version",
        "make {this} {picture} black and white", "convert {this} {picture} to greyscale",
        "can i get it in black and white", "drop the colour", "make it grey", "bw",
    ],
    "rotate": [
        "rotate it {degrees} degrees", "turn it by {degrees}°", "rotate {degrees}",
        "spin it {degrees} degrees", "rotate {this} {picture} by {degrees} degrees",
        "turn {this} {picture} {degrees} degrees", "rotate by {degrees} deg",
        "can you rotate it {degrees} degrees", "give it a {degrees} degree turn",
    ],
    "rotate_named": [
        "turn it sideways", "rotate it left", "rotate it to the left", "rotate it right",
        "rotate it clockwise", "rotate it counterclockwise", "turn it a quarter turn",
    ],
    "flip_h": [
        "mirror it", "flip it horizontally", "flip it left to right", "mirror image please",
        "flip {this} {picture}", "make a mirror image", "flip it sideways",
        "mirror {this} {picture}", "flip horizontal",
    ],
    "flip_v": [
        "flip it vertically", "turn it upside down", "flip it upside down", "flip vertical",
        "make it upside down", "flip {this} {picture} top to bottom",
    ],
    "blur": [
        "blur it", "make it blurry", "soften it", "blur the picture a bit", "add some blur",
        "make it fuzzy", "blur {this} {picture}", "can you blur it", "make it out of focus",
        "blur everything", "apply a blur",
    ],
    "resize": [
        "resize it to {w}x{h}", "make it {w} by {h}", "scale it to {w} x {h}",
        "shrink it to {w}x{h}", "change the size to {w}x{h}", "resize to {w}x{h} pixels",
        "make {this} {picture} {w}x{h}", "i need it at {w}x{h}", "{w}x{h} please",
    ],
    "crop": [
        "crop the {region}", "cut out the {region}", "keep only the {region}",
        "crop it to the {region}", "trim it to the {region}", "just the {region} please",
        "crop {this} {picture} to the {region}", "zoom in on the {region}",
        "give me the {region} only", "i only want the {region}", "cut it down to the {region}",
        "crop to the {region} of {this} {picture}", "show just the {region}",
    ],
    "crop_box": [
        "crop it to {x0},{y0},{x1},{y1}", "crop the box {x0}, {y0}, {x1}, {y1}",
        "cut out from ({x0}, {y0}) to ({x1}, {y1})", "crop x {x0}-{x1}, y {y0}-{y1}",
        "crop {this} {picture} to the rectangle {x0} {y0} {x1} {y1}",
        "keep the area from {x0},{y0} to {x1},{y1}",
    ],
    "generate": [
        "draw {scene}", "make me a picture of {scene}", "generate {scene}",
        "create an image of {scene}", "paint {scene}", "sketch {scene}", "can you draw {scene}",
        "i want a picture with {scene}", "render {scene}", "an image of {scene} please",
        "design a picture with {scene}", "illustrate {scene}", "make an image: {scene}",
        "draw me {scene}", "could you make a drawing of {scene}", "picture of {scene}",
        "generate an image showing {scene}", "i'd love a drawing of {scene}",
        "make a poster with {scene}", "create {scene}", "draw something: {scene}",
        "can u paint {scene}", "produce a picture of {scene}",
    ],
    "compare": [
        "compare {a} and {b}", "what's the difference between {a} and {b}",
        "how are {a} and {b} different", "compare them", "which is which",
        "are {a} and {b} the same", "tell me the difference", "compare the two pictures",
        "what do {a} and {b} show", "describe both", "{a} vs {b}?",
    ],
}

WRAP_BEFORE = ["", "", "", "", "", "hey, ", "hi! ", "ok ", "so ", "quick question: ", "um ",
               "please ", "could you ", "can you ", "would you mind if you ", "i need you to ",
               "i'd like you to ", "help me: ", "pls ", "hello, ", "one more thing: ",
               "now ", "and ", "next, ", "alright, "]
WRAP_AFTER = ["", "", "", "", "?", ".", "!", " please", " pls", " thanks", " thx", " for me",
              " 🙂", " asap", " if you can", " thank you!", ", thanks in advance", " :)"]
# Commands that read oddly after "could you": these wrappers only go before a verb.
_VERBISH = re.compile(r"^(?:read|transcribe|copy|extract|type|tell|pull|ocr|describe|caption|"
                      r"give|write|summarize|explain|find|count|detect|box|mark|spot|locate|"
                      r"highlight|draw|show|point|make|convert|greyscale|remove|desaturate|"
                      r"turn|rotate|spin|flip|mirror|blur|soften|add|apply|resize|scale|"
                      r"shrink|change|crop|cut|keep|trim|zoom|generate|create|paint|sketch|"
                      r"render|design|illustrate|produce|compare|label|identify|classify|"
                      r"name|decipher|id|guess)\b")
_POLITE = ("could you ", "can you ", "would you mind if you ", "i need you to ",
           "i'd like you to ", "please ", "pls ")


def typo(word: str, rng: random.Random) -> str:
    """One slip of the fingers: two letters swapped, one dropped or doubled."""
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == 1:
        return word[:i] + word[i + 1:]
    return word[:i] + word[i] + word[i:]


def typed(text: str, rng: random.Random) -> str:
    """`text` as people type it: casing, final mark, a typo now and then."""
    words = text.split(" ")
    if rng.random() < 0.25:
        words = [typo(w, rng) if rng.random() < 0.25 else w for w in words]
    text = " ".join(words)
    style = rng.random()
    if style < 0.45:
        text = text.lower()
    elif style < 0.9:
        text = text[:1].upper() + text[1:]
    elif style < 0.94:
        text = text.upper()
    if rng.random() < 0.1:
        text = text.rstrip("?.!")
    return text


def wrap(core: str, rng: random.Random) -> str:
    before = rng.choice(WRAP_BEFORE)
    if before in _POLITE and not _VERBISH.match(core):
        before = ""
    after = rng.choice(WRAP_AFTER)
    if after in ("?", ".", "!") and core[-1:] in "?.!":
        after = ""
    question = core.split(" ", 1)[0] in ("what", "what's", "whats", "which", "how", "when",
                                          "where", "who", "is", "are", "can", "could", "any")
    if not after and question and rng.random() < 0.7:
        after = "?"
    return before + core + after


def fill(core: str, rng: random.Random, **slots) -> str:
    values = {"this": rng.choice(THIS), "picture": rng.choice(PICTURE), **slots}
    return core.format(**{k: v for k, v in values.items() if "{" + k + "}" in core})


def ask(intent: str, rng: random.Random, **slots) -> str:
    """One request for `intent`, as some person might type it."""
    core = fill(rng.choice(CORES[intent]), rng, **slots)
    return typed(wrap(core, rng), rng)


def needs(intent: str) -> set[str]:
    """The slots an intent's cores use beyond {this} and {picture}."""
    found = set()
    for core in CORES[intent]:
        found |= set(re.findall(r"{(\w+)}", core))
    return found - {"this", "picture"}
