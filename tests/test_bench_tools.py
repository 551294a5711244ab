"""`python -m bench tools` end to end on two cheap offline tools (Pillow edits, Haar cascades):
each tool measured in its own process, the JSON written where asked, every figure a number and
the way each is measured stated beside them."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ("load_s", "first_call_s", "run_s_median", "run_s_min", "budget_estimate_mib",
           "rss_growth_on_load_mib")


def test_the_tools_bench_writes_load_run_and_memory_figures(tmp_path):
    out = tmp_path / "bench" / "tools.json"
    env = {**os.environ, "ASSISTANT_DEVICE": "cuda"}  # --device cpu must win over the settings
    child = subprocess.run(
        [sys.executable, "-m", "bench", "tools", "--only", "edit_image", "--only", "detect",
         "--runs", "2", "--threads", "1", "--device", "cpu", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    report = json.loads(out.read_text())
    assert report == json.loads(child.stdout)  # printed and written alike
    assert report["bench"] == "tools" and report["device"] == "cpu"
    assert report["machine"]["torch_threads"] == 1
    assert set(FIGURES) <= set(report["definitions"])
    assert "first_call_s - run_s_median" in report["definitions"]["load_s"]
    results = {r["tool"]: r for r in report["results"]}
    assert set(results) == {"edit_image", "detect"}, report["results"]
    for name, result in results.items():
        assert "error" not in result, result
        for key in FIGURES:
            value = result[key]
            assert isinstance(value, (int, float)) and math.isfinite(value) and value >= 0, \
                (name, key, value)
        assert result["runs"] == 2 and result["run_s_min"] <= result["run_s_median"]
        assert result["first_call_s"] > 0 and result["run_s_median"] > 0
        derived = max(0.0, result["first_call_s"] - result["run_s_median"])
        assert abs(result["load_s"] - derived) <= 2e-3, result  # as the definitions say
    assert results["detect"]["budget_estimate_mib"] > 0  # the cascades and their working memory
    assert results["edit_image"]["budget_estimate_mib"] == 0  # Pillow holds no weights
    assert results["edit_image"]["backend"] == "Pillow (offline)"
    assert "face" in results["detect"]["observation"]  # it ran on the astronaut

