"""Evaluation from the command line:

    python -m assistant.eval vqa --dataset easy-vqa --split test [--limit N] [--model DIR] --json
    python -m assistant.eval routing [--dataset dev|heldout|FILE] [--model DIR] --json
    python -m assistant.eval scenarios [--dataset dev|heldout|FILE] [--model DIR] --json

Each measures the model the other flags name (the embedded default without --model): vqa.py
(exact-match answers), routing.py (the agent's first action), scenarios.py (scripted chats).
"""

from __future__ import annotations

import argparse
import json
import sys

from assistant.config import Settings, add_arguments, add_tool_arguments, from_args
from assistant.errors import AssistantError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m assistant.eval",
                                description="Measure a model: VQA, agent routing, scripted chats.")
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
    from assistant.engines import open_engine
    from tools.registry import build

    settings = from_args(args)
    engine = open_engine(settings.engine)
    return engine, for_settings(engine, build(settings.tools, engine=lambda: engine),
                                settings.agent, settings.generation)


def routing(args) -> dict:
    from assistant.eval.routing import evaluate, load_cases

    cases = load_cases(args.dataset)
    engine, agent = _agent(args)
    return {"dataset": args.dataset, "model": engine.name,
            **evaluate(agent, cases, progress=not args.json)}


def scenarios(args) -> dict:
    from assistant.eval.scenarios import evaluate, load

    cases = load(args.dataset)
    engine, agent = _agent(args)
    return {"dataset": args.dataset, "model": engine.name,
            **evaluate(agent, cases, progress=not args.json)}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from assistant.engines import open_engine

    if args.task in ("routing", "scenarios"):
        try:
            result = (routing if args.task == "routing" else scenarios)(args)
        except AssistantError as e:
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
    from assistant.eval.vqa import evaluate, select
    from assistant.train.data import easy_vqa

    try:
        settings: Settings = from_args(args)
        engine = open_engine(settings.engine)
        samples = select(easy_vqa(args.split).samples, args.limit)
        result = {"dataset": args.dataset, "split": args.split,
                  **evaluate(engine, samples, args.batch_size, progress=not args.json)}
    except AssistantError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['model']}: accuracy {result['accuracy']:.1%} on {result['n']} questions")
        for kind, r in result["by_type"].items():
            print(f"  {kind:8} {r['accuracy']:.1%} ({r['n']})")
    return 0

