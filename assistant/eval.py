"""`python -m assistant.eval vqa --dataset easy-vqa --split test [--limit N] [--model DIR] --json`
`python -m assistant.eval routing [--dataset dev|heldout|FILE] [--model DIR] --json`
(see agent/routing.py)
`python -m assistant.eval scenarios [--dataset dev|heldout|FILE] [--model DIR] --json`
(see agent/scenarios.py)

Visual question answering, scored the VQA way: the model's generated answer (greedy, through
the chat template, as in the chat) must equal the reference after normalisation (lower case,
no punctuation or articles). Prints overall accuracy and accuracy per question type.
Without --model it evaluates the embedded default.
"""

from __future__ import annotations

import argparse
import inspect
import json
import random
import re
import string
import sys
import time

import torch
from tqdm import tqdm

from assistant.config import Settings, add_arguments, add_tool_arguments, from_args
from assistant.conversation import Conversation
from assistant.errors import AssistantError
from assistant.train.data import Sample, easy_vqa

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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m assistant.eval", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="task", required=True)
    vqa = sub.add_parser("vqa", help="visual question answering accuracy")
    vqa.add_argument("--dataset", choices=["easy-vqa"], default="easy-vqa")
    vqa.add_argument("--split", choices=["train", "test"], default="test")
    vqa.add_argument("--limit", type=int, default=None, help="questions to draw (default: all)")
    vqa.add_argument("--batch-size", type=int, default=32)
    vqa.add_argument("--json", action="store_true", help="print the result as JSON")
    add_arguments(vqa)
    routing = sub.add_parser("routing", help="does the agent pick the right tool first")
    routing.add_argument("--dataset", default="dev",
                         help="dev, heldout or a JSONL file of cases (default: dev)")
    routing.add_argument("--json", action="store_true", help="print the result as JSON")
    add_arguments(routing)
    add_tool_arguments(routing)
    scenarios = sub.add_parser("scenarios", help="scripted chats: every turn's first action "
                               "and answer")
    scenarios.add_argument("--dataset", default="dev",
                           help="dev, heldout or a JSONL file of scenarios (default: dev)")
    scenarios.add_argument("--json", action="store_true", help="print the result as JSON")
    add_arguments(scenarios)
    add_tool_arguments(scenarios)
    return p


def _agent(args):
    from assistant.agent import for_settings
    from assistant.engine import Engine
    from tools.registry import build

    settings = from_args(args)
    engine = Engine.load(settings)
    return engine, for_settings(engine, build(settings, engine=lambda: engine), settings)


def routing(args) -> dict:
    from assistant.agent.routing import evaluate, load_cases

    cases = load_cases(args.dataset)
    engine, agent = _agent(args)
    return {"dataset": args.dataset, "model": engine.name,
            **evaluate(agent, cases, progress=not args.json)}


def scenarios(args) -> dict:
    from assistant.agent.scenarios import evaluate, load

    cases = load(args.dataset)
    engine, agent = _agent(args)
    return {"dataset": args.dataset, "model": engine.name,
            **evaluate(agent, cases, progress=not args.json)}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from assistant.engine import Engine

    if args.task in ("routing", "scenarios"):
        try:
            result = (routing if args.task == "routing" else scenarios)(args)
        except (AssistantError, ValueError, OSError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps(result, indent=2))
        elif args.task == "routing":
            print(f"{result['model']}: routing accuracy {result['accuracy']:.1%} on {result['n']}")
            for label, r in result["by_expected"].items():
                print(f"  {label:15} {r['accuracy']:.1%} ({r['n']}): {result['confusion'][label]}")
        else:
            print(f"{result['model']}: {result['turns_right']} of {result['turns']} turns right "
                  f"({result['turn_accuracy']:.1%}), {result['scenarios_right']} of "
                  f"{result['scenarios']} scenarios wholly right")
            for m in result["mistakes"]:
                print(f"  {m['scenario']} turn {m['turn']}: {'; '.join(m['wrong'])}")
        return 0
    try:
        settings: Settings = from_args(args)
        engine = Engine.load(settings)
        samples = select(easy_vqa(args.split).samples, args.limit)
        result = {"dataset": args.dataset, "split": args.split,
                  **evaluate(engine, samples, args.batch_size, progress=not args.json)}
    except (AssistantError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['model']}: accuracy {result['accuracy']:.1%} on {result['n']} questions")
        for kind, r in result["by_type"].items():
            print(f"  {kind:8} {r['accuracy']:.1%} ({r['n']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
