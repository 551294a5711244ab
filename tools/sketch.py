"""A procedural drawing from a prompt, for machines with no image-generation weights: shapes,
colours, counts, sizes, places and text (quoted, or in capitals among lowercase words) are
read from the words and drawn exactly; everything else is reported as not drawn. It is not a
picture generator and says so.

    "two red circles and a big blue square on a yellow background, with the text 'HELLO'"
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

from tools.drawing import COLOURS, contrasting, font

SHAPES = {
    "circle": "circle", "circles": "circle", "dot": "circle", "dots": "circle",
    "ball": "circle", "balls": "circle", "disc": "circle", "discs": "circle",
    "square": "square", "squares": "square", "box": "square", "boxes": "square",
    "rectangle": "rectangle", "rectangles": "rectangle",
    "triangle": "triangle", "triangles": "triangle", "star": "star", "stars": "star",
    "ellipse": "ellipse", "ellipses": "ellipse", "oval": "ellipse", "ovals": "ellipse",
    "diamond": "diamond", "diamonds": "diamond", "line": "line", "lines": "line",
    "stripe": "line", "stripes": "line", "ring": "ring", "rings": "ring",
}
NUMBERS = {"a": 1, "an": 1, "one": 1, "single": 1, "two": 2, "pair": 2, "three": 3, "four": 4,
           "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "several": 3,
           "some": 3, "many": 8}
SIZES = {"tiny": 0.35, "small": 0.55, "little": 0.55, "big": 1.0, "large": 1.0, "huge": 1.2,
         "medium": 0.75}
PLACES = {"left": (0.25, None), "right": (0.75, None), "top": (None, 0.25),
          "bottom": (None, 0.75), "center": (0.5, 0.5), "centre": (0.5, 0.5),
          "middle": (0.5, 0.5), "upper": (None, 0.25), "lower": (None, 0.75)}
# Words that carry no drawing of their own ("draw me a picture of ..."): not reported as missed.
FILLER = set("""draw paint make create generate render sketch show produce me us i you please
picture image drawing painting illustration photo of with and the on in at to a an that
which is are there some colored coloured shape shapes side corner background text words
word saying says reads read written writing label labeled labelled caption it its each
next by near above below over under into from for""".split())
# Words that may stand between a shape and its colour, count, size or place ("a very bright
# red circle", "a circle in the top left corner").
LINKS = {"very", "bright", "light", "dark", "pale", "deep", "on", "in", "at", "the", "of",
         "to", "side", "corner", "part", "half", "sized", "size"}
MAX_ITEMS = 60
QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”|(?<!\w)\'([^\']+)\'(?!\w)')
# words in capitals, two letters or more, one after another ("PLUM JAM", "EXIT 2")
CAPITALS = re.compile(r"\b[A-Z][A-Z0-9'&!-]+(?:\s+[A-Z0-9][A-Z0-9'&!-]*)*\b")
BACKGROUND = re.compile(r"(?:on|with|over|against|in)?\s*(?:a|an|the)?\s*([a-z]+)\s+background"
                        r"|background\s+(?:is|of|in|colou?r(?:ed)?)?\s*([a-z]+)")


@dataclass
class Item:
    shape: str
    colour: str
    count: int = 1
    size: float = 0.8
    place: tuple[float | None, float | None] = (None, None)


@dataclass
class Plan:
    items: list[Item] = field(default_factory=list)
    background: str = "white"
    text: str = ""
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was asked but not drawn as asked

    def describe(self) -> str:
        parts = []
        for it in self.items:
            noun = it.shape + ("s" if it.count > 1 else "")
            parts.append(f"{it.count} {it.colour} {noun}")
        if self.text:
            parts.append(f'the text "{self.text}"')
        return f"{', '.join(parts)} on a {self.background} background"


def parse(prompt: str, rng: random.Random) -> Plan:
    plan = Plan()
    quoted = [next(g for g in m.groups() if g) for m in QUOTED.finditer(prompt)]
    # "a sign saying SALE": words in capitals are text (unless everything is: "A RED CIRCLE",
    # but a prompt all in capitals that draws nothing, "SALE", is text too: see the end)
    if not quoted and re.search(r"[a-z]", prompt):
        quoted = [m.group(0) for m in CAPITALS.finditer(prompt)]
    plan.text = " ".join(q.strip() for q in quoted)[:80]
    rest = QUOTED.sub(" ", prompt).lower()
    m = BACKGROUND.search(rest)
    if m and (m.group(1) or m.group(2)) in COLOURS:
        plan.background = m.group(1) or m.group(2)
        rest = rest[: m.start()] + " " + rest[m.end():]
    words = re.findall(r"[^\W\d_]+|\d+", rest)
    used: set[int] = set()
    for i, word in enumerate(words):
        if word not in SHAPES:
            continue
        item = Item(SHAPES[word], colour="")
        count = size = None
        used.add(i)
        for j in range(i - 1, max(-1, i - 6), -1):  # "two big red" before it; nearest wins
            w = words[j]
            if w in COLOURS and not item.colour:
                item.colour = w
            elif (w.isdigit() or w in NUMBERS) and count is None:
                count = int(w) if w.isdigit() else NUMBERS[w]
            elif w in SIZES and size is None:
                size = SIZES[w]
            elif w not in LINKS:
                break
            used.add(j)
        x = y = None
        for j in range(i + 1, min(len(words), i + 7)):  # "in the top left corner" after it
            w = words[j]
            if w in PLACES:
                px, py = PLACES[w]
                x, y = (px if x is None else x), (py if y is None else y)
                used.add(j)
            elif w not in LINKS:
                break
        item.place = (x, y)
        item.count = 1 if count is None else count
        item.size = item.size if size is None else size
        if item.count == 0:
            plan.notes.append(f"no {word} (asked for 0)")
            continue
        if not item.colour:
            item.colour = rng.choice([c for c in ("red", "blue", "green", "orange", "purple")
                                      if c != plan.background])
        plan.items.append(item)
    kept, left = [], MAX_ITEMS
    for item in plan.items:
        if item.count > left:
            plan.notes.append(f"at most {MAX_ITEMS} shapes in all: drew {left} of "
                              f"{item.count} {item.shape}s")
            item.count = left
        if item.count > 0:
            kept.append(item)
        left -= item.count
    plan.items = kept
    if not plan.items and not plan.text and not re.search(r"[a-z]", prompt):
        # "SALE": capitals that are no drawing ("A RED CIRCLE" is one) are the text to show
        plan.text = " ".join(m.group(0) for m in CAPITALS.finditer(prompt))[:80]
        used.update(range(len(words)))
    plan.ignored = [w for i, w in enumerate(words) if i not in used and w not in FILLER
                    and w not in COLOURS and w not in NUMBERS and w not in SIZES
                    and w not in PLACES and not w.isdigit()]
    return plan


def _shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, rgb,
           outline=None) -> None:
    """`outline`: drawn around the shape when it has the background's colour."""
    box = [cx - r, cy - r, cx + r, cy + r]
    edge = dict(outline=outline, width=max(2, int(r / 12))) if outline else {}
    if shape == "circle":
        draw.ellipse(box, fill=rgb, **edge)
    elif shape == "ring":
        draw.ellipse(box, outline=rgb, width=max(2, int(r / 4)))
    elif shape == "square":
        draw.rectangle(box, fill=rgb, **edge)
    elif shape == "rectangle":
        draw.rectangle([cx - r, cy - r * 0.6, cx + r, cy + r * 0.6], fill=rgb, **edge)
    elif shape == "ellipse":
        draw.ellipse([cx - r, cy - r * 0.6, cx + r, cy + r * 0.6], fill=rgb, **edge)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)], fill=rgb,
                     **edge)
    elif shape == "diamond":
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=rgb, **edge)
    elif shape == "line":
        draw.line([cx - r, cy, cx + r, cy], fill=rgb, width=max(2, int(r / 5)))
    elif shape == "star":
        points = [(cx + (r if k % 2 == 0 else r * 0.45) * math.sin(k * math.pi / 5),
                   cy - (r if k % 2 == 0 else r * 0.45) * math.cos(k * math.pi / 5))
                  for k in range(10)]
        draw.polygon(points, fill=rgb, **edge)


