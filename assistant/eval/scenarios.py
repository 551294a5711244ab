"""Scenario evaluation: scripted chats of several turns, played through the whole agent (view,
grammar, tools, checks), each turn checked for what the assistant did first and what it said.

    python -m assistant.eval scenarios [--dataset dev|heldout|FILE] --json

A dataset is JSONL, one chat per line:

    {"id": "sign-after-cat", "turns": [
      {"user": "what animal is this?", "images": ["skimage:chelsea"], "action": "classify",
       "answer": "(?i)cat"},
      {"user": "and this sign?", "images": ["sign:GATE 12"], "action": "ocr", "image": "#2",
       "answer": "(?i)gate 12", "not": "(?i)cat"}]}

Per turn: `user` (the message), `images` (picture specs, as in routing.py, attached to the
message), `action` (the first action: a tool, "direct", or alternatives joined by "|"),
`image` (the handle the first call must name, if it calls one), `answer` / `not` (patterns
the final answer must / must not match, `re.search`). A turn is right when each check it has
holds; its answer, the results of its tools and any pictures they made stay in the chat for
the next turns, as in the app. A reading the chat already made is read again, not run again
(assistant/agent/loop.py): a turn answered that way took no tool, "direct".
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

from assistant.agent.trace import Final, Step, results
from assistant.conversation import Conversation
from assistant.eval.routing import image_for
from assistant.eval.sets import bad, records, resolve

FIELDS = {"user", "images", "action", "image", "answer", "not"}


def load(path: str | Path) -> list[dict]:
    """The scenarios of a file (or of a shipped set), each checked: a bad one raises BadData
    with its file and line."""
    path = resolve(path, "scenarios")
    out = []
    for number, scenario in records(path):
        turns = scenario.get("turns") if isinstance(scenario, dict) else None
        if not isinstance(turns, list) or not turns:
            raise bad(path, number, "a scenario needs a list of turns")
        for i, turn in enumerate(turns, 1):
            if not isinstance(turn, dict) or not {"user", "action"} <= set(turn):
                raise bad(path, number, f"turn {i} needs \"user\" and \"action\"")
            unknown = set(turn) - FIELDS
            if unknown:
                raise bad(path, number, f"turn {i} has unknown fields {sorted(unknown)}")
            for key in ("answer", "not"):
                if key in turn:
                    try:
                        re.compile(turn[key])
                    except re.error as e:
                        raise bad(path, number, f"turn {i}: bad {key} pattern ({e})") from None
        scenario.setdefault("id", f"{path.stem}:{number}")
        scenario["where"] = path.parent
        out.append(scenario)
    return out


def first_action(events: list, chat_model_vqa: bool) -> tuple[str, str | None]:
    """The first tool the turn called (or "direct"), and the image it named."""
    step = next((e for e in events if isinstance(e, Step) and e.status == "running"), None)
    if step is None:
        return "direct", None
    if step.tool == "vqa" and chat_model_vqa:  # asking the chat model is answering directly
        return "direct", None
    return step.tool, step.arguments.get("image")


def check(turn: dict, chosen: str, image: str | None, answer: str) -> list[str]:
    """What is wrong with a turn's outcome (nothing: it is right)."""
    wrong = []
    if chosen not in turn["action"].split("|"):
        wrong.append(f"first action {chosen}, expected {turn['action']}")
    if "image" in turn and chosen != "direct" and image != turn["image"]:
        wrong.append(f"image {image}, expected {turn['image']}")
    if "answer" in turn and not re.search(turn["answer"], answer):
        wrong.append(f"answer does not match {turn['answer']!r}")
    if "not" in turn and re.search(turn["not"], answer):
        wrong.append(f"answer matches {turn['not']!r}")
    return wrong


def play(agent, scenario: dict) -> list[dict]:
    """Run one scenario's turns through `agent`; a row per turn."""
    chat_model_vqa = getattr(agent.registry.tools.get("vqa"), "backend", "") == "the chat model"
    conv = Conversation()
    rows = []
    for i, turn in enumerate(scenario["turns"], 1):
        conv.add_user(turn["user"], [image_for(s, scenario["where"])
                                     for s in turn.get("images", [])])
        events = list(agent.run(conv))
        final = next((e for e in reversed(events) if isinstance(e, Final)), None)
        answer = final.text if final is not None else ""
        conv.add_assistant(answer, results(events))
        chosen, image = first_action(events, chat_model_vqa)
        wrong = check(turn, chosen, image, answer)
        rows.append({"scenario": scenario["id"], "turn": i, "user": turn["user"],
                     "expected": turn["action"], "chosen": chosen, "image": image,
                     "answer": answer[:300], "right": not wrong, "wrong": wrong})
    return rows


def evaluate(agent, scenarios: list[dict], progress: bool = True) -> dict:
    from tqdm import tqdm

    rows = []
    for scenario in tqdm(scenarios, desc="scenarios", disable=not progress):
        rows += play(agent, scenario)
    return summarize(rows)


def summarize(rows: list[dict]) -> dict:
    by_scenario: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        by_scenario[r["scenario"]].append(r["right"])
    per_action: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        per_action[r["expected"]]["n"] += 1
        per_action[r["expected"]]["right"] += r["right"]
    turns_right = sum(r["right"] for r in rows)
    whole = sum(all(v) for v in by_scenario.values())
    return {"turns": len(rows), "turns_right": turns_right,
            "turn_accuracy": turns_right / max(1, len(rows)),
            "scenarios": len(by_scenario), "scenarios_right": whole,
            "scenario_accuracy": whole / max(1, len(by_scenario)),
            "by_action": {k: {"n": c["n"], "accuracy": c["right"] / c["n"]}
                          for k, c in sorted(per_action.items())},
            "mistakes": [r for r in rows if not r["right"]]}
