"""`python -m bench soak` end to end on a small soak: API sessions and a browser session at
once, every turn answered, every colour answer its own picture's, every UI message saved."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


def test_the_soak_bench_answers_every_turn_and_saves_every_message(tmp_path):
    out = tmp_path / "soak.json"
    done = subprocess.run([sys.executable, "-m", "bench", "soak", "--sessions", "2",
                           "--turns", "3", "--ui-sessions", "1", "--ui-turns", "2",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    api, ui = report["api"], report["ui"]
    assert api["sent"] == api["answered"] == 6 and api["errors"] == api["lost"] == 0
    assert api["colour_answers"] == api["own_colour"] == 4
    assert api["another_sessions_colour"] == 0
    assert ui["sent"] == ui["answered"] == 2 and ui["errors"] == ui["lost"] == 0
    assert ui["messages_saved"] == ui["messages_expected"] == 4
    assert 0 < report["latency_s"]["p50"] <= report["latency_s"]["p95"]
