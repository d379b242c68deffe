"""What the runs of one recipe repeat, said in the report: every run re-times the baseline and
the recipe in fresh rounds on the same evaluation items; whether it also repeats the
compression shows in its answers (identical on every item: copies of one compressed model)."""

from __future__ import annotations

import pandas as pd

from analysis.items import Outcomes
from analysis.load import REPLICATE_KEYS, Runs
from analysis.pareto import recipe_labels


def _answers(table: pd.DataFrame) -> pd.DataFrame:
    return table[[c for c in table.columns if c.startswith("compressed_")]]


def _kinds(runs: Runs, outcomes: Outcomes, repeated: pd.Index) -> dict[str, list[str]]:
    """Repeated recipes by what their runs' item tables show: copies, differing, unknown."""
    labels = recipe_labels(runs.ok, runs.factors)
    kinds: dict[str, list[str]] = {"copies": [], "differing": [], "unknown": []}
    for recipe in repeated:
        tables = [outcomes.items.get(job) for job in runs.ok.loc[labels == recipe, "job"]]
        if any(table is None for table in tables):
            kinds["unknown"].append(recipe)
            continue
        first = _answers(tables[0])
        same = all(_answers(table).equals(first) for table in tables[1:])
        kinds["copies" if same else "differing"].append(recipe)
    return kinds


def replicate_note(runs: Runs, outcomes: Outcomes) -> str:
    """One paragraph on the recipes that ran more than once; empty when none did."""
    counts = recipe_labels(runs.ok, runs.factors).value_counts()
    repeated = counts.index[counts > 1]
    if repeated.empty:
        return ""
    seeds = [key for key in REPLICATE_KEYS if key in runs.varying]
    by = f" (runs differ in {', '.join(seeds)})" if seeds else ""
    kinds = _kinds(runs, outcomes, repeated)
    parts = [
        f"{len(repeated)} of {len(counts)} recipes ran more than once{by}. Every run times the "
        "baseline and the recipe anew, in fresh rounds, on the same evaluation items."
    ]
    if kinds["copies"]:
        parts.append(
            f"The runs of {'; '.join(kinds['copies'])} answer every item identically: copies "
            "of one compressed model, they repeat the timing only."
        )
    if kinds["differing"]:
        parts.append(
            f"The runs of {'; '.join(kinds['differing'])} answer some items differently: they "
            "repeat the compression too."
        )
    if kinds["unknown"]:
        parts.append(f"Without item tables, {'; '.join(kinds['unknown'])} cannot be told apart.")
    parts.append(
        "Their rows pool the runs: the latency ratio is the geometric mean over the runs with "
        "Student's t over their log ratios (rounds clustered by run); the accuracy interval is "
        "Tango's on the runs' mean discordant counts over the items; interval bounds are never "
        "averaged."
    )
    return " ".join(parts)
