"""Routing evaluation: does the model pick the right tool (or answer directly) first?

    python -m assistant.eval routing [--dataset FILE] [--model DIR] --json

A dataset is JSONL, one case per line: {"text": ..., "image": SPEC or null, "expected": TOOL or
"direct", or alternatives joined by "|"}. Images are made on the spot from a spec, so a dataset needs no files:
"skimage:NAME" (scikit-image's sample photos), "sign:TEXT" (black text on white, "|" for a new
line),
"easyvqa:SPLIT:N" (an easy-VQA picture), "sketch:PROMPT" (the procedural drawing), or a path
relative to the dataset file. The shipped sets: data/routing_dev.jsonl ("dev") and
data/routing_heldout.jsonl ("heldout", written apart from the training data and never tuned
on).

Calling `vqa` when the vqa tool is the chat model itself counts as answering directly.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from pathlib import Path

from PIL import Image, ImageDraw

from assistant.conversation import Conversation
from assistant.eval.sets import bad, records, resolve


def load_cases(path: str | Path = "dev") -> list[dict]:
    """The cases of a file (or of a shipped set), each checked: a bad one raises BadData with
    its file and line."""
    path = resolve(path, "routing")
    cases = []
    for number, case in records(path):
        if not isinstance(case, dict):
            raise bad(path, number, "a case must be a JSON object")
        missing = {"text", "expected"} - set(case)
        if missing:
            raise bad(path, number, f"missing {', '.join(sorted(missing))}")
        case["where"] = path.parent
        cases.append(case)
    return cases


def image_for(spec: str, where: Path = Path(".")) -> Image.Image:
    kind, _, rest = spec.partition(":")
    if kind == "skimage":
        import skimage.data

        return Image.fromarray(getattr(skimage.data, rest)()).convert("RGB")
    if kind == "sign":  # "|" breaks a line
        from tools.drawing import font

        lines = rest.split("|")
        image = Image.new("RGB", (max(200, 28 * max(map(len, lines)) + 40), 60 + 60 * len(lines)),
                          "white")
        draw = ImageDraw.Draw(image)
        for i, line in enumerate(lines):
            draw.text((20, 30 + 60 * i), line, fill="black", font=font(44))
        return image
    if kind == "easyvqa":
        from assistant.train.data import easy_vqa

        split, _, index = rest.partition(":")
        samples = easy_vqa(split).samples
        return samples[int(index)].load()
    if kind == "sketch":
        from tools import sketch

        return sketch.render(sketch.parse(rest, random.Random(0)), 256, 256, random.Random(0))
    return Image.open(where / spec).convert("RGB")


def evaluate(agent, cases: list[dict], progress: bool = True) -> dict:
    from tqdm import tqdm

    main_vqa = getattr(agent.registry.tools.get("vqa"), "backend", "") == "the chat model"
    rows = []
    for case in tqdm(cases, desc="routing", disable=not progress):
        conv = Conversation()
        images = [image_for(case["image"], case["where"])] if case.get("image") else []
        conv.add_user(case["text"], images)
        chosen, raw = agent.first_action(conv)
        if chosen == "vqa" and main_vqa:
            chosen = "direct"
        rows.append({"text": case["text"], "expected": case["expected"], "chosen": chosen,
                     "reply": raw[:200]})
    return summarize(rows)


def summarize(rows: list[dict]) -> dict:
    confusion: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        confusion[r["expected"]][r["chosen"]] += 1
    per = {label: {"n": sum(c.values()),
                   "accuracy": sum(c[x] for x in label.split("|")) / sum(c.values())}
           for label, c in sorted(confusion.items())}
    right = sum(r["chosen"] in r["expected"].split("|") for r in rows)
    return {"n": len(rows), "accuracy": right / max(1, len(rows)), "by_expected": per,
            "confusion": {k: dict(v) for k, v in sorted(confusion.items())},
            "mistakes": [r for r in rows if r["chosen"] not in r["expected"].split("|")]}
