"""Decode speed of several configurations taking turns in one process:

    python -m bench turns --out bench/results/turns-cpu.json

`python -m bench` runs each configuration in its own process, one after the other, so on a
shared machine a busy minute lands on one row and not on the others. Here every configuration
is loaded at once and they answer in turn, round after round (each round starting with the
next one), so whatever slows the machine slows all of them alike: the ratios between them
hold even when the absolute figures do not. Only decoding is measured (memory would be the sum of all engines; see `python -m bench` for
memory, time to first token and concurrent streams).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import date
from pathlib import Path

from bench.generation import ROWS, _answer, _conversation, _forget, _picture
from bench.machine import describe

DEFAULT = {"cpu": ("plain fp32", "fast int8", "fast int4-mlp", "fast int4-mlp unfused"),
           "cuda": ("plain nf4", "fast int4 compiled")}
DEFINITIONS = {
    "decode_tok_s": "median over the rounds of (new tokens - 1) / time after the first token, "
                    "one stream, nothing cached between answers",
    "relative": "decode_tok_s divided by the first row's",
    "each_round": "every round's figure, in the order they were taken",
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench turns", description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--model", help="a checkpoint directory (default: the embedded default)")
    p.add_argument("--configs", help="comma-separated rows (default: "
                   + "; ".join(f"{d}: {', '.join(c)}" for d, c in DEFAULT.items()) + ")")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--out", help="JSON file to write")
    args = p.parse_args(argv)
    names = args.configs.split(",") if args.configs else list(DEFAULT[args.device])
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        p.error(f"unknown configs {unknown}; known: {', '.join(ROWS)}")

    import torch

    from assistant.config import Settings
    from assistant.engines import open_engine

    if args.threads:
        torch.set_num_threads(args.threads)
    engines = {}
    for name in names:
        print(f"loading {name} ...", file=sys.stderr, flush=True)
        overrides = dict(ROWS[name], model=args.model or "", device=args.device)
        engines[name] = open_engine(Settings(**overrides, max_new_tokens=args.new_tokens).engine)
    image = _picture()
    for engine in engines.values():  # warm up (and compile, where a row compiles)
        _answer(engine, _conversation(image), args.new_tokens)
    taken: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        print(f"round {round_ + 1} of {args.rounds}", file=sys.stderr, flush=True)
        shift = round_ % len(names)  # each round starts with the next one: no fixed order
        for name in names[shift:] + names[:shift]:
            _forget(engines[name])
            _, usage, _ = _answer(engines[name], _conversation(image), args.new_tokens)
            taken[name].append(round(usage.tokens_per_second, 1))
    first = statistics.median(taken[names[0]])
    rows = [{"config": name,
             "settings": dict(ROWS[name]),
             "decode_tok_s": round(statistics.median(taken[name]), 1),
             "relative": round(statistics.median(taken[name]) / first, 2),
             "each_round": taken[name]} for name in names]
    result = {
        "benchmark": "generation, configurations taking turns", "date": date.today().isoformat(),
        "command": "python -m bench turns " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": describe(), "device": args.device,
        "model": args.model or "embedded default (EfficientNet-Lite0 + SmolLM2-135M)",
        "new_tokens": args.new_tokens, "rounds": args.rounds,
        "torch_threads": torch.get_num_threads(), "definitions": DEFINITIONS, "rows": rows,
    }
    print(table(result))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def table(result: dict) -> str:
    lines = [f"| config | decode tok/s (median of {result['rounds']}) | relative | each round |",
             "|---|---|---|---|"]
    lines += [f"| {r['config']} | {r['decode_tok_s']} | {r['relative']:.2f} | "
              f"{' '.join(map(str, r['each_round']))} |" for r in result["rows"]]
    return "\n".join(lines)
