"""A report pairs one baseline with its recipes: sweeps over several baselines or evaluation sets
are refused in one line, whatever the records say it with."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis import AnalysisError
from analysis.cli import main
from analysis.results import Options, analyse
from tests.analysis.records import metrics, write_sweep


def _record(baseline_key: str = "minilm-sentiment-abc", fingerprint: str = "f00d") -> dict:
    record = metrics()
    record["pairing"] = {"baseline_key": baseline_key, "eval_fingerprint": fingerprint, "seed": 0}
    return record


def test_one_baseline_and_one_item_set_are_analysed(tmp_path: Path):
    sweep = write_sweep(tmp_path, [({"quant": q}, _record()) for q in ("fp32", "int8")])
    assert len(analyse(Options([sweep])).conclusions.table) == 2


def test_jobs_against_different_baselines_are_refused(tmp_path: Path):
    jobs = [({"model": m}, _record(f"{m}-sentiment-abc")) for m in ("minilm", "mpnet")]
    with pytest.raises(AnalysisError, match="2 different baselines .*analyse each separately"):
        analyse(Options([write_sweep(tmp_path, jobs)]))


def test_jobs_on_different_items_are_refused(tmp_path: Path):
    jobs = [({"quant": "fp32"}, _record(fingerprint="aaaa")),
            ({"quant": "int8"}, _record(fingerprint="bbbb"))]  # fmt: skip
    with pytest.raises(AnalysisError, match="2 different item sets .*aaaa, bbbb"):
        analyse(Options([write_sweep(tmp_path, jobs)]))


def test_older_records_over_several_models_or_tasks_are_refused(tmp_path: Path, capsys):
    jobs = [({"task": t, "quant": q}, metrics()) for t in ("sentiment", "topics")
            for q in ("fp32", "int8")]  # fmt: skip
    assert main([str(write_sweep(tmp_path, jobs))]) == 2
    error = capsys.readouterr().err
    assert "these jobs vary task (task=sentiment, topics)" in error
    assert len(error.strip().splitlines()) == 1