def render(plan: Plan, width: int, height: int, rng: random.Random) -> Image.Image:
    image = Image.new("RGB", (width, height), COLOURS[plan.background])
    draw = ImageDraw.Draw(image)
    edge = contrasting(COLOURS[plan.background])

    def paint(it: Item, cx: float, cy: float, r: float) -> None:
        same = it.colour == plan.background or COLOURS[it.colour] == COLOURS[plan.background]
        _shape(draw, it.shape, cx, cy, r, COLOURS[it.colour], edge if same else None)

    text_band = int(height * 0.2) if plan.text and plan.items else 0
    area_h = height - text_band
    free = [it for it in plan.items if it.place == (None, None) for _ in range(it.count)]
    placed = [it for it in plan.items if it.place != (None, None) for _ in range(it.count)]
    n = max(1, len(free))
    cols = math.ceil(math.sqrt(n * width / max(1, area_h)))
    rows = math.ceil(n / cols)
    cell_w, cell_h = width / cols, area_h / rows
    for k, it in enumerate(free):
        r = min(cell_w, cell_h) * 0.4 * it.size
        cx = (k % cols + 0.5) * cell_w + rng.uniform(-0.05, 0.05) * cell_w
        cy = (k // cols + 0.5) * cell_h + rng.uniform(-0.05, 0.05) * cell_h
        paint(it, cx, cy, r)
    seen: dict[tuple, int] = {}
    for it in placed:
        total = sum(1 for p in placed if p.place == it.place)
        index = seen[it.place] = seen.get(it.place, -1) + 1
        fx = it.place[0] if it.place[0] is not None else (index + 0.5) / total
        fy = it.place[1] if it.place[1] is not None else 0.5
        if it.place[1] is None and total > 1:  # several on the left: stack them
            fy = (index + 0.5) / total
        r = min(width, area_h) * 0.18 * it.size / max(1, total ** 0.5)
        paint(it, fx * width, fy * area_h, r)
    if plan.text:
        size = max(10, min(height // 6, int(width / max(1, len(plan.text)) * 1.6)))
        f = font(size)
        left, top, right, bottom = draw.textbbox((0, 0), plan.text, font=f)
        x = (width - (right - left)) / 2 - left
        y = (area_h + (height - area_h - (bottom - top)) / 2 - top) if text_band else \
            (height - (bottom - top)) / 2 - top
        draw.text((x, y), plan.text, fill=contrasting(COLOURS[plan.background]), font=f)
    return image
