"""Pictures for the agent's training chats, each with what is known to be in it.

- `Sign`: rendered text of a kind people photograph (a departure board, a receipt, a price
  tag, opening hours, a room sign, a wifi card, a serial-number sticker, a parking notice,
  plain words), with the fact a question about it asks for ("10:45", "13.50", "platform 2")
  found in the text the OCR tool reads back.
- `photo`: a scikit-image sample photo, cropped and flipped at random.
- `ShapeScene`: one to four flat shapes of sizes from 1% to 60% of the picture on a plain
  background of any colour, with true answers about colours, shapes and counts; drawn with the
  procedural drawing tool's own shapes, so drawings the assistant makes look alike.

Everything follows from the random generator given.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageOps

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "cat", "immunohistochemistry",
          "hubble_deep_field")
FACES = ("astronaut",)  # photos with a face the Haar detector finds
CITIES = ("LONDON", "PARIS", "BERLIN", "ROME", "OSLO", "LYON", "LEEDS", "BERN", "MADRID",
          "DUBLIN", "YORK", "BATH", "GENEVA", "MILAN", "PORTO", "VIENNA")
ITEMS = ("COFFEE", "TEA", "BREAD", "MILK", "SOUP", "CAKE", "JUICE", "PASTA", "RICE", "APPLES",
         "CHEESE", "EGGS", "BAGEL", "WATER", "SALAD")
WORDS = ("OPEN", "CLOSED", "EXIT", "SALE", "STOP", "PUSH", "PULL", "CAFE", "HOTEL", "TAXI",
         "NO PARKING", "WELCOME", "DANGER", "FREE WIFI", "KEEP OUT", "FRAGILE", "THIS WAY UP",
         "WET FLOOR", "SILENCE", "STAFF ONLY", "NO ENTRY", "HELLO WORLD", "MENU", "TICKETS")
SHAPE_COLOURS = ("red", "green", "blue", "yellow", "orange", "purple", "pink", "black",
                 "gray", "brown", "teal", "white")
BACKGROUNDS = ("white", "white", "white", "beige", "silver", "black", "navy", "yellow",
               "pink", "gray")
SHAPES = ("circle", "square", "rectangle", "triangle", "star", "diamond", "ellipse")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six")


@dataclass(frozen=True)
class Sign:
    """A sign's lines, and what kind of sign it is ("train", "receipt", "words", ...)."""

    kind: str
    lines: tuple[str, ...]
    seed: int

    @property
    def spec(self) -> str:
        return "|".join(self.lines)

    def draw(self) -> Image.Image:
        return sign_image(self.lines, random.Random(self.seed))


