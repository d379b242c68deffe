"""The plain-language paragraph at the top of the report, also printed by the command."""

from __future__ import annotations

import pandas as pd

from analysis.anova import Anova
from analysis.baseline import SPEED_ONLY, data_lines
from analysis.comparison import (
    DELTA,
    DROP_HIGH,
    FIDELITY,
    ONE_SIDED,
    POWER,
    RUNS,
    SIZE_RATIO,
    SPEED,
    Choice,
    Conclusions,
    best_case_drops,
)
from analysis.item_tests import ItemTest
from analysis.load import EXCLUDED
from analysis.pareto import DROP, TOLERANCE
from analysis.responses import higher_is_better, label
from analysis.results import Options, Results
from compress.stats.multiplicity import PROCEDURE

RATIOS = {"ratios.disk_bytes": "size", "ratios.latency_p50": "latency p50"}


def response_name(anova: Anova) -> str:
    return f"log {label(anova.response)}" if anova.log else label(anova.response)


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3g}"


def _jobs(results: Results) -> str:
    counts = results.runs.table["status"].value_counts()
    text = f"{counts.get('ok', 0)} of {len(results.runs.table)} jobs succeeded"
    excluded = [f"{counts[s]} {s}" for s in EXCLUDED if s in counts]
    return text + (f" ({', '.join(excluded)}: left out of the fits)." if excluded else ".")


def _verdict(anova: Anova, alpha: float, test: ItemTest | None) -> str:
    if anova.table is None:
        if test is None or test.table is None:
            return f"{response_name(anova)}: not tested per job (see its section)"
        found = [f"{t} ({_p_text(p)})" for t, p in test.p_values().items() if p < alpha]
        quality = anova.response.startswith("compressed.quality")
        model = "item-level model" if quality else "job-level paired model"
        return (f"{response_name(anova)} ({model}): "
                f"{', '.join(found) or 'no significant factor'}")  # fmt: skip
    names = {t: " = ".join([t, *aliases]) for t, aliases in anova.aliases.items()}
    significant = [
        f"{names.get(t, t)} ({_p_text(p)})" for t, p in anova.p_values().items() if p < alpha
    ]
    return f"{response_name(anova)}: {', '.join(significant) or 'no significant factor'}"


def constraint(quality: str, max_drop: float, name: str | None = None) -> str:
    """``accuracy drops by at most 0.01``; ``name``: the metric tested, where it is not the
    column's own (sentence-BLEU beside corpus BLEU)."""
    name = name or label(quality)
    if higher_is_better(quality):
        return f"{name} drops by at most {max_drop:g}"
    return f"{name} rises by at most {max_drop * 100:g}%"


def _point_best(results: Results, max_drop: float) -> str:
    """The choice by point estimates, for records without intervals."""
    quality, best, table = results.quality, results.best, results.recipes
    if quality is None or DROP not in table:
        return "No quality metric with a baseline value was recorded, so no recipe is chosen."
    if best is None:
        closest = table[DROP].idxmin()
        return (
            f"No recipe meets the constraint ({constraint(quality, max_drop)} vs the baseline);"
            f" the closest is {closest} (drop {table.at[closest, DROP]:.3g})."
        )
    ratios = [
        f"{best[c]:.2f}× the baseline's {what}"
        for c, what in RATIOS.items()
        if pd.notna(best.get(c))
    ]
    return (
        f"The fastest recipe whose {constraint(quality, max_drop)} vs the baseline is "
        f"{best.name}: {label(quality)} {best[quality]:.4g} (drop {best[DROP]:.3g})"
        + "".join(f", {ratio}" for ratio in ratios)
        + "."
    )


def formatted(value: float, fmt: str) -> str:
    """``value`` in ``fmt`` with a true minus sign: ``−0.015``, as in print."""
    return format(value, fmt).replace("-", "\u2212")


def _amount(quality: str, drop: float) -> str:
    return f"{drop:.3g}" if higher_is_better(quality) else f"{drop:.1%}"


def _figures(row: pd.Series, conclusions: Conclusions) -> str:
    """``accuracy 0.794 (Δ −0.006, 95% CI [−0.015, +0.003]), 0.25× the size, 0.45× [0.43,
    0.47] the latency``: the chosen recipe's numbers with their intervals."""
    headline, ci = conclusions.headline, f"{conclusions.confidence:.0%} CI"
    estimate, low, high = (formatted(row[c], ".3f" if headline.ratio else "+.3f") for c in DELTA)
    text = (
        f"{label(headline.column)} {row[headline.column]:.3g} ({headline.symbol} {estimate}, "
        f"{ci} [{low}, {high}])"
    )
    if pd.notna(row[SIZE_RATIO]):
        text += f", {row[SIZE_RATIO]:.2f}× the size"
    if pd.notna(row[SPEED[0]]):
        latency = f"{row[SPEED[0]]:.2f}×"
        if pd.notna(row[SPEED[1]]):
            latency += f" [{row[SPEED[1]]:.2f}, {row[SPEED[2]]:.2f}]"
        text += f", {latency} the latency"
    for name in FIDELITY.values():
        if pd.notna(row.get(name)):
            text += f", {name} {row[name]:.3g}"
            if pd.notna(row.get(f"{name} low")):
                text += f" [{row[f'{name} low']:.3g}, {row[f'{name} high']:.3g}]"
    runs = int(row[RUNS])
    return text + (f" (pooled over its {runs} runs)" if runs > 1 else "")


