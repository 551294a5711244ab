"""Visual question answering, scored the VQA way: the model's generated answer (greedy, through
the chat template, as in the chat) must equal the reference after normalisation (lower case,
no punctuation or articles). Prints overall accuracy and accuracy per question type.

    python -m assistant.eval vqa --dataset easy-vqa --split test [--limit N] [--model DIR] --json

Without --model it evaluates the embedded default.
"""

from __future__ import annotations

import inspect
import random
import re
import string
import time

import torch
from tqdm import tqdm

from assistant.conversation import Conversation
from assistant.train.data import Sample

ARTICLES = {"a", "an", "the"}
_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")


def normalize(text: str) -> str:
    words = _PUNCT.sub(" ", text.lower()).split()
    return " ".join(w for w in words if w not in ARTICLES)


def answer_batch(engine, batch: list[Sample], max_new_tokens: int = 8) -> list[str]:
    """Greedy answers to one question each about its image, in one padded generate call;
    each distinct picture is encoded once when the model takes precomputed image embeds."""
    loaded, builder = engine.loaded, engine.prompt
    images, texts = [], []
    for sample in batch:
        conv = Conversation()
        conv.add_user(sample.turns[0][1], [sample.load()])
        messages, picture = builder.messages(conv.turns, conv)
        texts.append(builder.render(messages))
        images += picture
    tokenizer = builder.tokenizer
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        inputs = loaded.processor(images=images, text=texts, return_tensors="pt", padding=True,
                                  add_special_tokens=builder.adds_special_tokens(texts[0]))
    finally:
        tokenizer.padding_side = side
    model = loaded.model
    if "image_embeds" in inspect.signature(model.forward).parameters:
        keys = [s.image_key for s in batch]
        order = list(dict.fromkeys(keys))  # each distinct picture once
        pixels = inputs.pop("pixel_values")[[keys.index(k) for k in order]]
        with torch.no_grad():
            embeds = model.get_image_features(pixels.to(loaded.device))
        inputs["image_embeds"] = embeds[[order.index(k) for k in keys]]
    inputs = {k: v.to(loaded.device) for k, v in inputs.items()}
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    new = out[:, inputs["input_ids"].shape[1]:]
    return [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]


def evaluate(engine, samples: list[Sample], batch_size: int = 32, progress: bool = True,
             ) -> dict:
    correct: dict[str, int] = {}
    total: dict[str, int] = {}
    wrong: list[dict] = []
    started = time.monotonic()
    bar = tqdm(total=len(samples), desc="Answering", unit="q", disable=not progress)
    for start in range(0, len(samples), batch_size):
        batch = samples[start:start + batch_size]
        for sample, answer in zip(batch, answer_batch(engine, batch), strict=True):
            reference = sample.turns[1][1]
            ok = normalize(answer) == normalize(reference)
            total[sample.kind] = total.get(sample.kind, 0) + 1
            correct[sample.kind] = correct.get(sample.kind, 0) + ok
            if not ok and len(wrong) < 10:
                wrong.append({"question": sample.turns[0][1], "answer": answer,
                              "reference": reference})
        bar.update(len(batch))
    bar.close()
    n = sum(total.values())
    return {
        "model": engine.name,
        "n": n,
        "accuracy": round(sum(correct.values()) / n, 4) if n else 0.0,
        "by_type": {k: {"n": total[k], "accuracy": round(correct[k] / total[k], 4)}
                    for k in sorted(total)},
        "seconds": round(time.monotonic() - started, 1),
        "wrong_examples": wrong,
    }


def select(samples: list[Sample], limit: int | None, seed: int = 0) -> list[Sample]:
    """All samples, or `limit` of them drawn at random (fixed seed), kept grouped by image
    so that each picture is encoded once per batch."""
    if limit is not None and limit < len(samples):
        samples = random.Random(seed).sample(samples, limit)
    return sorted(samples, key=lambda s: s.image_key)
