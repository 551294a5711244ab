"""`python -m bench load` end to end on a small load: it starts the app, every request is
answered with its own answer, and the report has its latency figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


def test_the_load_bench_reports_latency_and_no_lost_or_crossed_answers(tmp_path):
    out = tmp_path / "load.json"
    done = subprocess.run([sys.executable, "-m", "bench", "load", "--clients", "2",
                           "--requests", "2", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["sent"] == report["answered"] == report["own_answer"] == 4
    assert report["errors"] == report["lost"] == report["cross_talk"] == 0
    assert len(set(report["answers_alone"].values())) == 4  # distinct: cross-talk would show
    assert 0 < report["latency_s"]["p50"] <= report["latency_s"]["p95"] <= report["latency_s"]["max"]
