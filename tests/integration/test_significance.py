"""On the real MiniLM: a compression with a real effect (50% of heads and FFN neurons cut)
is flagged significant, an untouched model under another seed is not, and the report's
item-level model finds the factor that matters."""

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
               "prune_method=heads_neurons", "quant=fp32", "seed=0,1", "bench.repeats=5",
               "bench.warmup=1", "bench.cold_load=false", "keep_artifact=false",
               "task.eval_size=1000",
               f"hydra.sweep.dir={root}"]  # fmt: skip
    subprocess.run(command, check=True, timeout=1500, capture_output=True)
    return root


def _records(root: Path) -> dict[tuple[float, int], dict]:
    records = [json.loads(p.read_text()) for p in root.glob("*/metrics.json")]
    return {(r["factors"]["prune"], r["config"]["seed"]): r for r in records}


def test_a_real_effect_is_significant_and_no_effect_is_not(sweep: Path):
    records = _records(sweep)
    assert len(records) == 4
    for seed in (0, 1):
        cut, untouched = records[(0.5, seed)]["ratios"], records[(0.0, seed)]["ratios"]
        assert cut["tests"]["mcnemar"]["p_value"] < 0.05
        assert cut["intervals"]["accuracy_delta"]["high"] < 0
        assert untouched["tests"]["mcnemar"]["p_value"] > 0.05
        interval = untouched["intervals"]["accuracy_delta"]
        assert interval["low"] <= 0 <= interval["high"]


def test_the_report_flags_the_factor_that_matters(sweep: Path):
    result = subprocess.run([sys.executable, "-m", "analysis", str(sweep)], capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = (sweep / "analysis" / "report.md").read_text()
    assert "Holm" in report and "95%" in report
    summary = result.stdout.splitlines()[0]
    assert "prune" in summary and "4 of 4 jobs succeeded" in summary
