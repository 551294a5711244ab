"""The word hints' phrase tables (tests/data/hint_phrases.jsonl): for each message, what the
English words of assistant/agent/words.py say it asks for. The tables are data so that a new
wording is a line, not a rule; the loop's use of them is tested in tests/test_agent_rules.py.
None of these sentences is a held-out one (tests/test_eval_sets.py checks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.agent import words as W
from assistant.agent.hints import Hints

PHRASES = [json.loads(line) for line in
           (Path(__file__).parent / "data" / "hint_phrases.jsonl").read_text(
               encoding="utf-8").splitlines() if line.strip()]


def said(row: dict):
    """What the rule of `row` says of its message, and what the table expects."""
    message, rule = row["message"], row["rule"]
    if rule == "edits_and_drawing":
        from tools.edit import NEEDS

        operations = [op for op in NEEDS if op != "instruct"]
        return ((sorted(W.edits(message, operations)), W.asks_to_draw(message)),
                (sorted(row["edits"]), row["draws"]))
    if rule == "asks_work_of":
        return W.asks_work_of(row["tool"], message), row["asks"]
    if rule == "settles":
        return Hints().settles("detect", message), row["settles"]
    expected = next(v for k, v in row.items() if k not in ("rule", "message"))
    return getattr(W, rule)(message), expected


@pytest.mark.parametrize("row", PHRASES, ids=lambda r: f"{r['rule']}:{r['message'][:40]}")
def test_the_words_say_what_a_message_asks_for(row):
    got, expected = said(row)
    assert got == expected


def test_every_rule_has_its_table():
    assert {r["rule"] for r in PHRASES} == {"edits_and_drawing", "only_draws", "about_text",
                                            "asks_where", "asks_work_of", "settles",
                                            "presents_only"}
