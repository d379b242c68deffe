"""Per recipe: the largest arrival rate meeting a p95 SLO, and response time against load,
as a table (CSV and Markdown) and one figure."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.queueing.capacity import (
    Scenario,
    capacity_per_s,
    load_curve,
    max_rates,
)
from analysis.queueing.records import Recipe
from analysis.queueing.simulation import Batching, simulate

UTILISATIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def scenario_for(recipe: Recipe, scenario: Scenario) -> Scenario:
    """``scenario`` with its batch limit cut to the largest batch size the recipe measured."""
    largest = min(scenario.batching.max_batch, recipe.service.largest_batch)
    batching = Batching(largest, scenario.batching.max_wait_ms if largest > 1 else 0.0)
    return dataclasses.replace(scenario, batching=batching)


def _in_flight(recipe: Recipe, scenario: Scenario, rate_per_s: float) -> float:
    """Little's law: requests in the system on average, lambda E[T]."""
    if rate_per_s == 0:
        return 0.0
    times = simulate(
        recipe.service, rate_per_s, scenario.workers, scenario.batching, scenario.requests,
        seed=scenario.seed,
    )  # fmt: skip
    return rate_per_s / 1000.0 * float(times.mean())


def summarise(recipe: Recipe, scenario: Scenario, slo_ms: float) -> dict:
    scenario = scenario_for(recipe, scenario)
    single = recipe.service.for_batch(1)
    rates = max_rates(recipe.service, scenario, slo_ms)
    return {
        "recipe": recipe.label,
        "sequences_per_request": recipe.sequences_per_request,
        "workers": scenario.workers,
        "max_batch": scenario.batching.max_batch,
        "max_wait_ms": scenario.batching.max_wait_ms,
        "service_mean_ms": float(single.mean()),
        "service_p95_ms": float(np.percentile(single, 95)),
        "capacity_per_s": capacity_per_s(recipe.service, scenario),
        "max_rate_per_s": rates["simulated"],
        "max_rate_mmc_per_s": rates.get("mmc"),
        "max_rate_pk_per_s": rates.get("pk"),
        "max_sequences_per_s": rates["simulated"] * recipe.sequences_per_request,
        "in_flight_at_max": _in_flight(recipe, scenario, rates["simulated"]),
    }


def curves(recipe: Recipe, scenario: Scenario, utilisations: Sequence[float]) -> pd.DataFrame:
    rows = load_curve(recipe.service, scenario_for(recipe, scenario), utilisations)
    return pd.DataFrame(rows).assign(recipe=recipe.label)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table, numbers to 4 significant digits."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |"]
    lines.append("|" + "---|" * len(frame.columns))
    lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def plot(curve: pd.DataFrame, summary: pd.DataFrame, slo_ms: float, path: Path) -> None:
    """One panel per recipe: simulated p50/p95 and the analytic p95s against arrival rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(summary["recipe"])
    columns = min(3, len(labels))
    rows = -(-len(labels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.6 * rows), squeeze=False)
    styles = {"simulated": "-", "mmc": "--", "pk": ":"}
    x, p50, p95 = "rate_per_s", "p50_ms", "p95_ms"
    for axis, label in zip(axes.flat, labels, strict=False):
        for model, points in curve[curve["recipe"] == label].groupby("model"):
            axis.plot(points[x], points[p95], styles[model], label=f"{model} p95")
            if model == "simulated":
                axis.plot(points[x], points[p50], "-", alpha=0.5, label="simulated p50")
        axis.axhline(slo_ms, color="red", linewidth=0.8, label=f"SLO {slo_ms:g} ms")
        best = summary.loc[summary["recipe"] == label, "max_rate_per_s"].item()
        axis.axvline(best, color="grey", linewidth=0.8)
        axis.set(title=label, xlabel="arrival rate (requests/s)", ylabel="response time (ms)")
        axis.set_yscale("log")
        axis.legend(fontsize=7)
    for axis in list(axes.flat)[len(labels) :]:
        axis.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def analyse(
    recipes: Sequence[Recipe],
    scenario: Scenario,
    slo_ms: float,
    out_dir: Path,
    utilisations: Sequence[float] = UTILISATIONS,
) -> pd.DataFrame:
    """Write ``summary.csv``, ``summary.md``, ``curves.csv`` and ``response_vs_load.png``
    into ``out_dir``; returns the summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = pd.DataFrame([summarise(r, scenario, slo_ms) for r in recipes])
    curve = pd.concat([curves(r, scenario, utilisations) for r in recipes], ignore_index=True)
    summary.to_csv(out_dir / "summary.csv", index=False)
    (out_dir / "summary.md").write_text(markdown_table(summary))
    curve.to_csv(out_dir / "curves.csv", index=False)
    plot(curve, summary, slo_ms, out_dir / "response_vs_load.png")
    return summary