def procedure(choice: Choice) -> str:
    """How the best recipe was chosen, and the error rate of the claim."""
    tested = len(choice.sequence)
    if not tested:
        return ""
    stop = f", stopping at {choice.stopped_at}" if choice.stopped_at else ""
    return (
        f"Chosen by a {PROCEDURE} procedure: the {tested} recipe(s) faster than the baseline "
        f"(latency interval below 1) were tested for non-inferiority from the slowest to the "
        f"fastest at one-sided {ONE_SIDED:.1%} each{stop} ({choice.passed} passed); the "
        f"family-wise error rate of these non-inferiority claims, this one included, is at "
        f"most {ONE_SIDED:.1%}."
    )


def _non_inferior(conclusions: Conclusions, max_drop: float) -> str:
    headline, choice = conclusions.headline, conclusions.choice
    limit = constraint(headline.column, max_drop, headline.tested)
    bound = f"the upper bound of its {conclusions.confidence:.0%} CI"
    if choice.recipe is None:
        if not choice.sequence:
            return (
                "No recipe that changes the model is provably faster than the baseline (none "
                "has a latency interval below 1), so none is recommended."
            )
        upper = conclusions.table.at[choice.closest, DROP_HIGH]
        return (
            f"No recipe provably meets the constraint ({limit} vs the baseline, at {bound}); "
            f"the closest is {choice.closest}, whose drop is at most "
            f"{_amount(headline.column, upper)} at that bound. "
            f"{faster_verdicts(conclusions, max_drop)}{procedure(choice)}"
        )
    row = conclusions.table.loc[choice.recipe]
    return (
        f"The fastest recipe whose {limit} vs the baseline even at {bound} (non-inferiority) "
        f"is {choice.recipe}: {_figures(row, conclusions)}. {procedure(choice)}"
    )


def faster_verdicts(conclusions: Conclusions, max_drop: float) -> str:
    """What became of the faster recipes when none was found non-inferior: a real loss beyond
    the allowed drop (even the interval's better end is past it), or not resolved by these
    items (the interval straddles it), or within it by its own interval but not reached by
    the sequence, which stopped earlier (so not claimed)."""
    headline, table = conclusions.headline, conclusions.table
    faster = table.loc[list(conclusions.choice.sequence)]
    best, worst = best_case_drops(faster, headline), faster[DROP_HIGH]
    limit = max_drop + TOLERANCE
    beyond = [f"{r} (at least {_amount(headline.column, best[r])})" for r in faster.index
              if best[r] > limit]  # fmt: skip
    unresolved = [r for r in faster.index if best[r] <= limit < worst[r]]
    unreached = [r for r in faster.index if worst[r] <= limit]
    parts = []
    if beyond:
        parts.append(f"Faster but losing more than allowed at either end of the interval: "
                     f"{_some(beyond)}.")  # fmt: skip
    if unresolved:
        parts.append(f"Faster, and neither within nor beyond the allowed drop on these "
                     f"{_items(conclusions)}: {_some(unresolved)}.")  # fmt: skip
    if unreached:
        parts.append(f"Within it by their own intervals but after the sequence stopped, so not "
                     f"claimed: {_some(unreached)}.")  # fmt: skip
    return " ".join(parts) + " " if parts else ""


def _some(recipes: list[str], shown: int = 3) -> str:
    """The first ``shown`` recipes (the slowest, in the sequence's order), then how many more:
    a search's first line would otherwise list dozens."""
    more = len(recipes) - shown
    return ", ".join(recipes[:shown]) + (f" and {more} more (the recipe table)" if more > 0 else "")


def _items(conclusions: Conclusions) -> str:
    power = conclusions.power
    return f"{power.items:,} items" if power is not None else "items"


def power_warning(conclusions: Conclusions, max_drop: float) -> str:
    """A warning when the allowed drop is smaller than what the eval set can detect."""
    power = conclusions.power
    if power is None or power.discordance == 0 or max_drop >= power.drop:
        return ""
    return (
        f"Warning: --max-quality-drop {max_drop:g} is below what the {power.items} evaluation "
        f"items can resolve: at {POWER:.0%} power McNemar's test detects {power.reach}, given "
        f"{power.basis}; evaluate on more items."
    )


def _uncertainty(conclusions: Conclusions) -> str:
    if not conclusions.intervals:
        return (
            "Intervals are unavailable: the records hold no ratios.intervals (sweeps from "
            "before per-item outcomes), so these are point estimates."
        )
    if conclusions.choice is None and conclusions.headline is not None:
        what = label(conclusions.headline.column)
        return f"No interval of {what} was recorded, so the choice rests on point estimates."
    return ""


def _best(results: Results, max_drop: float) -> list[str]:
    conclusions = results.conclusions
    if conclusions.choice is None:
        return [_point_best(results, max_drop), _uncertainty(conclusions)]
    return [_non_inferior(conclusions, max_drop), power_warning(conclusions, max_drop)]


def summary(results: Results, options: Options) -> str:
    parts = [results.unlearned or "", _jobs(results), *data_lines(results.runs.ok)]
    if results.runs.factors:
        verdicts = "; ".join(
            _verdict(anova, options.alpha, results.item_tests.get(anova.response))
            for anova in results.anovas
        )
        parts.append(f"Factors: {', '.join(results.runs.factors)}.")
        parts.append(f"Significant at alpha = {options.alpha:g}: {verdicts}.")
    else:
        parts.append("No factor varies across the successful runs: nothing to test.")
    parts += [SPEED_ONLY] if results.unlearned else _best(results, options.max_quality_drop)
    warned = [response_name(a) for a in results.anovas if a.warnings]
    if warned:
        parts.append(f"See the warnings for {', '.join(warned)}.")
    return " ".join(part for part in parts if part)
