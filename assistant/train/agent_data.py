"""Training conversations for the agent: the model sees the picture and the request under the
compact agent prompt and learns to call the right tool with the right arguments, to answer
from the tool's observation, or to answer directly (easy-VQA questions).

    agent:N   N routing conversations, about a fifth of them continued with the real tool's
              observation and an answer that uses it; plus N/3 direct easy-VQA answers

Requests are built from phrase parts (verbs, objects, places) so that no sentence of the
routing dev set (assistant/agent/data/routing_dev.jsonl) is needed or used. Pictures: rendered
text for OCR, scikit-image photos (cropped and flipped at random), easy-VQA and generated
shape pictures for the rest; requests to draw come without a picture. Everything follows from
`seed`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageOps

from assistant.train.data import Loaded, Sample

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "cat", "immunohistochemistry")
SIGN_WORDS = ("OPEN", "CLOSED", "EXIT", "SALE", "STOP", "PUSH", "PULL", "CAFE", "HOTEL", "BAR",
              "TAXI", "BUS", "PARKING", "MENU", "PRICE", "TOTAL", "TICKET", "GATE", "ROOM",
              "WELCOME", "DANGER", "NO ENTRY", "FREE", "NEW", "SOUP", "TEA", "BREAD", "MILK")
COLOURS = ("red", "blue", "green", "yellow", "orange", "purple", "black", "white", "pink")
SHAPES = ("circle", "square", "triangle", "star", "rectangle", "diamond", "ring", "line")

REQUESTS: dict[str, list[str]] = {
    "ocr": ["{please}read {the} {text} in {this} {picture}", "what does {the} {sign} say",
            "what is written on {the} {sign}", "transcribe {this} {picture}",
            "{please}tell me what {the} {sign} says", "what text is in {this} {picture}",
            "can you read {the} {text}", "what do the letters say",
            "which words are written here", "{please}copy out the {text}",
            "what is the price on {the} {sign}", "read it out for me"],
    "classify": ["what animal is this", "what kind of {thing} is this",
                 "what is {this} {thing}", "{please}classify {this} {picture}",
                 "which category does {this} {picture} belong to", "identify the {thing}",
                 "what type of animal is in {this} {picture}", "name {this} {thing}",
                 "is this a cat or a dog", "what species is this", "what animal do you see",
                 "tell me what {thing} this is"],
    "detect": ["{please}find the {targets} in {this} {picture}", "where are the {targets}",
               "locate the {targets}", "detect {targets}", "mark the {targets} with boxes",
               "draw boxes around the {targets}", "how many {targets} are there",
               "show me where the {targets} are", "are there any {targets} here"],
    "caption": ["{please}describe {this} {picture}", "write a caption for {this} {picture}",
                "what is happening in {this} {picture}", "caption this",
                "give me a short description of {this} {picture}",
                "what does {this} {picture} show", "summarize {this} {picture}",
                "caption this {picture}",
                "tell me about {this} {picture}", "describe what you see"],
    "generate_image": ["{please}draw {scene}", "generate an image of {scene}",
                       "create a picture of {scene}", "make an image with {scene}",
                       "paint {scene}", "can you draw {scene}", "{please}make a drawing of {scene}",
                       "sketch {scene}", "produce an image showing {scene}"],
}
EDITS: list[tuple[str, dict]] = [
    ("rotate {this} {picture} by {degrees} degrees", {"operation": "rotate"}),
    ("turn {this} {picture} {degrees} degrees", {"operation": "rotate"}),
    ("make {this} {picture} black and white", {"operation": "grayscale"}),
    ("convert {this} {picture} to grayscale", {"operation": "grayscale"}),
    ("remove the colours from {this} {picture}", {"operation": "grayscale"}),
    ("flip {this} {picture} horizontally", {"operation": "flip", "direction": "horizontal"}),
    ("mirror {this} {picture}", {"operation": "flip", "direction": "horizontal"}),
    ("flip {this} {picture} vertically", {"operation": "flip", "direction": "vertical"}),
    ("turn {this} {picture} upside down", {"operation": "flip", "direction": "vertical"}),
    ("blur {this} {picture}", {"operation": "blur"}),
    ("make {this} {picture} blurry", {"operation": "blur"}),
    ("resize {this} {picture} to {w} by {h} pixels", {"operation": "resize"}),
    ("scale {this} {picture} to {w}x{h}", {"operation": "resize"}),
    ("crop the {region} of {this} {picture}", {"operation": "crop"}),
    ("cut out the {region}", {"operation": "crop"}),
]
REGIONS = {"left half": (0, 0, 0.5, 1), "right half": (0.5, 0, 1, 1), "top half": (0, 0, 1, 0.5),
           "bottom half": (0, 0.5, 1, 1), "top left quarter": (0, 0, 0.5, 0.5),
           "top right quarter": (0.5, 0, 1, 0.5), "bottom left quarter": (0, 0.5, 0.5, 1),
           "bottom right quarter": (0.5, 0.5, 1, 1), "center": (0.25, 0.25, 0.75, 0.75)}
TARGETS = {"faces": ["face"], "people": ["person"], "persons": ["person"],
           "human faces": ["face"], "cats": ["cat face"], "cat faces": ["cat face"]}
SLOTS = {"please": ["", "", "please ", "could you "], "the": ["the", "the", "this"],
         "text": ["text", "words", "writing", "letters"], "this": ["this", "the", "this"],
         "picture": ["image", "picture", "photo", "pic"], "sign": ["sign", "label", "note",
                                                                   "poster"],
         "thing": ["thing", "object", "animal", "item"]}


def _dev_texts() -> set[str]:
    from assistant.agent.routing import DEV_SET, load_cases

    return {_norm(c["text"]) for c in load_cases(DEV_SET)}


def _norm(text: str) -> str:
    return " ".join("".join(ch for ch in text.lower() if ch.isalnum() or ch == " ").split())


_HELD_OUT: set[str] = set()


def _fill(templates: list[str], rng: random.Random, **values) -> str:
    """A request from one of `templates`; never one of the dev set's sentences."""
    if not _HELD_OUT:
        _HELD_OUT.update(_dev_texts())
    for _ in range(50):
        template = rng.choice(templates)
        slots = {k: rng.choice(v) for k, v in SLOTS.items()}
        text = " ".join(template.format(**{**slots, **values}).split())
        text = text[0].upper() + text[1:]
        first = text.split()[0].lower()
        text += "?" if first in ("what", "which", "where", "how", "is", "are", "can") else \
            rng.choice([".", ""])
        if _norm(text) not in _HELD_OUT:
            return text
    raise ValueError(f"no request outside the dev set from {templates[:2]}...")


