"""Pareto dominance, recipe means and the best recipe under a quality constraint."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.pareto import (
    DROP,
    FRONT,
    best_recipe,
    hypervolume,
    minimised,
    non_dominated,
    objectives,
    recipes,
)
from analysis.responses import LATENCY, SIZE

ACCURACY = "compressed.quality.accuracy"
PERPLEXITY = "compressed.quality.perplexity"


def points(rows: dict[str, tuple[float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame.from_dict(rows, orient="index", columns=[ACCURACY, LATENCY, SIZE])


def test_a_point_beaten_on_every_objective_is_dominated():
    table = points({
        "best": (0.9, 10, 100),
        "worse everywhere": (0.8, 20, 200),
        "worse on one, equal elsewhere": (0.9, 10, 101),
        "most accurate": (0.95, 30, 300),
        "smallest": (0.5, 40, 50),
    })  # fmt: skip
    front = non_dominated(table, objectives(ACCURACY, table.columns))
    assert front.to_dict() == {
        "best": True,
        "worse everywhere": False,
        "worse on one, equal elsewhere": False,
        "most accurate": True,
        "smallest": True,
    }


def test_identical_points_do_not_dominate_each_other():
    table = points({"a": (0.9, 10, 100), "b": (0.9, 10, 100)})
    assert non_dominated(table, objectives(ACCURACY, table.columns)).all()


def test_a_point_with_a_missing_objective_is_never_on_the_front():
    table = points({"a": (0.9, 10, 100), "b": (float("nan"), 1, 1)})
    assert non_dominated(table, objectives(ACCURACY, table.columns)).tolist() == [True, False]


def test_perplexity_is_minimised_and_scores_maximised():
    assert objectives(PERPLEXITY, pd.Index([PERPLEXITY, LATENCY, SIZE])) == {
        PERPLEXITY: False, LATENCY: False, SIZE: False,
    }  # fmt: skip
    assert objectives(ACCURACY, pd.Index([ACCURACY, LATENCY]))[ACCURACY] is True
    table = pd.DataFrame({PERPLEXITY: [10.0, 12.0], LATENCY: [5.0, 5.0]}, index=["a", "b"])
    assert non_dominated(table, objectives(PERPLEXITY, table.columns)).tolist() == [True, False]


def runs(rows: list[tuple[str, float, float, float, float]], quality: str) -> pd.DataFrame:
    """(quant, compressed quality, baseline quality, latency, size) per successful job."""
    frame = pd.DataFrame(rows, columns=["quant", quality, "base", LATENCY, SIZE])
    return frame.rename(columns={"base": quality.replace("compressed.", "baseline.")})


def test_recipes_average_replicates_and_measure_the_drop_against_the_baseline():
    ok = runs([("fp32", 0.80, 0.80, 100, 1000), ("int8", 0.78, 0.80, 50, 250),
               ("int8", 0.76, 0.80, 70, 250)], ACCURACY)  # fmt: skip
    table = recipes(ok, ["quant"], ACCURACY)
    assert table.index.tolist() == ["quant=fp32", "quant=int8"]
    assert table.loc["quant=int8", "runs"] == 2
    assert table.loc["quant=int8", LATENCY] == pytest.approx(60)
    assert table[DROP].tolist() == pytest.approx([0.0, 0.03])
    assert table[FRONT].tolist() == [True, True]


def test_best_recipe_is_the_fastest_within_the_quality_drop():
    ok = runs([("fp32", 0.80, 0.80, 100, 1000), ("fp16", 0.79, 0.80, 80, 500),
               ("int8", 0.70, 0.80, 50, 250)], ACCURACY)  # fmt: skip
    table = recipes(ok, ["quant"], ACCURACY)
    assert best_recipe(table, 0.01).name == "quant=fp16"  # drop 0.01 despite float error
    assert best_recipe(table, 0.2).name == "quant=int8"
    assert best_recipe(table, 0.001).name == "quant=fp32"
    assert best_recipe(table[table.index != "quant=fp32"], 0.001) is None


def test_perplexity_drop_is_the_relative_increase():
    ok = runs([("fp32", 20.0, 20.0, 100, 1000), ("int8", 20.4, 20.0, 50, 250)], PERPLEXITY)
    table = recipes(ok, ["quant"], PERPLEXITY)
    assert table.loc["quant=int8", DROP] == pytest.approx(0.02)
    assert best_recipe(table, 0.01).name == "quant=fp32"
    assert best_recipe(table, 0.02).name == "quant=int8"


def test_hypervolume_of_a_staircase_by_hand():
    # two points below (4, 4): the union of [1,4]x[3,4] and [2,4]x[1,4] is 3 + 6 = 9 less
    # the overlap [2,4]x[3,4] = 2: 7
    assert hypervolume(np.array([[1, 3], [2, 1]]), np.array([4, 4])) == pytest.approx(7)
    assert hypervolume(np.array([[5, 0]]), np.array([4, 4])) == 0  # beyond the reference
    # a dominated point adds nothing
    front = np.array([[1, 3, 2], [2, 1, 3], [3, 2, 1]])
    reference = np.array([4.0, 4.0, 4.0])
    assert hypervolume(np.vstack([front, [3, 3, 3]]), reference) == hypervolume(front, reference)


def test_hypervolume_matches_optunas_on_random_fronts():
    """Optuna's WFG implementation as the independent reference."""
    compute_hypervolume = pytest.importorskip("optuna._hypervolume").compute_hypervolume

    rng = np.random.default_rng(0)
    for dims, count in ((2, 7), (3, 12), (3, 30), (4, 9)):
        points = rng.random((count, dims))
        reference = np.full(dims, 1.1)
        assert hypervolume(points, reference) == pytest.approx(
            compute_hypervolume(points, reference), rel=1e-9
        )


def test_minimised_flips_the_objectives_that_should_grow():
    table = points({"a": (0.9, 10, 100)})
    assert minimised(table, objectives(ACCURACY, table.columns)).tolist() == [[-0.9, 10, 100]]
