"""On the real MiniLM: a compression with a real effect (50% of heads and FFN neurons cut) is
flagged significant; a different model with no real effect (bf16, which changes a few answers
either way) is not; the untouched model (prune=0, fp32) gets an interval with width around 0
and the report labels it the baseline; the item-level model finds the factor that matters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("significance")
    command = [sys.executable, "-m", "compress.main", "-m", "prune=0,0.5",
               "prune_method=heads_neurons", "quant=fp32,bf16", "bench.repeats=5",
               "bench.warmup=1", "bench.cold_load=false", "keep_artifact=false",
               "task.eval_size=1000",
               f"hydra.sweep.dir={root}"]  # fmt: skip
    subprocess.run(command, check=True, timeout=1500, capture_output=True)
    return root


def _records(root: Path) -> dict[tuple[float, str], dict]:
    records = [json.loads(p.read_text()) for p in root.glob("*/metrics.json")]
    return {(r["factors"]["prune"], r["factors"]["quant"]): r for r in records}


def test_a_real_effect_is_significant_and_no_effect_is_not(sweep: Path):
    records = _records(sweep)
    assert len(records) == 4
    for quant in ("fp32", "bf16"):
        cut = records[(0.5, quant)]["ratios"]
        assert cut["tests"]["mcnemar"]["p_value"] < 0.05
        assert cut["intervals"]["accuracy_delta"]["high"] < 0
    null = records[(0.0, "bf16")]["ratios"]  # another model, no real effect
    assert null["tests"]["mcnemar"]["p_value"] > 0.05
    interval = null["intervals"]["accuracy_delta"]
    assert interval["low"] < 0 < interval["high"]


def test_the_untouched_model_has_an_interval_with_width(sweep: Path):
    untouched = _records(sweep)[(0.0, "fp32")]["ratios"]
    assert untouched["tests"]["mcnemar"]["flips"] == 0
    interval = untouched["intervals"]["accuracy_delta"]
    assert interval["low"] < 0 < interval["high"]  # not [0, 0]


def test_the_report_flags_the_factor_that_matters(sweep: Path):
    result = subprocess.run([sys.executable, "-m", "analysis", str(sweep)], capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = (sweep / "analysis" / "report.md").read_text()
    assert "Holm" in report and "95%" in report
    assert "| prune=0, quant=fp32 |" in report and "the baseline: nothing changed" in report
    summary = result.stdout.splitlines()[0]
    assert "prune" in summary and "4 of 4 jobs succeeded" in summary
    assert "is prune=0, quant=fp32" not in summary  # the baseline is never recommended
