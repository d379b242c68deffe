"""The plain-language paragraph at the top of the report, also printed by the command."""

from __future__ import annotations

import pandas as pd

from analysis.anova import Anova
from analysis.baseline import SPEED_ONLY, data_lines
from analysis.comparison import DELTA, DROP_HIGH, POWER, RUNS, SIZE_RATIO, SPEED, Conclusions
from analysis.item_tests import ItemTest
from analysis.load import EXCLUDED
from analysis.pareto import DROP
from analysis.responses import higher_is_better, label
from analysis.results import Options, Results

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
        item = "item" if anova.response.startswith("compressed.quality") else "round"
        return (f"{response_name(anova)} ({item}-level model): "
                f"{', '.join(found) or 'no significant factor'}")  # fmt: skip
    names = {t: " = ".join([t, *aliases]) for t, aliases in anova.aliases.items()}
    significant = [
        f"{names.get(t, t)} ({_p_text(p)})" for t, p in anova.p_values().items() if p < alpha
    ]
    return f"{response_name(anova)}: {', '.join(significant) or 'no significant factor'}"


def constraint(quality: str, max_drop: float) -> str:
    if higher_is_better(quality):
        return f"{label(quality)} drops by at most {max_drop:g}"
    return f"{label(quality)} rises by at most {max_drop * 100:g}%"


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
    runs = int(row[RUNS])
    return text + (f" (means of its {runs} runs)" if runs > 1 else "")


def _non_inferior(conclusions: Conclusions, max_drop: float) -> str:
    quality, choice = conclusions.headline.column, conclusions.choice
    bound = f"the upper bound of its {conclusions.confidence:.0%} CI"
    if choice.recipe is None:
        upper = conclusions.table.at[choice.closest, DROP_HIGH]
        return (
            f"No recipe provably meets the constraint ({constraint(quality, max_drop)} vs the "
            f"baseline, at {bound}); the closest is {choice.closest}, whose drop is at most "
            f"{_amount(quality, upper)} at that bound."
        )
    row = conclusions.table.loc[choice.recipe]
    return (
        f"The fastest recipe whose {constraint(quality, max_drop)} vs the baseline even at "
        f"{bound} (non-inferiority) is {choice.recipe}: {_figures(row, conclusions)}."
    )


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
