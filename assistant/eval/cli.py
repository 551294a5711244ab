"""Evaluation from the command line:

    python -m assistant.eval vqa --dataset easy-vqa --split test [--limit N] [--model DIR] --json
    python -m assistant.eval routing [--dataset dev|heldout|FILE] [--model DIR] --json
    python -m assistant.eval scenarios [--dataset dev|heldout|FILE] [--model DIR] --json
    python -m assistant.eval documents [--dataset dev|heldout|FILE] [--model DIR] [--limit N]
                                       [--show-failures] --json
    python -m assistant.eval calls [--dataset dev|heldout|FILE] [--agent-rules off|hints] --json

Each measures the model the other flags name (the embedded default without --model): vqa.py
(exact-match answers), routing.py (the agent's first action), scenarios.py (scripted chats),
documents.py (questions about drawn documents: photos, PDFs, scans), calls.py (whether a
capable model's valid call runs, whatever the request's language). The failures of the
documents evaluation are shown for the dev set, or another set with --show-failures; for the
held-out set only the figures, so nobody tunes on its sentences.
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
    documents = sub.add_parser("documents", help="questions about documents: photos of "
                               "receipts and menus, PDFs, scans")
    documents.add_argument("--dataset", default="dev",
                           help="dev, heldout or a JSONL file of documents (default: dev)")
    documents.add_argument("--limit", type=int, default=None,
                           help="ask only the first N questions (default: all)")
    documents.add_argument("--show-failures", action="store_true",
                           help="list the questions answered wrongly (always for dev)")
    documents.add_argument("--json", action="store_true", help="print the result as JSON")
    add_arguments(documents)
    add_tool_arguments(documents)
    calls = sub.add_parser("calls", help="does a capable model's valid call run, in any "
                           "language")
    calls.add_argument("--dataset", default="heldout",
                       help="dev, heldout or a JSONL file of requests (default: heldout)")
    calls.add_argument("--json", action="store_true", help="print the result as JSON")
    add_arguments(calls)
    add_tool_arguments(calls)
    return p


def calls(args) -> dict:
    from functools import cache

    from assistant.engines import open_engine
    from assistant.eval.calls import evaluate, load
    from tools.registry import build

    lines = load(args.dataset)
    settings = from_args(args)
    rules = "off" if settings.agent.agent_rules == "auto" else settings.agent.agent_rules
    engine = cache(lambda: open_engine(settings.engine))  # only a tool of the chat model's
    return {"dataset": args.dataset,
            **evaluate(build(settings.tools, engine=engine), lines, rules,
                       progress=not args.json)}


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


def documents(args) -> dict:
    from assistant.eval.documents import evaluate, load

    docs = load(args.dataset)
    settings = from_args(args)
    engine, agent = _agent(args)
    show = args.show_failures or args.dataset == "dev"
    return {"dataset": args.dataset, "model": engine.name,
            **evaluate(agent, docs, settings.limits, args.limit, progress=not args.json,
                       show_failures=show)}


def print_documents(result: dict) -> None:
    print(f"{result['model']}: {result['right']} of {result['n']} document questions right "
          f"({result['accuracy']:.1%}), {result['seconds_per_question']:.1f} s a question")
    for title, key in (("question", "by_question_kind"), ("document", "by_document_kind")):
        for kind, r in result[key].items():
            print(f"  {title} {kind:11} {r['accuracy']:.1%} ({r['n']})")
    tools = ", ".join(f"{t} {n}" for t, n in result["tools"].items()) or "none"
    print(f"  tools: {tools}; no tool on {result['questions_without_tools']}")
    for s in result["skipped"]:
        print(f"  skipped {s['questions']}: {s['reason']}")
    for f in result.get("failures", []):
        print(f"  {f['id']} ({f['why']}): {f['answer'][:160]!r}")


def print_calls(result: dict) -> None:
    print(f"rules {result['rules']}: {result['ran']} of {result['n']} calls ran "
          f"({result['accuracy']:.1%})")
    for lang, r in result["by_language"].items():
        print(f"  {lang:4} {r['ran']} of {r['n']}")
    for r in result["not_run"]:
        print(f"  not run ({r['lang']}, {r['tool']}): {r['why']}")


def print_routing(result: dict) -> None:
    print(f"{result['model']}: routing accuracy {result['accuracy']:.1%} on {result['n']}")
    for label, r in result["by_expected"].items():
        print(f"  {label:15} {r['accuracy']:.1%} ({r['n']}): {result['confusion'][label]}")


def print_scenarios(result: dict) -> None:
    print(f"{result['model']}: {result['turns_right']} of {result['turns']} turns right "
          f"({result['turn_accuracy']:.1%}), {result['scenarios_right']} of "
          f"{result['scenarios']} scenarios wholly right")
    for m in result["mistakes"]:
        print(f"  {m['scenario']} turn {m['turn']}: {'; '.join(m['wrong'])}")


# task -> (what measures it, how its result is printed without --json)
TASKS = {"documents": (documents, print_documents), "calls": (calls, print_calls),
         "routing": (routing, print_routing), "scenarios": (scenarios, print_scenarios)}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from assistant.engines import open_engine

    if args.task in TASKS:
        measure, show = TASKS[args.task]
        try:
            result = measure(args)
        except AssistantError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps(result, indent=2, ensure_ascii=False))
        else:
            show(result)
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