def _scene(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.choice([1, 1, 2])):
        count = rng.choice(["a", "a", "two", "three"])
        shape = rng.choice(SHAPES) + ("s" if count != "a" else "")
        parts.append(f"{count} {rng.choice(COLOURS)} {shape}")
    scene = " and ".join(parts)
    if rng.random() < 0.4:
        scene += f" on a {rng.choice(COLOURS)} background"
    if rng.random() < 0.15:
        scene += f" with the text '{rng.choice(SIGN_WORDS)}'"
    return scene


def sign(text: str, rng: random.Random) -> Image.Image:
    from tools.drawing import font

    background = rng.choice([(255, 255, 255), (250, 240, 200), (220, 235, 255), (30, 30, 30)])
    ink = (0, 0, 0) if sum(background) > 300 else (255, 255, 255)
    size = rng.choice([28, 36, 44, 56])
    image = Image.new("RGB", (max(160, int(size * 0.75 * len(text)) + 60), size * 3), background)
    ImageDraw.Draw(image).text((rng.randint(10, 30), size), text, fill=ink, font=font(size))
    return image


def photo(name: str, seed: int) -> Callable[[], Image.Image]:
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


def call_text(name: str, arguments: dict) -> str:
    from assistant.agent import protocol

    return protocol.write(protocol.Call(name, arguments))


def system_text(images: list[Image.Image]) -> str:
    import prompts

    tools = [{"name": n} for n in ("caption", "vqa", "ocr", "detect", "classify",
                                   "generate_image", "edit_image")]
    shown = [{"handle": f"#{i + 1}", "width": im.width, "height": im.height}
             for i, im in enumerate(images)]
    return prompts.render("agent_system_compact", tools=tools, images=shown)


