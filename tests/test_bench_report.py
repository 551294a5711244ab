"""docs/performance.md's benchmark tables are generated from bench/results/*.json and kept in
step with them: a result changed without regenerating the document fails here."""

from __future__ import annotations

import json

import pytest

from bench import report


def test_the_document_holds_what_the_results_give():
    assert report.main(["--check"]) == 0, "run: python -m bench.report"


def test_a_result_becomes_a_table_under_its_command(tmp_path):
    (tmp_path / "turns-cpu.json").write_text(json.dumps({
        "command": "python -m bench turns --out x.json", "date": "2026-12-03",
        "machine": {"cpu": "Some CPU", "cores": 2, "torch": "2.13.0+cpu"},
        "model": "tiny", "rounds": 6,
        "rows": [{"config": "fast int4-mlp", "decode_tok_s": 32.0, "relative": 1.0},
                 {"config": "plain fp32", "decode_tok_s": 17.7, "relative": 0.55}]}))
    section = report.render(tmp_path)
    assert "`python -m bench turns --out x.json`, 2026-12-03; Some CPU, 2 cores" in section
    assert "| plain fp32 | 17.7 | 0.55 |" in section
    doc = "# Performance\n\nintro\n\n" + section + "\n\nafter\n"
    (tmp_path / "turns-cpu.json").write_text(json.dumps({
        "command": "again", "machine": {}, "rows": [{"config": "c", "decode_tok_s": 1}]}))
    again = report.updated(doc, report.render(tmp_path))
    assert again.startswith("# Performance\n\nintro\n\n") and again.endswith("\n\nafter\n")
    assert "| c | 1 | - |" in again and "17.7" not in again


def test_a_result_of_an_unknown_kind_is_named(tmp_path):
    (tmp_path / "mystery-cpu.json").write_text("{}")
    with pytest.raises(SystemExit, match="mystery-cpu.json: no table for a 'mystery' result"):
        report.render(tmp_path)