def sign_image(lines, rng: random.Random) -> Image.Image:
    """Black (or white) text on a plain card, one line under another."""
    from tools.drawing import font

    paper = rng.choice([(255, 255, 255), (250, 240, 200), (220, 235, 255), (30, 30, 30),
                        (255, 255, 255), (240, 240, 240)])
    ink = (0, 0, 0) if sum(paper) > 300 else (255, 255, 255)
    size = rng.choice([28, 32, 36, 44, 52])
    width = max(200, int(size * 0.72 * max(len(line) for line in lines)) + 60)
    image = Image.new("RGB", (width, size * (len(lines) + 1) + size // 2), paper)
    draw = ImageDraw.Draw(image)
    x = rng.randint(12, 30)
    for i, line in enumerate(lines):
        draw.text((x, size // 2 + i * int(size * 1.15)), line, fill=ink, font=font(size))
    return image


def _time(rng: random.Random) -> str:
    return f"{rng.randint(5, 22)}:{rng.choice(['00', '05', '15', '20', '30', '40', '45', '50'])}"


def _money(rng: random.Random) -> str:
    return f"{rng.randint(1, 60)}.{rng.choice(['00', '20', '49', '50', '75', '95', '99'])}"


def random_sign(rng: random.Random, kind: str | None = None) -> Sign:
    kind = kind or rng.choice(["train", "bus", "flight", "hours", "receipt", "price", "room",
                               "wifi", "phone", "serial", "parking", "words", "words"])
    if kind == "train":
        lines = [f"TRAIN TO {rng.choice(CITIES)}", f"DEPARTS {_time(rng)}",
                 f"PLATFORM {rng.randint(1, 14)}"]
    elif kind == "bus":
        lines = [f"BUS {rng.randint(1, 99)} {rng.choice(CITIES)}", f"LEAVES {_time(rng)}"]
    elif kind == "flight":
        lines = [f"FLIGHT {rng.choice('ABLUK')}{rng.choice('AZXY')}{rng.randint(100, 999)}",
                 f"GATE {rng.choice('ABCD')}{rng.randint(1, 30)}", f"BOARDING {_time(rng)}"]
    elif kind == "hours":
        lines = ["OPENING HOURS", f"OPEN {rng.randint(6, 10)}:00 - {rng.randint(16, 22)}:00"]
    elif kind == "receipt":
        items = rng.sample(ITEMS, rng.choice([1, 2]))
        prices = [_money(rng) for _ in items]
        total = sum(float(p) for p in prices)
        lines = [f"{i} {p}" for i, p in zip(items, prices, strict=True)] + [f"TOTAL {total:.2f}"]
    elif kind == "price":
        lines = [rng.choice(ITEMS), f"PRICE {_money(rng)}"]
    elif kind == "room":
        lines = [f"ROOM {rng.randint(1, 4)}{rng.randint(0, 3)}{rng.randint(0, 9)}"]
    elif kind == "wifi":
        word = rng.choice(["sunny", "river", "maple", "tiger", "cloud", "pixel", "lemon"])
        lines = ["FREE WIFI", f"PASSWORD {word}{rng.randint(10, 99)}"]
    elif kind == "phone":
        lines = ["CALL US", f"{rng.randint(200, 999)}-{rng.randint(1000, 9999)}"]
    elif kind == "serial":
        lines = [f"MODEL {rng.choice('ABKTXZ')}{rng.randint(10, 990)}",
                 f"SERIAL NO {rng.randint(10**7, 10**8 - 1)}"]
    elif kind == "parking":
        lines = ["NO PARKING", f"WEEKDAYS {rng.randint(6, 10)}:00 - {rng.randint(16, 20)}:00"]
    else:
        lines = [rng.choice(WORDS)] + ([rng.choice(WORDS)] if rng.random() < 0.3 else [])
    return Sign(kind, tuple(lines), rng.randrange(2**31))


# What a question asks for, found in the text read from a sign: (pattern, answer template).
FACTS: dict[str, list[tuple[str, str]]] = {
    "read_time": [(r"(?:DEPARTS|LEAVES|BOARDING)\s*(\d{1,2}:\d{2})", "It leaves at {0}."),
                  (r"OPEN\s*(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})",
                   "It is open from {0} to {1}.")],
    "read_place": [(r"PLATFORM\s*(\w+)", "Platform {0}."), (r"GATE\s*(\w+)", "Gate {0}."),
                   (r"ROOM\s*(\w+)", "Room {0}.")],
    "read_amount": [(r"TOTAL\s*(\d+[.,]\d{2})", "The total is {0}."),
                    (r"PRICE\s*(\d+[.,]\d{2})", "It costs {0}.")],
    "read_secret": [(r"PASSWORD\s*(\S+)", "The password is {0}."),
                    (r"(\d{3}-\d{4})", "The number is {0}.")],
    "read_code": [(r"SERIAL\s*NO\D*(\d{6,})", "The serial number is {0}."),
                  (r"MODEL\s*(\w+)", "It is model {0}.")],
    "read_rule": [(r"NO\s*PARKING\s*WEEKDAYS\s*(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})",
                   "No parking on weekdays from {0} to {1}.")],
}
# Which question fits which kind of sign.
SIGN_QUESTIONS = {"train": ["read_time", "read_place"], "bus": ["read_time"],
                  "flight": ["read_time", "read_place"], "hours": ["read_time"],
                  "receipt": ["read_amount"], "price": ["read_amount"], "room": ["read_place"],
                  "wifi": ["read_secret"], "phone": ["read_secret"], "serial": ["read_code"],
                  "parking": ["read_rule"], "words": []}


def fact(intent: str, text: str) -> str | None:
    """The answer to an `intent` question from the text read off a sign, or None."""
    for pattern, template in FACTS.get(intent, []):
        m = re.search(pattern, text, re.I)
        if m:
            return template.format(*m.groups())
    return None


def photo(name: str, seed: int) -> Callable[[], Image.Image]:
    """A loader of photo `name`, cropped to 70-100% and mirrored half the time."""
    def load() -> Image.Image:
        import skimage.data

        rng = random.Random(seed)
        image = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        w, h = image.size
        cw, ch = int(w * rng.uniform(0.7, 1)), int(h * rng.uniform(0.7, 1))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        image = image.crop((x, y, x + cw, y + ch))
        return ImageOps.mirror(image) if rng.random() < 0.5 else image

    return load


@dataclass(frozen=True)
class Shape:
    kind: str
    colour: str
    cx: float  # centre, as fractions of the picture's width and height
    cy: float
    r: float  # radius as a fraction of the picture's shorter side


@dataclass(frozen=True)
class ShapeScene:
    shapes: tuple[Shape, ...]
    background: str
    width: int
    height: int

    def draw(self) -> Image.Image:
        from tools.drawing import COLOURS, contrasting
        from tools.sketch import _shape

        image = Image.new("RGB", (self.width, self.height), COLOURS[self.background])
        draw = ImageDraw.Draw(image)
        side = min(self.width, self.height)
        for s in self.shapes:
            same = COLOURS[s.colour] == COLOURS[self.background]
            _shape(draw, s.kind, s.cx * self.width, s.cy * self.height, s.r * side,
                   COLOURS[s.colour], contrasting(COLOURS[self.background]) if same else None)
        return image

    def colours(self) -> set[str]:
        return {s.colour for s in self.shapes}

    def kinds(self) -> set[str]:
        return {s.kind for s in self.shapes}

    def describe(self) -> str:
        """"a red circle and two blue squares"."""
        groups: dict[tuple[str, str], int] = {}
        for s in self.shapes:
            groups[(s.colour, s.kind)] = groups.get((s.colour, s.kind), 0) + 1
        parts = [f"{'a' if n == 1 else NUMBER_WORDS[n]} {c} {k}{'s' if n > 1 else ''}"
                 for (c, k), n in groups.items()]
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def shape_scene(rng: random.Random) -> ShapeScene:
    """1-4 shapes, each 1% to 60% of the picture (60% in all at most), not overlapping."""
    n = rng.choice((1, 1, 1, 2, 2, 3, 4))
    background = rng.choice(BACKGROUNDS)
    width = rng.choice((64, 128, 224, 256, 320, 400))
    height = rng.choice((width, width, int(width * 0.75), int(width * 1.25)))
    colours = [c for c in SHAPE_COLOURS if c != background]
    shapes: list[Shape] = []
    budget = 0.6
    for _ in range(n * 20):
        if len(shapes) == n:
            break
        share = math.exp(rng.uniform(math.log(0.01), math.log(min(budget, 0.6 / n * 1.5))))
        r = math.sqrt(share / math.pi) * max(width, height) / min(width, height)
        r = min(r, 0.48)
        cx = rng.uniform(r * min(width, height) / width, 1 - r * min(width, height) / width)
        cy = rng.uniform(r * min(width, height) / height, 1 - r * min(width, height) / height)
        if any(math.hypot((cx - s.cx) * width, (cy - s.cy) * height)
               < (r + s.r) * min(width, height) for s in shapes):
            continue
        shapes.append(Shape(rng.choice(SHAPES), rng.choice(colours), cx, cy, r))
        budget -= share
    return ShapeScene(tuple(shapes), background, width, height)


def shape_questions(scene: ShapeScene, rng: random.Random) -> list[tuple[str, str]]:
    """(question, short answer) pairs true of the scene, in several wordings."""
    shapes, out = scene.shapes, []
    kinds = [s.kind for s in shapes]
    colours = [s.colour for s in shapes]
    for s in shapes:
        if kinds.count(s.kind) == 1:
            out.append((rng.choice(["what colour is the {k}", "what color is the {k}",
                                    "which colour is the {k}", "the {k} is what colour",
                                    "what's the colour of the {k}", "color of the {k}?",
                                    "tell me the colour of the {k}"]).replace("{k}", s.kind),
                        s.colour))
        if colours.count(s.colour) == 1:
            out.append((rng.choice(["what shape is the {c} one", "which shape is {c}",
                                    "what is the {c} shape", "the {c} thing is what shape",
                                    "what shape is {c}"]).replace("{c}", s.colour), s.kind))
    n = len(shapes)
    out.append((rng.choice(["how many shapes are there", "how many shapes do you see",
                            "count the shapes", "number of shapes?", "how many objects are in it",
                            "how many things are drawn"]), NUMBER_WORDS[n]))
    present = rng.choice(shapes)
    absent_colour = rng.choice([c for c in SHAPE_COLOURS if c not in colours])
    absent_kind = rng.choice([k for k in SHAPES if k not in kinds])
    out += [
        (rng.choice(["is there a {c} shape", "do you see anything {c}", "any {c} in it",
                     "is something {c}"]).replace("{c}", present.colour), "yes"),
        (rng.choice(["is there a {c} shape", "do you see anything {c}", "any {c} in it",
                     "is something {c}"]).replace("{c}", absent_colour), "no"),
        (rng.choice(["is there a {k}", "do you see a {k}", "does it have a {k} in it",
                     "any {k}s?"]).replace("{k}", present.kind), "yes"),
        (rng.choice(["is there a {k}", "do you see a {k}", "does it have a {k} in it",
                     "any {k}s?"]).replace("{k}", absent_kind), "no"),
        (rng.choice(["what colour is the background", "what's the background colour",
                     "background color?"]), scene.background),
    ]
    if n == 1:
        out += [(rng.choice(["what shape is it", "what shape do you see", "which shape is this",
                             "what is the shape"]), shapes[0].kind),
                (rng.choice(["what colour is it", "what color is the shape", "which colour",
                             "what colour is the shape in this picture"]), shapes[0].colour)]
    return out
