"""Recipes (one per combination of factor levels) and the ones that no other recipe beats on
quality, latency and size at once."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.load import level_label
from analysis.responses import LATENCY, SIZE, baseline_column, higher_is_better, quality_drop

DROP = "quality drop"
FRONT = "pareto"
RUNS = "runs"
RATIOS = ("ratios.disk_bytes", "ratios.latency_p50")
TOLERANCE = 1e-9  # a drop of 0.010000000000000009 still meets --max-quality-drop 0.01


def recipe_labels(ok: pd.DataFrame, factors: list[str]) -> pd.Series:
    if not factors:
        return pd.Series("all runs", index=ok.index)
    return ok[factors].apply(
        lambda row: ", ".join(f"{f}={level_label(v)}" for f, v in row.items()), axis=1
    )


def non_dominated(points: pd.DataFrame, higher_better: dict[str, bool]) -> pd.Series:
    """True where no other point is at least as good on every objective and better on one;
    points with a missing objective are never on the front."""
    signs = np.array([1.0 if up else -1.0 for up in higher_better.values()])
    values = points[list(higher_better)].to_numpy(dtype=float) * signs
    complete = values[~np.isnan(values).any(axis=1)]
    front = [
        not np.isnan(v).any()
        and not ((complete >= v).all(axis=1) & (complete > v).any(axis=1)).any()
        for v in values
    ]
    return pd.Series(front, index=points.index)


def objectives(quality: str | None, columns: pd.Index) -> dict[str, bool]:
    """Objective column → whether higher is better."""
    wanted = {LATENCY: False, SIZE: False}
    if quality is not None:
        wanted = {quality: higher_is_better(quality)} | wanted
    return {c: up for c, up in wanted.items() if c in columns}


def recipes(ok: pd.DataFrame, factors: list[str], quality: str | None) -> pd.DataFrame:
    """Objectives, quality drop and ratios vs the baseline per recipe (replicates averaged),
    with the non-dominated recipes marked."""
    higher_better = objectives(quality, ok.columns)
    values = ok[[*higher_better, *(r for r in RATIOS if r in ok.columns)]].astype(float)
    if quality in higher_better and baseline_column(quality) in ok.columns:
        values[DROP] = quality_drop(ok, quality)
    grouped = values.groupby(recipe_labels(ok, factors), sort=False)
    table = grouped.mean()
    table.insert(0, RUNS, grouped.size())
    if DROP in table:
        table.insert(2, DROP, table.pop(DROP))
    table[FRONT] = non_dominated(table, higher_better)
    table.index.name = "recipe"
    return table


def best_recipe(table: pd.DataFrame, max_drop: float) -> pd.Series | None:
    """The fastest recipe (then the smallest) whose quality drop stays within ``max_drop``."""
    if DROP not in table:
        return None
    feasible = table[table[DROP] <= max_drop + TOLERANCE]
    order = [c for c in (LATENCY, SIZE) if c in table]
    return feasible.sort_values(order).iloc[0] if len(feasible) else None


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """The volume that ``points`` (rows, every objective minimised) dominate below
    ``reference``: the measure of a front's quality that is compared between a search and
    the full grid. Points not strictly better than the reference on every objective add
    nothing. Exact, by slicing along the first objective (fine for fronts of tens of points)."""
    points = np.asarray(points, dtype=float)
    reference = np.asarray(reference, dtype=float)
    points = points[(points < reference).all(axis=1)] if len(points) else points
    if len(points) == 0:
        return 0.0
    if points.shape[1] == 1:
        return float(reference[0] - points[:, 0].min())
    order = np.argsort(points[:, 0], kind="stable")
    points = points[order]
    volume = 0.0
    for i in range(len(points)):
        upper = points[i + 1, 0] if i + 1 < len(points) else reference[0]
        width = upper - points[i, 0]
        if width > 0:
            volume += width * hypervolume(points[: i + 1, 1:], reference[1:])
    return volume


def minimised(table: pd.DataFrame, higher_better: dict[str, bool]) -> np.ndarray:
    """The objectives of ``table`` as a matrix in which every column is minimised."""
    signs = np.array([-1.0 if up else 1.0 for up in higher_better.values()])
    return table[list(higher_better)].to_numpy(dtype=float) * signs
