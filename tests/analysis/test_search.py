"""The report's section on a search sweep: every trial that ran or was refused, the recipe
each job ran marked when it is on the report's Pareto front; repeats counted, not listed."""

from __future__ import annotations

import json
from pathlib import Path

from analysis.load import load_runs
from analysis.pareto import recipes
from analysis.responses import quality_metric
from analysis.search import search_section, trials_table
from tests.analysis.records import failed, metrics, write_sweep

OBJECTIVES = [
    {"name": "quality", "key": "accuracy_delta", "maximize": True, "direction": "maximize"},
    {"name": "latency_p50", "key": "latency_p50", "maximize": False, "direction": "minimize"},
]


def _trial(number, params, state, values=None, job=None, reason=None, repeat_of=None) -> dict:
    return {"number": number, "params": params, "state": state, "values": values, "job": job,
            "reason": reason, "repeat_of": repeat_of}  # fmt: skip


def _search_sweep(root: Path) -> Path:
    jobs = [
        ({"prune": 0.3, "quant": "int8"}, metrics(accuracy=0.79, latency=50)),  # on the front
        ({"prune": 0.6, "quant": "int8"}, metrics(accuracy=0.70, latency=55)),  # dominated
        ({"prune": 0.3, "quant": "fp32"}, metrics(accuracy=0.80, latency=90)),  # on the front
        ({"prune": 0.6, "quant": "fp32"}, failed()),
    ]
    sweep = write_sweep(root, jobs)
    trials = [
        _trial(0, {"prune": "0.3", "quant": "int8"}, "complete", [-0.01, 0.5], 0),
        _trial(1, {"prune": "0.6", "quant": "int8"}, "complete", [-0.1, 0.55], 1),
        _trial(2, {"prune": "0.3", "quant": "int8"}, "repeat", [-0.01, 0.5], repeat_of=0),
        _trial(3, {"prune": "0.3", "quant": "fp16"}, "refused", reason="quant=fp16 refused"),
        _trial(4, {"prune": "0.3", "quant": "fp32"}, "complete", [0.0, 0.9], 2),
        _trial(5, {"prune": "0.6", "quant": "fp32"}, "failed", job=3, reason="RuntimeError: oom"),
    ]
    search = {
        "settings": {"sampler": "tpe", "seed": 0, "n_trials": 4},
        "objectives": OBJECTIVES, "recipes": 6, "jobs": 4, "front": [0, 4],
        "counts": {"complete": 3, "failed": 1, "refused": 1, "repeat": 1}, "trials": trials,
    }  # fmt: skip
    (sweep / "search.json").write_text(json.dumps(search))
    return sweep


def test_trials_are_listed_with_the_front_of_the_report(tmp_path: Path):
    runs = load_runs([_search_sweep(tmp_path / "sweep")])
    table = recipes(runs.ok, runs.factors, quality_metric(runs.table.columns))
    trials = trials_table(tmp_path / "sweep" / "search.json", runs, table)
    assert list(trials.index) == [0, 1, 3, 4, 5]  # the repeat is counted, not listed
    assert trials["state"].tolist() == ["complete", "complete", "refused", "complete", "failed"]
    assert trials["on the front"].tolist() == ["yes", "", "", "yes", ""]
    assert trials["job"].tolist() == ["0", "1", "", "2", "3"]
    assert trials.loc[3, "reason"] == "quant=fp16 refused"
    assert trials.loc[0, "maximize accuracy_delta"] == -0.01
    blocks = search_section(runs, table)
    assert blocks[0].text == "Search: sweep"
    assert "3 complete, 1 failed, 1 refused, 1 repeat" in blocks[1].text


def test_the_report_of_a_search_sweep_has_its_section(tmp_path: Path):
    from analysis.cli import main

    sweep = _search_sweep(tmp_path / "sweep")
    assert main([str(sweep), "--out", str(tmp_path / "out"), "--response", "accuracy"]) == 0
    text = (tmp_path / "out" / "report.md").read_text()
    assert "## Search: sweep" in text and "| 3 | refused |" in text


def test_a_sweep_without_search_has_no_section(tmp_path: Path):
    sweep = write_sweep(
        tmp_path / "grid", [({"prune": 0.3}, metrics()), ({"prune": 0.6}, metrics())]
    )
    runs = load_runs([sweep])
    assert search_section(runs, recipes(runs.ok, runs.factors, None)) == []
