"""The agent's evaluation sets and their scoring: the shipped sets load and have the sizes
the docs state, a bad set names its file and line, and a scripted agent is scored turn by
turn as the scenario says."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from assistant.agent.trace import Final, Step
from assistant.errors import AssistantError, BadData
from assistant.eval import routing, scenarios
from assistant.eval.cli import main


def test_shipped_sets_load_with_their_sizes():
    assert len(routing.load_cases("dev")) >= 60
    assert len(routing.load_cases("heldout")) >= 100
    dev, held = scenarios.load("dev"), scenarios.load("heldout")
    assert len(dev) >= 40 and len(held) >= 20
    assert all(1 <= len(s["turns"]) <= 6 for s in dev + held)


@pytest.mark.parametrize("line, reason", [
    ("{not json", "not JSON"),
    ('["a list"]', "a case must be a JSON object"),
    ('{"text": "hi"}', "missing expected"),
])
def test_a_bad_routing_case_names_its_file_and_line(tmp_path, line, reason):
    path = tmp_path / "cases.jsonl"
    path.write_text('{"text": "hello", "expected": "direct"}\n\n' + line + "\n")
    with pytest.raises(BadData) as caught:
        routing.load_cases(path)
    assert f"{path}, line 3: {reason}" in str(caught.value)
    assert "--skip-bad" not in str(caught.value)


@pytest.mark.parametrize("scenario, reason", [
    ({"turns": []}, "a scenario needs a list of turns"),
    ({"turns": [{"user": "hi"}]}, 'turn 1 needs "user" and "action"'),
    ({"turns": [{"user": "hi", "action": "direct", "anwser": "x"}]}, "unknown fields"),
    ({"turns": [{"user": "hi", "action": "direct", "answer": "(unclosed"}]}, "bad answer pattern"),
])
def test_a_bad_scenario_names_its_file_and_line(tmp_path, scenario, reason):
    path = tmp_path / "chats.jsonl"
    path.write_text(json.dumps(scenario) + "\n")
    with pytest.raises(BadData) as caught:
        scenarios.load(path)
    assert f"{path}, line 1: " in str(caught.value) and reason in str(caught.value)


def test_a_missing_set_is_a_clear_error_from_the_command_line(tmp_path, capsys):
    missing = tmp_path / "nowhere.jsonl"
    with pytest.raises(AssistantError, match="cannot be read"):
        scenarios.load(missing)
    assert main(["routing", "--dataset", str(missing)]) == 2
    assert f"error: {missing}: cannot be read" in capsys.readouterr().err


class ScriptedAgent:
    """Plays back, per message, the first tool it calls (or none) and its answer."""

    def __init__(self, script: dict[str, tuple[str | None, dict, str]]):
        self.script, self.seen = script, []
        self.registry = SimpleNamespace(tools={})

    def run(self, conv):
        self.seen.append([t.text for t in conv.turns])
        tool, arguments, answer = self.script[conv.turns[-1].text]
        if tool:
            yield Step(1, tool, arguments)
        yield Final(answer, steps=2 if tool else 1)


def test_scenarios_are_scored_turn_by_turn_with_the_answers_kept():
    chat = {"id": "sign", "where": ".", "turns": [
        {"user": "hi", "action": "direct", "answer": "(?i)hello"},
        {"user": "what does it say?", "images": ["sign:OPEN"], "action": "ocr", "image": "#1",
         "answer": "OPEN", "not": "(?i)closed"},
        {"user": "and the colour?", "action": "direct|vqa", "answer": "(?i)white"}]}
    agent = ScriptedAgent({"hi": (None, {}, "Hello!"),
                           "what does it say?": ("ocr", {"image": "#2"},
                                                 "It says OPEN, not CLOSED."),
                           "and the colour?": ("vqa", {"image": "#1"}, "White.")})
    result = scenarios.evaluate(agent, [chat], progress=False)
    assert [m["turn"] for m in result["mistakes"]] == [2]
    assert result["mistakes"][0]["wrong"] == ["image #2, expected #1",
                                              "answer matches '(?i)closed'"]
    assert (result["turns"], result["turns_right"], result["scenarios_right"]) == (3, 2, 0)
    # each turn saw the answers before it, as in the app
    assert agent.seen[2] == ["hi", "Hello!", "what does it say?", "It says OPEN, not CLOSED.",
                             "and the colour?"]


def test_a_turn_answered_without_a_call_is_not_held_to_the_calls_picture():
    """"read #1 again" answered from the chat's earlier reading: no call, so no picture to
    check; a call to the wrong one still is wrong."""
    turn = {"user": "read #1 again", "action": "ocr|direct", "image": "#1", "answer": "EXIT"}
    assert scenarios.check(turn, "direct", None, "It says EXIT.") == []
    assert scenarios.check(turn, "ocr", "#2", "It says EXIT.") == ["image #2, expected #1"]


def test_routing_counts_alternatives_and_reports_the_confusion():
    rows = [{"text": "a", "expected": "ocr", "chosen": "ocr"},
            {"text": "b", "expected": "ocr", "chosen": "detect"},
            {"text": "c", "expected": "direct|vqa", "chosen": "vqa"}]
    result = routing.summarize(rows)
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert result["confusion"]["ocr"] == {"ocr": 1, "detect": 1}
    assert [m["text"] for m in result["mistakes"]] == ["b"]


def _sentences(path) -> list[str]:
    """The user's sentences of a held-out set: its cases' texts, scenarios' turns, and the
    questions of its documents."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        out += [item["text"]] if "text" in item else []
        out += [t["user"] for t in item.get("turns", [])]
        out += [q["q"] if isinstance(q, dict) else q for q in item.get("questions", [])
                if isinstance(q, (dict, str))]
    return [s for s in out if isinstance(s, str) and len(s.split()) >= 4]


def test_no_held_out_sentence_stands_anywhere_else_in_the_repository():
    """A held-out set measures a new person's wording only while none of its sentences has
    been written into the code, the tests, the docs or a dev set."""
    import subprocess

    from assistant.eval.sets import DATA

    held = [DATA / f"{task}_heldout.jsonl" for task in ("routing", "scenarios", "calls",
                                                          "documents")]
    root = DATA.parents[2]
    tracked = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    texts = {}
    for name in tracked.stdout.split():
        path = root / name
        if path.suffix in (".py", ".md", ".jsonl", ".jinja", ".json", ".txt", ".toml") and \
                path not in held and path.is_file():
            texts[name] = " ".join(path.read_text(encoding="utf-8", errors="replace")
                                   .lower().split())
    found = [f"{s!r} in {name}" for h in held for s in _sentences(h)
             for name, text in texts.items() if " ".join(s.lower().split()) in text]
    assert not found, "\n".join(found)
