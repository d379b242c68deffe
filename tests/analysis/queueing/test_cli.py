"""``python -m analysis.queueing`` on a run folder of small synthetic records."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from analysis.queueing.__main__ import main


def _speed(batch_size: int, samples_ms: list[float]) -> dict:
    return {"speed": {"batch_size": batch_size, "samples_ms": samples_ms}}


def _write_record(folder: Path, quant: str, batch_size: int, compressed_ms: list[float]) -> None:
    folder.mkdir(parents=True)
    record = {
        "status": "ok",
        "factors": {"model": "minilm", "prune": 0.0, "quant": quant, "batch_size": batch_size},
        "baseline": _speed(batch_size, [30.0 * batch_size, 34.0 * batch_size]),
        "compressed": _speed(batch_size, compressed_ms),
    }
    (folder / "metrics.json").write_text(json.dumps(record))


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    _write_record(tmp_path / "0", "fp32", 1, [30.0, 32.0, 35.0])
    _write_record(tmp_path / "1", "int8", 1, [10.0, 11.0, 13.0])
    _write_record(tmp_path / "2", "int8", 4, [20.0, 22.0])
    failed = tmp_path / "3"
    failed.mkdir()
    (failed / "metrics.json").write_text(json.dumps({"status": "failed", "error": "boom"}))
    return tmp_path


def test_each_job_gets_its_capacity_under_the_slo(run_dir, capsys):
    out = main([str(run_dir), "--slo-ms", "100", "--requests", "1000"])
    assert {p.name for p in out.iterdir()} == {
        "summary.csv", "summary.md", "curves.csv", "response_vs_load.png",
    }  # fmt: skip
    summary = pd.read_csv(out / "summary.csv").set_index("recipe")
    assert list(summary.index) == [
        "quant=fp32 batch=1", "quant=int8 batch=1", "quant=int8 batch=4",
        "baseline batch=1", "baseline batch=4",
    ]  # fmt: skip
    rates = summary["max_rate_per_s"]
    assert rates["quant=int8 batch=1"] > rates["quant=fp32 batch=1"]
    batched = summary.loc["quant=int8 batch=4"]
    assert batched["max_sequences_per_s"] == pytest.approx(4 * batched["max_rate_per_s"])
    assert (summary["max_rate_per_s"] < summary["capacity_per_s"]).all()
    assert "quant=int8 batch=4" in capsys.readouterr().out


def test_dynamic_batching_groups_a_recipes_batch_sizes(run_dir):
    out = main([str(run_dir), "--slo-ms", "100", "--max-batch", "4", "--max-wait-ms", "5",
                "--requests", "1000", "--out", str(run_dir / "batched")])  # fmt: skip
    summary = pd.read_csv(out / "summary.csv").set_index("recipe")
    assert list(summary.index) == ["quant=fp32", "quant=int8", "baseline"]
    assert summary.loc["quant=fp32", "max_batch"] == 1  # only batch 1 was measured
    assert summary.loc["quant=int8", "max_batch"] == 4
    # Batches of 4 in 21 ms carry more than single calls in 11 ms.
    assert summary.loc["quant=int8", "capacity_per_s"] > 1000 / 11.3
    assert pd.isna(summary.loc["quant=int8", "max_rate_pk_per_s"])


def test_a_folder_without_ok_records_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="status ok"):
        main([str(tmp_path), "--slo-ms", "100"])
