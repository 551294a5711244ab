"""Generated training pictures with known contents, and text about them.

Each picture has one to four shapes (circle, square, rectangle, triangle) in eight colours at
named positions on a plain background, and sometimes a rendered word. The generator knows what
it drew, so it writes true captions ("A red circle at the top left and a blue square at the
right.") and instructions with answers (colours, shapes, counts, positions, the word).
Everything follows from `seed`: the same seed gives the same samples.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

from assistant.train.data import Loaded, Sample

COLORS = {
    "red": (220, 30, 30), "green": (40, 170, 60), "blue": (40, 70, 220), "yellow": (240, 210, 40),
    "black": (15, 15, 15), "gray": (128, 128, 128), "teal": (0, 128, 128), "brown": (130, 80, 30),
}
SHAPES = ("circle", "square", "rectangle", "triangle")
WORDS = ("cat", "sun", "tree", "book", "fish", "moon", "star", "boat", "car", "hat", "cup", "dog")
NUMBERS = ("zero", "one", "two", "three", "four")
# 3x3 cells of the picture and how people name them.
POSITIONS = {
    (0, 0): "top left", (1, 0): "top", (2, 0): "top right",
    (0, 1): "left", (1, 1): "center", (2, 1): "right",
    (0, 2): "bottom left", (1, 2): "bottom", (2, 2): "bottom right",
}


@dataclass(frozen=True)
class Shape:
    kind: str
    color: str
    cell: tuple[int, int]

    @property
    def position(self) -> str:
        return POSITIONS[self.cell]

    def phrase(self) -> str:
        where = "in the center" if self.cell == (1, 1) else f"at the {self.position}"
        return f"a {self.color} {self.kind} {where}"


@dataclass(frozen=True)
class Scene:
    shapes: tuple[Shape, ...]
    word: str
    background: str
    seed: int
    size: int = 128

    def draw(self) -> Image.Image:
        rng = random.Random(self.seed)
        img = Image.new("RGB", (self.size, self.size), self.background)
        d = ImageDraw.Draw(img)
        cell = self.size / 3
        for s in self.shapes:
            r = cell * rng.uniform(0.3, 0.45)
            cx = (s.cell[0] + 0.5) * cell + rng.uniform(-0.05, 0.05) * cell
            cy = (s.cell[1] + 0.5) * cell + rng.uniform(-0.05, 0.05) * cell
            fill = COLORS[s.color]
            if s.kind == "circle":
                d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
            elif s.kind == "square":
                d.rectangle((cx - r, cy - r, cx + r, cy + r), fill=fill)
            elif s.kind == "rectangle":
                d.rectangle((cx - r, cy - r * 0.5, cx + r, cy + r * 0.5), fill=fill)
            else:
                d.polygon([(cx, cy - r), (cx - r, cy + r * 0.8), (cx + r, cy + r * 0.8)], fill=fill)
        if self.word:
            d.text((self.size * 0.08, self.size * 0.4), self.word, fill="black",
                   font_size=int(self.size * 0.22))
        return img

    def caption(self) -> str:
        parts = [s.phrase() for s in self.shapes]
        text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        text = text[0].upper() + text[1:] + "."
        if self.word:
            text += f' The word "{self.word}" is written on it.'
        return text


def random_scene(rng: random.Random, size: int = 128) -> Scene:
    n = rng.choice((1, 1, 2, 2, 3, 4))
    cells = rng.sample(sorted(POSITIONS), n)
    shapes = tuple(Shape(rng.choice(SHAPES), rng.choice(sorted(COLORS)), c) for c in cells)
    word = rng.choice(WORDS) if rng.random() < 0.25 else ""
    return Scene(shapes, word, "white", rng.randrange(2**31), size)


def instructions(scene: Scene, rng: random.Random) -> list[tuple[str, str]]:
    """Question-answer pairs that are true of the scene."""
    shapes = scene.shapes
    pick = rng.choice(shapes)
    colors = {s.color for s in shapes}
    other_color = rng.choice(sorted(set(COLORS) - colors))
    qa = [
        (f"What color is the {pick.kind} at the {pick.position}?", pick.color)
        if pick.cell != (1, 1) else (f"What color is the {pick.kind} in the center?", pick.color),
        (f"What shape is at the {pick.position}?" if pick.cell != (1, 1)
         else "What shape is in the center?", pick.kind),
        ("How many shapes are there?", NUMBERS[len(shapes)]),
        (f"Is there a {pick.color} shape?", "yes"),
        (f"Is there a {other_color} shape?", "no"),
        (f"Where is the {pick.color} {pick.kind}?", pick.position),
    ]
    if scene.word:
        qa.append(("What word is written in the image?", scene.word))
    return qa


def generate(n: int, seed: int = 0, size: int = 128, captions: bool = True) -> Loaded:
    """`n` samples: captions (stage 1) or one instruction each (stage 2)."""
    rng = random.Random(seed)
    samples = []
    for i in range(n):
        scene = random_scene(rng, size)
        if captions:
            turns = [("user", "Describe the image briefly."), ("assistant", scene.caption())]
            kind = "caption"
        else:
            question, answer = rng.choice(instructions(scene, rng))
            turns = [("user", question), ("assistant", answer)]
            kind = "synthetic"
        samples.append(Sample(f"synthetic/{seed}/{i}", turns, scene.draw, kind=kind))
    return Loaded(samples)
