"""`python -m bench` (generation speed) end to end on a tiny checkpoint: each row in its own
process, the plain path beside the fast one, every figure a number, the table printed and the
JSON written with how each figure is measured."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from bench.generation import CONFIGS, DEFINITIONS, held_mib, table

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent


def test_the_generation_bench_measures_plain_and_fast_rows(tiny_dirs, tmp_path):
    out = tmp_path / "generation.json"
    child = subprocess.run(
        [sys.executable, "-m", "bench", "--device", "cpu", "--model", tiny_dirs["llava"],
         "--configs", "plain fp32,fast fp32", "--new-tokens", "6", "--runs", "1",
         "--streams", "1,3", "--threads", "1", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and report["definitions"] == DEFINITIONS
    assert [r["config"] for r in report["rows"]] == ["plain fp32", "fast fp32"]
    for row in report["rows"]:
        assert row["settings"] == {k: v for k, v in CONFIGS["cpu"][row["config"]].items()}
        for name in ("ttft_s", "decode_tok_s", "followup_ttft_s", "peak_mib"):
            assert math.isfinite(row[name]) and row[name] > 0, name
        assert set(row["aggregate_tok_s"]) == {"1", "3"}
        assert row["torch_threads"] == 1 and row["image_tokens"] > 0
    assert table(report) in child.stdout


def test_a_row_that_fails_is_reported_not_hidden(tmp_path):
    out = tmp_path / "generation.json"
    child = subprocess.run(
        [sys.executable, "-m", "bench", "--device", "cpu", "--model", str(tmp_path / "none"),
         "--configs", "plain fp32", "--new-tokens", "2", "--runs", "1", "--streams", "1",
         "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert child.returncode == 1
    row = json.loads(out.read_text())["rows"][0]
    assert "error" in row and "none" in row["error"]
    assert "error:" in child.stdout


def test_a_random_checkpoint_of_a_real_shape_is_built_and_benched(tmp_path):
    """What `--device cuda` does with LLaVA-1.5-7B's shape, at the small shape on a CPU."""
    out = tmp_path / "generation.json"
    child = subprocess.run(
        [sys.executable, "-m", "bench", "--device", "cpu", "--shape", "llava-small",
         "--configs", "fast fp32", "--new-tokens", "4", "--runs", "1", "--streams", "2",
         "--threads", "1", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr
    report = json.loads(out.read_text())
    assert report["model"] == "llava-small shape, random weights"
    row = report["rows"][0]
    assert row["image_tokens"] == 16 and row["decode_tok_s"] > 0


def test_configurations_take_turns_in_one_process(tiny_dirs, tmp_path):
    from bench.turns import DEFINITIONS as TURNS
    from bench.turns import table as turns_table

    out = tmp_path / "turns.json"
    child = subprocess.run(
        [sys.executable, "-m", "bench", "turns", "--model", tiny_dirs["llava"],
         "--configs", "plain fp32,fast int4-mlp", "--rounds", "2", "--new-tokens", "5",
         "--threads", "1", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr
    report = json.loads(out.read_text())
    assert report["definitions"] == TURNS and report["rounds"] == 2
    assert [r["config"] for r in report["rows"]] == ["plain fp32", "fast int4-mlp"]
    assert report["rows"][0]["relative"] == 1.0
    for row in report["rows"]:
        assert len(row["each_round"]) == 2 and all(x > 0 for x in row["each_round"])
        assert row["decode_tok_s"] == round(statistics.median(row["each_round"]), 1)
    assert turns_table(report) in child.stdout
    bad = subprocess.run([sys.executable, "-m", "bench", "turns", "--configs", "fast int9"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown configs ['fast int9']" in bad.stderr


def test_the_compiled_loop_row_compiles_in_its_warm_up(tmp_path):
    """The GPU's headline row, at the small shape on a CPU (inductor, no CUDA graphs): the
    loop takes the answers, and the warm-up compiles what the measured ones need (a graph for
    one row, one for batches, one for a follow-up's prompt; no graph breaks). A row answering one at a time measures
    only the stream counts given for such rows."""
    out = tmp_path / "generation.json"
    child = subprocess.run(
        [sys.executable, "-m", "bench", "--device", "cpu", "--shape", "llava-small",
         "--configs", "plain fp32,fast fp32 compiled", "--new-tokens", "6", "--runs", "1",
         "--streams", "1,3", "--plain-streams", "1", "--threads", "1", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr
    plain, looped = json.loads(out.read_text())["rows"]
    assert set(plain["aggregate_tok_s"]) == {"1"} and plain["looped_answers"] == 0
    assert set(looped["aggregate_tok_s"]) == {"1", "3"}
    assert looped["looped_answers"] >= 8
    assert looped["compile"]["graphs"] == 3 and looped["compile"]["graph_breaks"] == 0
    assert looped["peak_streams_mib"] >= looped["peak_mib"] > 0
    assert looped["weights_mib"] > 0 and looped["kv_mib"] > 0 and plain["kv_mib"] == 0
    assert "| - |" in child.stdout  # the plain row's 3-stream cell


def test_a_row_past_its_time_is_stopped_and_keeps_its_one_stream_figures(tiny_dirs, tmp_path):
    """400 concurrent streams answered one at a time take far longer than the row may: the
    row is stopped, says so, and keeps what it had measured before the streams."""
    out = tmp_path / "generation.json"
    child = subprocess.run(
        [sys.executable, "-m", "bench", "--device", "cpu", "--model", tiny_dirs["llava"],
         "--configs", "plain fp32", "--new-tokens", "100", "--runs", "1", "--streams", "1,400",
         "--threads", "1", "--row-timeout", "20", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert child.returncode == 1
    row = json.loads(out.read_text())["rows"][0]
    assert row["error"] == "timed out after 20 s"
    assert row["decode_tok_s"] > 0 and row["ttft_s"] > 0 and "aggregate_tok_s" not in row


def test_a_kept_answer_viewing_the_loops_buffers_is_not_counted_twice(engines, red,
                                                                      monkeypatch):
    from assistant.config import Settings
    from assistant.engine import Engine, decode
    from tests.engine_calls import asking

    monkeypatch.setattr(decode, "_compile", lambda step, mode: step)
    engine = Engine(engines("llava").loaded, Settings(compile=True, prefix_cache=4,
                                                      image_cache=0, batch=1).engine)
    engine.answer(asking(red), engine.default_params(max_new_tokens=4))
    buffers = [b for pair in engine.kv.arena.buffers for b in pair]
    held = held_mib(engine)
    assert len(engine.kv.prefixes) == 1
    assert held["kv_mib"] == round(sum(b.untyped_storage().nbytes() for b in buffers) / 2**20, 1)
    weights = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
               for t in engine.loaded.model.state_dict().values()}
    saved = sum(weights.values()) / 2**20  # the state dict: all but unsaved buffers
    assert saved - 0.1 <= held["weights_mib"] <= saved + 1
