"""A real ``-m`` sweep on the real offline model (the fine-tuned MiniLM baseline is cached;
1,000 held-out items, as in test_significance, which shares it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    command = [
        sys.executable, "-m", "compress.main", "-m",
        "prune=0,0.5", "quant=fp32,int8",
        "bench.warmup=2", "bench.repeats=8", "task.eval_size=1000",
        f"hydra.sweep.dir={root}",
    ]  # fmt: skip
    subprocess.run(command, check=True, timeout=1500)
    return root


def _records(sweep_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/metrics.json"))]


def test_every_job_has_an_ok_record(sweep_dir: Path):
    records = _records(sweep_dir)
    assert len(records) == 4
    assert [r["status"] for r in records] == ["ok"] * 4
    levels = {(r["factors"]["prune"], r["factors"]["quant"]) for r in records}
    assert levels == {(0.0, "fp32"), (0.0, "int8"), (0.5, "fp32"), (0.5, "int8")}
    for job in sweep_dir.glob("*/"):
        assert (job / ".hydra" / "overrides.yaml").exists()


def test_int8_is_smaller_on_disk_than_fp32(sweep_dir: Path):
    size = {
        (r["factors"]["prune"], r["factors"]["quant"]): r["compressed"]["size"]["disk_bytes"]
        for r in _records(sweep_dir)
    }
    # Linears and embedding tables int8, LayerNorms and biases fp32: a little over 0.25x
    assert size[(0.0, "int8")] < 0.3 * size[(0.0, "fp32")]
    # pruned, both store their zeros as bitmask + values; int8 values are still 4x smaller
    assert size[(0.5, "int8")] < size[(0.5, "fp32")] < size[(0.0, "fp32")]


def test_pruned_models_have_the_requested_zero_fraction(sweep_dir: Path):
    for record in _records(sweep_dir):
        pruning = record["compression"]["prune"]
        assert pruning["zero_fraction"] == pytest.approx(record["factors"]["prune"], abs=1e-6)


def test_quality_is_measured_not_copied(sweep_dir: Path):
    records = {(r["factors"]["prune"], r["factors"]["quant"]): r for r in _records(sweep_dir)}
    for record in records.values():
        for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "agreement"):
            assert 0.0 <= record["compressed"]["quality"][key] <= 1.0
    untouched = records[(0.0, "fp32")]
    assert untouched["compressed"]["quality"]["agreement"] == 1.0
    assert untouched["compressed"]["quality"]["roc_auc"] == pytest.approx(
        untouched["baseline"]["quality"]["roc_auc"]
    )
    for levels in ((0.0, "int8"), (0.5, "fp32"), (0.5, "int8")):
        quality = records[levels]["compressed"]["quality"]
        assert quality["roc_auc"] != records[levels]["baseline"]["quality"]["roc_auc"]
