"""A real ``-m`` sweep on the real offline MiniLM: every job leaves an ok record, sizes and
quality are measured, not copied; a compression with a real effect (50% of heads and FFN
neurons cut) is flagged significant, a different model with no real effect (bf16, which
changes a few answers either way) is not; the untouched model (prune=0, fp32) gets an interval
with width around 0 and the report labels it the baseline; the report finds the factor that
matters. One sweep serves all of it: the fine-tuned baseline (1,000 held-out items, training
capped at step 100, accuracy ~0.78: learned, and half the cost of the demo's) is trained once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.sweep_server import SweepServer

pytestmark = pytest.mark.slow

LEVELS = {(prune, quant) for prune in (0.0, 0.5) for quant in ("fp32", "int8", "bf16")}


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory, sweep_server: SweepServer) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    command = [
        "-m", "prune=0,0.5", "prune_method=heads_neurons", "quant=fp32,int8,bf16",
        "bench.warmup=1", "bench.repeats=5", "bench.cold_load=false", "keep_artifact=false",
        "task.eval_size=1000", "task.finetune.max_steps=100",
        f"hydra.sweep.dir={root}",
    ]  # fmt: skip
    sweep_server.run(command, timeout=1500, check=True)
    return root


@pytest.fixture(scope="module")
def records(sweep_dir: Path) -> dict[tuple[float, str], dict]:
    records = [json.loads(p.read_text()) for p in sweep_dir.glob("*/metrics.json")]
    return {(r["factors"]["prune"], r["factors"]["quant"]): r for r in records}


def test_every_job_has_an_ok_record(sweep_dir: Path, records):
    assert set(records) == LEVELS
    assert [r["status"] for r in records.values()] == ["ok"] * len(LEVELS)
    for job in sweep_dir.glob("*/"):
        assert (job / ".hydra" / "overrides.yaml").exists()


def test_int8_is_smaller_on_disk_than_fp32(records):
    size = {levels: r["compressed"]["size"]["disk_bytes"] for levels, r in records.items()}
    # Linears and embedding tables int8, LayerNorms and biases fp32: a little over 0.25x
    assert size[(0.0, "int8")] < 0.3 * size[(0.0, "fp32")]
    # the cut heads and neurons are gone from the file; int8 values are still 4x smaller
    assert size[(0.5, "int8")] < size[(0.5, "fp32")] < size[(0.0, "fp32")]


def test_pruned_models_lose_the_requested_units(records):
    for (prune, _), record in records.items():
        pruning = record["compression"]["prune"]
        assert pruning["units_removed"] == pytest.approx(prune * pruning["units_total"], abs=12)
        assert (pruning["params_after"] < pruning["params_before"]) is (prune > 0)


def test_quality_is_measured_not_copied(records):
    for record in records.values():
        for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "agreement"):
            assert 0.0 <= record["compressed"]["quality"][key] <= 1.0
    untouched = records[(0.0, "fp32")]
    assert untouched["compressed"]["quality"]["agreement"] == 1.0
    assert untouched["compressed"]["quality"]["roc_auc"] == pytest.approx(
        untouched["baseline"]["quality"]["roc_auc"]
    )
    for levels in LEVELS - {(0.0, "fp32")}:
        quality = records[levels]["compressed"]["quality"]
        assert quality["roc_auc"] != records[levels]["baseline"]["quality"]["roc_auc"]


def test_a_real_effect_is_significant_and_no_effect_is_not(records):
    for quant in ("fp32", "int8", "bf16"):
        cut = records[(0.5, quant)]["ratios"]
        assert cut["tests"]["mcnemar"]["p_value"] < 0.05
        assert cut["intervals"]["accuracy_delta"]["high"] < 0
    null = records[(0.0, "bf16")]["ratios"]  # another model, no real effect
    assert null["tests"]["mcnemar"]["p_value"] > 0.05
    interval = null["intervals"]["accuracy_delta"]
    assert interval["low"] < 0 < interval["high"]


def test_the_untouched_model_has_an_interval_with_width(records):
    untouched = records[(0.0, "fp32")]["ratios"]
    assert untouched["tests"]["mcnemar"]["flips"] == 0
    interval = untouched["intervals"]["accuracy_delta"]
    assert interval["low"] < 0 < interval["high"]  # not [0, 0]


def test_the_report_flags_the_factor_that_matters(sweep_dir: Path):
    result = subprocess.run([sys.executable, "-m", "analysis", str(sweep_dir)],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = (sweep_dir / "analysis" / "report.md").read_text()
    assert "Holm" in report and "95%" in report
    assert "| prune=0, quant=fp32 |" in report and "the baseline: nothing changed" in report
    summary = result.stdout.splitlines()[0]
    assert "prune" in summary and "6 of 6 jobs succeeded" in summary
    assert "is prune=0, quant=fp32" not in summary  # the baseline is never recommended
