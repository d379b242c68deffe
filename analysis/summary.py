"""The plain-language paragraph at the top of the report, also printed by the command."""

from __future__ import annotations

import pandas as pd

from analysis.anova import Anova
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


def _verdict(anova: Anova, alpha: float) -> str:
    if anova.table is None:
        return f"{response_name(anova)}: not tested (see its section)"
    names = {t: " = ".join([t, *aliases]) for t, aliases in anova.aliases.items()}
    significant = [
        f"{names.get(t, t)} ({_p_text(p)})" for t, p in anova.p_values().items() if p < alpha
    ]
    return f"{response_name(anova)}: {', '.join(significant) or 'no significant factor'}"


def _constraint(quality: str, max_drop: float) -> str:
    if higher_is_better(quality):
        return f"{label(quality)} drops by at most {max_drop:g}"
    return f"{label(quality)} rises by at most {max_drop:.0%}"


def _best(results: Results, max_drop: float) -> str:
    quality, best, table = results.quality, results.best, results.recipes
    if quality is None or DROP not in table:
        return "No quality metric with a baseline value was recorded, so no recipe is chosen."
    if best is None:
        closest = table[DROP].idxmin()
        return (
            f"No recipe meets the constraint ({_constraint(quality, max_drop)} vs the baseline);"
            f" the closest is {closest} (drop {table.at[closest, DROP]:.3g})."
        )
    ratios = [
        f"{best[c]:.2f}× the baseline's {what}"
        for c, what in RATIOS.items()
        if pd.notna(best.get(c))
    ]
    return (
        f"The fastest recipe whose {_constraint(quality, max_drop)} vs the baseline is "
        f"{best.name}: {label(quality)} {best[quality]:.4g} (drop {best[DROP]:.3g})"
        + "".join(f", {ratio}" for ratio in ratios)
        + "."
    )


def summary(results: Results, options: Options) -> str:
    parts = [_jobs(results)]
    if results.runs.factors:
        verdicts = "; ".join(_verdict(anova, options.alpha) for anova in results.anovas)
        parts.append(f"Factors: {', '.join(results.runs.factors)}.")
        parts.append(f"Significant at alpha = {options.alpha:g}: {verdicts}.")
    else:
        parts.append("No factor varies across the successful runs: nothing to test.")
    parts.append(_best(results, options.max_quality_drop))
    warned = [response_name(a) for a in results.anovas if a.warnings]
    if warned:
        parts.append(f"See the warnings for {', '.join(warned)}.")
    return " ".join(parts)