def generate(n: int, seed: int = 0, with_observations: float = 0.2) -> Loaded:
    rng = random.Random(seed)
    tools = ["ocr", "classify", "detect", "caption", "generate_image", "edit_image"]
    samples = []
    for i in range(n):
        tool = tools[i % len(tools)]
        samples.append(_routing_sample(tool, i, seed, rng))
    _add_observations(samples, rng, with_observations)
    samples += _direct(n // 3, rng)
    return Loaded(samples)


def _picture(tool: str, i: int, seed: int, rng: random.Random) -> tuple[str, Callable, str]:
    if tool == "ocr":
        words = " ".join(rng.sample(SIGN_WORDS, rng.choice([1, 1, 2]))) + (
            f" {rng.randint(1, 99)}" if rng.random() < 0.3 else "")
        return f"agent/sign/{seed}/{i}", (lambda w=words, s=seed * 100003 + i: sign(
            w, random.Random(s))), words
    name = rng.choice(PHOTOS if tool != "detect" else ("astronaut", "astronaut", "chelsea",
                                                        "cat", "camera"))
    return f"agent/photo/{name}/{seed}/{i}", photo(name, seed * 100003 + i), name


def _size(load: Callable[[], Image.Image], cache: dict, key: str) -> tuple[int, int]:
    if key not in cache:
        cache[key] = load().size
    return cache[key]


_SIZES: dict[str, tuple[int, int]] = {}


def _routing_sample(tool: str, i: int, seed: int, rng: random.Random) -> Sample:
    if tool == "generate_image":
        scene = _scene(rng)
        request = _fill(REQUESTS[tool], rng, scene=scene)
        return Sample("", [("user", request), ("assistant", call_text(tool, {"prompt": scene}))],
                      lambda: None, kind="agent", stratum=tool, system=system_text([]))
    key, load, _ = _picture(tool, i, seed, rng)
    w, h = _size(load, _SIZES, key)
    args: dict = {"image": "#1"}
    if tool == "edit_image":
        operation = rng.choice(sorted({e["operation"] for _, e in EDITS}))
        options = [(t, e) for t, e in EDITS if e["operation"] == operation]
        template, extra = rng.choice(options)
        values = {"degrees": rng.choice([90, 180, 270, 45, 30, 15]), "w": rng.choice([64, 128, 256]),
                  "h": rng.choice([64, 128, 256]), "region": rng.choice(list(REGIONS))}
        request = _fill([template], rng, **values)
        args.update(extra)
        if extra["operation"] == "rotate":
            args["degrees"] = values["degrees"]
        elif extra["operation"] == "resize":
            args.update(width=values["w"], height=values["h"])
        elif extra["operation"] == "crop":
            x0, y0, x1, y1 = REGIONS[values["region"]]
            args["box"] = [round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h)]
    elif tool == "detect":
        target = rng.choice(list(TARGETS))
        request = _fill(REQUESTS[tool], rng, targets=target)
        args["objects"] = TARGETS[target]
    else:
        request = _fill(REQUESTS[tool], rng)
    system = f"{system_text([Image.new('RGB', (w, h))])}"
    return Sample(key, [("user", request), ("assistant", call_text(tool, args))], load,
                  kind="agent", stratum=tool, system=system)


def _add_observations(samples: list[Sample], rng: random.Random, share: float) -> None:
    """Continue a share of the samples with the real tool's observation and an answer."""
    from assistant.config import Settings
    from assistant.conversation import Conversation
    from tools.registry import build

    registry = build(Settings(tool_memory_cpu_mb=2048), engine=lambda: None)
    for sample in samples:
        if rng.random() >= share:
            continue
        call = json.loads(sample.turns[1][1].split("\n")[1])
        conv = Conversation()
        image = sample.load() if sample.image_key else None
        conv.add_user(sample.turns[0][1], [image] if image else [])
        observation = registry.call(call["name"], call["arguments"], conv)
        if observation.error:
            continue
        answer = _answer(call["name"], observation)
        fenced = _fenced(call["name"], observation.text)
        sample.turns += [("user", fenced), ("assistant", answer)]
        sample.stratum += "+answer"
    registry.unload_all()


def _fenced(tool: str, text: str) -> str:
    import prompts
    from assistant.agent import protocol

    return prompts.render("agent_observation", tool=tool, step=1, text=protocol.fence(text),
                          error=False)


def _answer(tool: str, observation) -> str:
    data, new = observation.data, (observation.handles or ["#2"])[0]
    if tool == "ocr":
        return f'It says "{" ".join(x["text"] for x in data["lines"])}".'
    if tool == "classify":
        best = (data.get("groups") or data["labels"])[0]["label"]
        return f"It looks like a {best}."
    if tool == "detect":
        boxes = data["boxes"]
        if not boxes:
            return "I found none."
        return f"I found {len(boxes)}, marked in {new}."
    if tool == "caption":
        return data["caption"][0].upper() + data["caption"][1:] + "."
    if tool == "generate_image":
        return f"Here it is: {new}."
    return f"Done: {new}."


CHAT = [("hi", "Hello! Send me a picture and ask about it, or ask me to draw something."),
        ("hello there", "Hello! Send me a picture and ask about it, or ask me to draw something."),
        ("good morning", "Good morning! What can I look at for you?"),
        ("who are you", "I am an assistant that looks at images and uses tools on them."),
        ("thank you", "You are welcome."), ("thanks a lot", "You are welcome."),
        ("ok bye", "Goodbye!"), ("that is all for now", "All right. Goodbye!")]


def _direct(n: int, rng: random.Random) -> list[Sample]:
    """easy-VQA questions answered directly, under the agent prompt; and a little small talk
    with no picture."""
    from assistant.train.data import easy_vqa

    pool = easy_vqa("train").samples
    out = [Sample("", [("user", text.capitalize() + rng.choice(["", ".", "!"])),
                       ("assistant", reply)], lambda: None, kind="agent", stratum="chat",
                  system=system_text([])) for text, reply in CHAT for _ in range(3)]
    for s in rng.sample(pool, min(n, len(pool))):
        out.append(Sample(s.image_key, s.turns, s.load, kind="agent", stratum="direct",
                          system=system_text([Image.new("RGB", (64, 64))])))
    return out
