"""Calls evaluation: does the loop run the valid call a capable model makes, whatever the
request's language?

    python -m assistant.eval calls [--dataset dev|heldout|FILE] [--agent-rules off|hints] --json

A dataset is JSONL, one request per line: {"lang": CODE, "text": MESSAGE, "images": [SPECS]
(as in routing.py), "call": {"name": TOOL, "arguments": {...}}}: the call a capable model
makes for the request. A stand-in model makes exactly that call, then answers naming what
the call made; a line is right when the call ran as made (not refused, not failed). What is
measured is the loop between the model and the tools: with `--agent-rules off` (what `auto`
gives every model but the small default) a valid call must always run; with `hints` the
figure shows what the English word hints would take from a capable model.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

from assistant.agent.protocol import Call, write
from assistant.agent.trace import Final, Step
from assistant.conversation import Conversation
from assistant.engine.request import GenerationParams
from assistant.eval.routing import image_for
from assistant.eval.sets import bad, records, resolve

FIELDS = {"lang", "text", "images", "call"}


def load(path: str | Path = "heldout") -> list[dict]:
    path = resolve(path, "calls")
    out = []
    for number, line in records(path):
        if not isinstance(line, dict) or not FIELDS >= set(line) or "text" not in line or \
                not isinstance(line.get("call"), dict) or "name" not in line["call"]:
            raise bad(path, number, 'each line needs "text" and a "call" with a "name"; '
                      f"fields are {', '.join(sorted(FIELDS))}")
        out.append({**line, "where": path.parent})
    return out


class CallingModel:
    """A stand-in engine for a capable model: its first reply is `call`; after that it
    answers with the pictures the chat gained (what a model names after an edit)."""

    name = "a model making the dataset's call"
    agent_prompt = None

    def __init__(self, call: dict, images: int):
        self.call, self.images, self.replies = call, images, 0

    def default_params(self, **overrides) -> GenerationParams:
        return GenerationParams(**overrides)

    def stream(self, conversation: Conversation, params: GenerationParams):
        self.replies += 1
        if self.replies == 1:
            text = write(Call(self.call["name"], self.call.get("arguments", {})))
        else:
            made = [h for h in conversation.images if int(h[1:]) > self.images]
            text = " ".join(made) or "OK."
        return SimpleNamespace(stream=_Pieces([text]))


class _Pieces(list):
    def cancel(self) -> None:
        pass


def play(registry, line: dict, rules: str) -> dict:
    from assistant.agent import Agent

    conv = Conversation()
    specs = line.get("images", [])
    if specs:
        conv.add_user(line["text"], [image_for(s, line["where"]) for s in specs],
                      [f"{s.split(':')[0]}{i + 1}.png" for i, s in enumerate(specs)])
    else:
        conv.add_user(line["text"])
    engine = CallingModel(line["call"], len(specs))
    agent = Agent(engine, registry, guided=False, rules=rules)
    events = list(agent.run(conv))
    steps = [e for e in events if isinstance(e, Step) and e.status != "running"]
    final = next(e for e in reversed(events) if isinstance(e, Final))
    ran = bool(steps) and steps[0].tool == line["call"]["name"] and steps[0].status == "done"
    why = "" if ran else (steps[0].result.splitlines()[0] if steps else
                          f"no call ran; answered {final.text[:120]!r}")
    return {"lang": line.get("lang", ""), "tool": line["call"]["name"], "ran": ran,
            "why": why}


def evaluate(registry, lines: list[dict], rules: str = "off", progress: bool = True) -> dict:
    from tqdm import tqdm

    rows = [play(registry, line, rules) for line in tqdm(lines, disable=not progress)]
    by = defaultdict(list)
    for row in rows:
        by[row["lang"]].append(row["ran"])
    return {"rules": rules, "n": len(rows), "ran": sum(r["ran"] for r in rows),
            "accuracy": sum(r["ran"] for r in rows) / max(1, len(rows)),
            "by_language": {k: {"n": len(v), "ran": sum(v)} for k, v in sorted(by.items())},
            "not_run": [{"lang": r["lang"], "tool": r["tool"], "why": r["why"]}
                        for r in rows if not r["ran"]]}

