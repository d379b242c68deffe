"""Checks of the ANOVA assumptions on the residuals, with plain-language warnings."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.responses import cli_name, label

MIN_DF = 3  # with fewer error degrees of freedom the residuals are tied to each other
COLUMNS = ["test", "groups", "statistic", "p"]


def _groupings(cells: pd.DataFrame) -> dict[str, pd.Series]:
    """Groups for Levene's test: the design cells when every cell has replicates, otherwise
    the levels of each factor on its own."""
    cell = cells.agg("|".join, axis=1)
    if cell.value_counts().min() > 1:
        return {"design cells": cell}
    return {factor: cells[factor] for factor in cells.columns}


def assumption_checks(levels: pd.DataFrame, residuals: pd.Series) -> pd.DataFrame:
    """Shapiro–Wilk on the residuals; Levene (median-centred) across groups of the design.
    ``levels`` holds one column of level labels per factor, on the index of ``residuals``."""
    rows = []
    if len(residuals) >= 3:
        rows.append(("Shapiro–Wilk (normality)", "residuals", *stats.shapiro(residuals)))
    for grouping, keys in _groupings(levels).items():
        samples = [residuals[keys == level] for level in keys.unique()]
        if min(map(len, samples)) > 1:
            with np.errstate(divide="ignore", invalid="ignore"):
                statistic, p = stats.levene(*samples)
            if np.isfinite(statistic):
                rows.append(("Levene (equal variance)", f"by {grouping}", statistic, p))
    return pd.DataFrame(rows, columns=COLUMNS)


def warnings_for(checks: pd.DataFrame, response: str, alpha: float, log: bool) -> list[str]:
    hint = "" if log else f"; a log transform (--log {cli_name(response)}) often helps"
    messages = []
    for test, groups, _, p in checks[checks["p"] < alpha].itertuples(index=False):
        if test.startswith("Shapiro"):
            messages.append(
                f"The residuals of {label(response)} do not look normal (Shapiro–Wilk "
                f"p = {p:.3g} < {alpha:g}): read p-values near alpha with care and look at the "
                f"Q-Q plot{hint}."
            )
        else:
            messages.append(
                f"The spread of {label(response)} differs {groups} (Levene p = {p:.3g} < "
                f"{alpha:g}): the F test assumes equal variances{hint}."
            )
    return messages
