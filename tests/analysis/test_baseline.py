"""A sweep whose baseline learned nothing: the report opens by saying no quality conclusion can
be drawn, why and what to try; size and latency are still analysed; nothing is called
non-inferior. Held-out overlap and long cut texts get their line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.baseline import data_lines, unlearned
from analysis.results import Options
from tests.analysis.records import paired_job, write_sweep

GATE = {
    "learned": False, "test": "exact binomial test, one-sided: ...", "alpha": 0.05, "n": 265,
    "correct": 98, "accuracy": 0.370, "majority_class": "Republican", "majority_share": 0.385,
    "p_value": 0.72, "reason": "labels unrelated to the text (validation macro-F1 peaked at "
    "0.351 on 771 train rows, then stopped improving)", "fix": "check that "
    "task.data.label_column holds these texts' labels, row by row",
}  # fmt: skip
DATA = {"eval_distinct": 265, "eval_overlap": 14, "eval_overlap_policy": "drop",
        "max_length": 64, "eval_truncated_share": 0.22, "eval_tokens_p95": 298.0}  # fmt: skip


def _sweep(root: Path, learned: bool) -> Path:
    rng = np.random.default_rng(0)
    jobs = []
    for prune, quant in [(0.3, "fp32"), (0.3, "int8"), (0.5, "fp32"), (0.5, "int8")]:
        record, tables = paired_job(rng, latency=100 if quant == "fp32" else 60)
        record["baseline"] |= {"learned": learned, "gate": GATE | {"learned": learned},
                               "data": DATA}  # fmt: skip
        jobs.append(({"prune": prune, "quant": quant}, record, tables))
    return write_sweep(root, jobs)


def test_no_quality_conclusion_when_the_baseline_learned_nothing(tmp_path: Path):
    from analysis.report import write_report

    out, text = write_report(Options([_sweep(tmp_path / "sweep", learned=False)]))
    first = text.split(". ")[0]
    assert first.startswith("No quality conclusion can be drawn: the baseline learned nothing")
    assert "accuracy 0.370 vs 0.385 for always answering the majority class" in text
    assert "exact binomial p = 0.72, n = 265" in text
    assert "; likely cause: labels unrelated to the text" in text
    assert "; to try: check that task.data.label_column" in text
    assert "non-inferior" not in text.replace("called non-inferior, on", "")
    assert "accuracy" not in text.split("Significant at")[1].split(".")[0]
    assert "latency p50" in text
    report = (out / "report.md").read_text()
    assert report.splitlines()[2].startswith("No quality conclusion can be drawn")
    assert "within the limit" not in report and "McNemar" not in report


def test_a_baseline_that_learned_keeps_the_quality_analysis(tmp_path: Path):
    from analysis.report import write_report

    _, text = write_report(Options([_sweep(tmp_path / "sweep", learned=True)]))
    assert "No quality conclusion" not in text and "accuracy" in text


def test_overlap_and_truncation_lines():
    import pandas as pd

    row = {f"baseline.data.{k}": v for k, v in DATA.items()}
    lines = data_lines(pd.DataFrame([row]))
    assert lines[0] == ("14 of the 265 distinct held-out texts also occur in the training "
                        "data and were left out (task.eval_overlap).")  # fmt: skip
    assert lines[1].startswith("Note: task.max_length=64 cuts 22% of the held-out texts")
    assert unlearned(pd.DataFrame([row])) is None


@pytest.mark.parametrize("learned", [True, None])
def test_only_a_failed_gate_withholds_quality(learned):
    import pandas as pd

    assert unlearned(pd.DataFrame([{"baseline.learned": learned}])) is None
