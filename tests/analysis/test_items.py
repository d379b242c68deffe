"""Per-job item and round tables: loading them into long tables, and the figures drawn from
them (ROC points, confusion counts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from analysis import item_plots
from analysis.items import by_recipe, correctness, load_outcomes, side, timings
from analysis.load import load_runs
from analysis.pareto import recipe_labels
from tests.analysis.records import baseline_items, metrics, paired_job, write_sweep

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """Two jobs with items and rounds, one old-style job without, and one whose items file is
    corrupt."""
    rng = np.random.default_rng(0)
    jobs = [
        ({"quant": "fp32"}, *paired_job(rng)),
        ({"quant": "int8"}, *paired_job(rng, flip=0.3, latency=50)),
        ({"quant": "fp16"}, metrics()),
        ({"quant": "int4"}, *paired_job(rng)),
    ]
    sweep = write_sweep(tmp_path, jobs)
    (sweep / "3" / "items.parquet").write_bytes(b"not parquet")
    return sweep


def test_long_tables_hold_every_item_and_round_with_the_job_levels(mixed: Path):
    ok = load_runs([mixed]).ok
    outcomes = load_outcomes(ok)
    assert len(outcomes.items) == 2 and len(outcomes.rounds) == 3
    assert len(outcomes.unreadable) == 1 and outcomes.unreadable[0].startswith("corrupt ")
    long = correctness(outcomes, ok, ["quant"])
    assert list(long.columns) == ["job", "quant", "item", "correct"]
    assert long.groupby("quant").size().to_dict() == {"fp32": 200, "int8": 200}
    accuracy = ok.set_index("quant")["compressed.quality.accuracy"]
    for quant, items in long.groupby("quant"):
        assert items["correct"].mean() == pytest.approx(accuracy[quant])
    rounds = timings(outcomes, ok, ["quant"])
    assert rounds.groupby("quant")["compressed_ms"].median().to_dict() == pytest.approx(
        ok.set_index("quant").loc[["fp32", "int4", "int8"], "compressed.speed.p50_ms"].to_dict()
    )


def test_recipes_group_their_items_after_the_baseline(mixed: Path):
    ok = load_runs([mixed]).ok
    outcomes = load_outcomes(ok)
    groups = by_recipe(outcomes, ok, recipe_labels(ok, ["quant"]))
    assert list(groups) == ["baseline", "quant=fp32", "quant=int8"]
    assert list(groups["baseline"].columns) == ["label", "prediction", "score_0", "score_1"]
    matrix = item_plots.confusion_matrix(groups["quant=int8"], outcomes.classes)
    assert matrix.sum() == 200
    assert np.trace(matrix) / 200 == pytest.approx(
        ok.set_index("quant").at["int8", "compressed.quality.accuracy"]
    )


def test_roc_points_match_sklearns_auc_with_ties():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300) + 0.5 * labels, 1)  # rounded: many ties
    fpr, tpr = item_plots.roc_points(labels == 1, scores)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc_score(labels, scores))
    assert item_plots.roc_points(np.ones(5, bool), scores[:5]) is None


def test_multiclass_roc_and_confusion_figures(tmp_path: Path):
    base = baseline_items(items=150, classes=3)
    _, tables = paired_job(np.random.default_rng(3), flip=0.2, base=base)
    items = tables["items.parquet"]
    groups = {"baseline": side(items, "baseline"), "recipe": side(items, "compressed")}
    assert list(groups["recipe"].columns) == [
        "label",
        "prediction",
        *(f"score_{k}" for k in range(3)),
    ]
    matrix = item_plots.confusion_matrix(groups["recipe"], 3)
    assert (
        matrix.shape == (3, 3)
        and matrix.sum(axis=1).tolist() == np.bincount(items["label"]).tolist()
    )
    for figure in (item_plots.roc, item_plots.confusion):
        path = figure(groups, 3, tmp_path / f"{figure.__name__}.png")
        assert path.read_bytes().startswith(PNG_MAGIC)
