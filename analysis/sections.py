"""The report's sections built on intervals and per-item outcomes: the recipe table against the
baseline, the item-level factor models beside the per-job ANOVA, and the item figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis import item_plots
from analysis.comparison import (
    DELTA,
    DROP_HIGH,
    FASTER,
    FIDELITY,
    FLIPS,
    HOLM,
    LATENCY_MS,
    POWER,
    RUNS,
    SIZE_MB,
    SPEED,
    UNCHANGED,
    Conclusions,
    P,
    fidelity_columns,
)
from analysis.item_tests import term_name
from analysis.items import by_recipe
from analysis.load import level_label
from analysis.pareto import TOLERANCE, recipe_labels
from analysis.render import Block, Bullets, Heading, Image, Table, Text
from analysis.replicates import replicate_note
from analysis.responses import label
from analysis.results import Options, Results
from analysis.summary import constraint, formatted, procedure

PRUNE, PRUNE_METHOD = "prune", "prune_method"
UNAVAILABLE = (
    "Intervals are unavailable: these records hold no ratios.intervals (sweeps from before "
    "per-item outcomes were kept), so every value here is a point estimate."
)


def _interval_cells(rows: pd.DataFrame, columns: tuple[str, str, str], fmt: str) -> pd.Series:
    """``est [low, high]`` per row; the estimate alone where no interval was recorded."""

    def cell(row: pd.Series) -> str:
        estimate, low, high = (row[c] for c in columns)
        if pd.isna(estimate):
            return ""
        text = formatted(estimate, fmt)
        return text if pd.isna(low) else f"{text} [{formatted(low, fmt)}, {formatted(high, fmt)}]"

    return rows.apply(cell, axis=1)


def _within(bound: float, max_drop: float) -> str:
    if pd.isna(bound):
        return ""
    return "yes" if bound <= max_drop + TOLERANCE else "no"


def _yes(flags: pd.Series) -> pd.Series:
    return flags.map(lambda flag: "" if pd.isna(flag) else ("yes" if flag else "no"))


def recipe_frame(conclusions: Conclusions, max_drop: float) -> pd.DataFrame:
    """The baseline, then one row per recipe, fastest first, as the report shows them."""
    rows = pd.concat([conclusions.baseline.to_frame().T, conclusions.table])
    headline = conclusions.headline

    def ci(columns: tuple[str, str, str]) -> str:
        bounded = columns[1] in rows and rows[columns[1]].notna().any()
        return f" [{conclusions.confidence:.0%} CI]" if bounded else ""

    frame = rows[[RUNS, SIZE_MB, LATENCY_MS]].copy()
    frame[f"latency ratio{ci(SPEED)}"] = _interval_cells(rows, SPEED, ".2f")
    frame[FASTER] = _yes(rows[FASTER])
    if headline is not None:
        frame[label(headline.column)] = rows[headline.column]
        fmt = ".3f" if headline.ratio else "+.3f"
        frame[f"{headline.name}{ci(DELTA)}"] = _interval_cells(rows, DELTA, fmt)
        if rows[P].notna().any():
            frame[[FLIPS, P, HOLM]] = rows[[FLIPS, P, HOLM]]
        if rows[DROP_HIGH].notna().any():
            frame["within the limit"] = rows[DROP_HIGH].map(lambda b: _within(b, max_drop))
    for name in FIDELITY.values():
        columns = fidelity_columns(name)
        if name in rows:
            frame[f"{name}{ci(columns)}"] = _interval_cells(rows, columns, ".3g")
    unchanged = rows[UNCHANGED].eq(True)
    if unchanged.any():
        frame["note"] = unchanged.map({True: "the baseline: nothing changed", False: ""})
    frame.index.name = "recipe"
    return frame


def _tests_notes(conclusions: Conclusions, ci: str, max_drop: float) -> list[str]:
    table, notes, headline = conclusions.table, [], conclusions.headline
    if table[P].notna().any():
        notes.append(
            "McNemar p: exact test of the items only one of the recipe and the baseline gets "
            f"right. Holm p adjusts it for the family of all {table[P].notna().sum()} recipes "
            "compared with the baseline in this report. Flips: the share of items whose "
            "correctness changed, (b + c) / n: a recipe can keep its accuracy while changing "
            "many answers. Of a recipe that ran more than once: the largest p and the mean "
            "flips of its runs."
        )
    if table[DROP_HIGH].notna().any():
        limit = constraint(headline.column, max_drop, headline.tested)
        notes.append(
            f"Within the limit: {limit} vs the baseline even at the upper bound of the {ci}."
        )
    return notes


def _recipe_notes(conclusions: Conclusions, results: Results, options: Options) -> list[str]:
    table, ci = conclusions.table, f"{conclusions.confidence:.0%} CI"
    notes = [
        f"The first row is the uncompressed baseline, averaged over the "
        f"{int(conclusions.baseline[RUNS])} jobs that each measured it anew. Recipes follow, "
        "ranked by their paired latency ratio (compressed / baseline ms, timed in the same "
        "rounds; the geometric mean over a recipe's runs); faster: its interval lies below 1."
    ]
    if conclusions.intervals:
        notes.append(
            f"Intervals are {ci}s of paired comparisons on the same items and rounds: accuracy "
            "by Tango's score interval on the discordant items, F1, ROC-AUC and BLEU by paired "
            "bootstraps over items, perplexity over non-overlapping blocks of windows, the "
            "latency ratio over a run's timing rounds (or, for several runs, over the runs)."
        )
    if conclusions.headline is not None:
        notes += _tests_notes(conclusions, ci, options.max_quality_drop)
    if any(name in table for name in FIDELITY.values()):
        notes.append(
            "Fidelity to the baseline (causal LMs): KL is the mean KL divergence of the "
            "compressed next-token distribution from the baseline's (nats per token), top-1 "
            "agreement the share of positions whose most likely next token is the baseline's, "
            "both over the same windows with intervals over the same blocks as perplexity; "
            "answers changed is the share of prompts whose greedy answer is not the "
            "baseline's (Wilson interval). Equal perplexity can hide a changed model."
        )
    if table[UNCHANGED].any():
        notes.append(
            "A recipe that changes nothing (nothing pruned, fp32, no recovery, the torch "
            "backend) is the baseline under another name: it is never recommended."
        )
    if conclusions.choice is not None:
        notes.append(procedure(conclusions.choice))
    notes.append(replicate_note(results.runs, results.outcomes))
    return notes


def _power_note(conclusions: Conclusions, alpha: float) -> str:
    power = conclusions.power
    if power is None:
        return ""
    return (
        f"Power: with {power.items} items and {power.basis}, McNemar's test detects "
        f"{power.reach} at {POWER:.0%} power (alpha = {alpha:g})."
    )


def recipes_section(results: Results, options: Options) -> list[Block]:
    conclusions = results.conclusions
    blocks: list[Block] = [
        Heading("Recipes against the baseline"),
        Table(recipe_frame(conclusions, options.max_quality_drop)),
    ]
    if not conclusions.intervals:
        blocks.append(Text(UNAVAILABLE))
    notes = [*_recipe_notes(conclusions, results, options),
             _power_note(conclusions, options.alpha)]  # fmt: skip
    blocks.append(Bullets([note for note in notes if note]))
    unreadable = results.outcomes.unreadable
    if unreadable:
        blocks.append(Bullets([f"Left out: {reason}" for reason in unreadable]))
    return blocks


def item_model_blocks(response: str, results: Results) -> list[Block]:
    """The item-level test of the factors beside the per-job ANOVA of ``response``."""
    test = results.item_tests.get(response)
    if test is None:
        return []
    blocks: list[Block] = [Text(test.intro)]
    if test.table is not None:
        frame = test.table.rename(index=term_name, columns=test.columns)
        frame.index.name = "term"
        blocks.append(Table(frame))
    return blocks + ([Text(test.note)] if test.note else [])


def _classification_figures(results: Results, out: Path) -> list[Block]:
    outcomes, runs = results.outcomes, results.runs
    if not outcomes.classification:
        return []
    groups = by_recipe(outcomes, runs.ok, recipe_labels(runs.ok, runs.factors))
    classes = outcomes.classes
    blocks: list[Block] = []
    if all(f"score_{k}" in items for items in groups.values() for k in range(classes)):
        path = item_plots.roc(groups, classes, out / "roc.png")
        blocks.append(Image(path, "ROC curves from the item scores, baseline dashed"))
    path = item_plots.confusion(groups, classes, out / "confusion.png")
    return blocks + [Image(path, "Confusion matrices, baseline first")]


def _breaking_curves(results: Results) -> pd.DataFrame | None:
    """The quality comparison (delta or ratio) and its bounds per prune method, setting of the
    other factors and pruned fraction, as the recipe table pooled them over runs; None unless
    ``prune`` is a numeric factor."""
    runs, headline, ok = results.runs, results.conclusions.headline, results.runs.ok
    if PRUNE not in runs.factors or headline is None:
        return None
    prune = pd.to_numeric(ok[PRUNE], errors="coerce")
    if prune.isna().any():
        return None
    by_method = PRUNE_METHOD in runs.factors
    methods = (
        ok[PRUNE_METHOD].map(lambda m: f"{PRUNE_METHOD}={level_label(m)}") if by_method else ""
    )
    others = [f for f in runs.factors if f not in (PRUNE, PRUNE_METHOD)]
    recipes = pd.DataFrame(
        {"recipe": recipe_labels(ok, runs.factors), "method": methods,
         "line": recipe_labels(ok, others), "prune": prune}
    ).drop_duplicates("recipe")  # fmt: skip
    pooled = results.conclusions.table[list(DELTA)].set_axis(["delta", "low", "high"], axis=1)
    return recipes.join(pooled, on="recipe").drop(columns="recipe").reset_index(drop=True)


def _breaking_points(results: Results, options: Options, out: Path) -> list[Block]:
    curves = _breaking_curves(results)
    if curves is None:
        return []
    headline = results.conclusions.headline
    limit = headline.at_drop(options.max_quality_drop)
    path = out / "breaking.png"
    item_plots.breaking_points(curves, headline.name, headline.reference, limit, path)
    bands = ", bands: intervals" if results.conclusions.intervals else ""
    return [Image(path, f"Breaking points: {headline.name} vs prune{bands}")]


def item_figures(results: Results, options: Options, out: Path) -> list[Block]:
    blocks = _classification_figures(results, out) + _breaking_points(results, options, out)
    if not blocks:
        return []
    return [Heading("Items and breaking points"), *blocks]
