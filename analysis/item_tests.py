"""Tests of the factors beside the per-job ANOVA: a binomial GEE of each held-out item's
correctness (accuracy), and an ANOVA of each job's paired log latency ratio over its timing
rounds (latency). Fitted once per analysis; the report shows them and the summary quotes them."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from itertools import combinations

import numpy as np
import pandas as pd
from statsmodels.tools.sm_exceptions import PerfectSeparationError

from analysis import AnalysisError
from analysis.item_model import fit_item_model, latency_model
from analysis.items import Outcomes, correctness, timings
from analysis.load import Runs
from analysis.responses import LATENCY, QUALITY

ACCURACY = f"{QUALITY}accuracy"  # item correctness is what accuracy averages
FIT_ERRORS = (AnalysisError, ValueError, np.linalg.LinAlgError, PerfectSeparationError)


@dataclass(frozen=True)
class ItemTest:
    intro: str
    table: pd.DataFrame | None  # one row per term; None when not fitted
    note: str  # why it was not fitted, or statsmodels' warnings
    columns: dict[str, str]  # display names of the table's columns
    p_column: str

    def p_values(self) -> dict[str, float]:
        if self.table is None:
            return {}
        rows = self.table.drop(index="Residual", errors="ignore")
        return {term_name(t): float(p) for t, p in rows[self.p_column].items()}


def estimable(levels: pd.DataFrame) -> bool:
    """Whether the level combinations present separate every main effect and two-way
    interaction. A fractional design or a missing recipe aliases some, and the fits would then
    return arbitrary tests (statsmodels only warns) instead of failing."""
    cells = levels.dropna().drop_duplicates().astype(str)
    mains = [pd.get_dummies(cells[f], drop_first=True, dtype=float).to_numpy() for f in cells]
    pairs = [
        np.einsum("ij,ik->ijk", a, b).reshape(len(cells), -1) for a, b in combinations(mains, 2)
    ]
    design = np.hstack([np.ones((len(cells), 1)), *mains, *pairs])
    return int(np.linalg.matrix_rank(design)) == design.shape[1]


def _fit(fit: Callable[[], pd.DataFrame], levels: pd.DataFrame) -> tuple[pd.DataFrame | None, str]:
    """The table ``fit`` returns and statsmodels' warnings, or None and a one-line reason."""
    if not estimable(levels):
        return None, (
            "Not fitted: the recipes present cannot separate every main effect and two-way "
            "interaction (a fractional design or missing recipes alias some)."
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            table = fit()
        except FIT_ERRORS as error:
            return None, f"Not fitted: {(str(error) or type(error).__name__).splitlines()[0]}."
    ours = [w for w in caught if w.category.__module__.startswith("statsmodels")]
    return table, " ".join(dict.fromkeys(f"Warning: {w.message}" for w in ours))


def term_name(term: str) -> str:
    """``C(prune):C(quant)`` → ``prune:quant``, as the per-job ANOVA names terms."""
    return ":".join(part[2:-1] if part.startswith("C(") else part for part in term.split(":"))


def _wald_table(long: pd.DataFrame, factors: list[str]) -> pd.DataFrame:
    return fit_item_model(long, factors).wald_table().set_index("term")


def _accuracy_test(runs: Runs, outcomes: Outcomes) -> ItemTest:
    long = correctness(outcomes, runs.ok, runs.factors)
    intro = (
        f"Item-level model ({len(long)} rows: every item of {long['job'].nunique()} jobs): "
        "binomial GEE of each item's correctness on the factors and their two-way "
        "interactions, items as clusters (exchangeable correlation, robust errors); Wald "
        "chi-square test of each term, sum-to-zero contrasts."
    )
    columns = {"chi2": "chi²", "p_value": "p"}
    if long.groupby("item")["correct"].nunique().max() < 2:
        # no item changes between configurations: the robust covariance is singular and its
        # Wald tests arbitrary, while there is plainly no effect to find
        note = "Not fitted: every configuration gets every item equally right or wrong."
        return ItemTest(intro, None, note, columns, "p_value")
    table, note = _fit(partial(_wald_table, long, runs.factors), long[runs.factors])
    return ItemTest(intro, table, note, columns, "p_value")


def _latency_test(runs: Runs, outcomes: Outcomes) -> ItemTest:
    long = timings(outcomes, runs.ok, runs.factors)
    intro = (
        f"Job-level paired model ({long['job'].nunique()} jobs, {len(long)} timing rounds): "
        "each job's mean over its rounds of log(compressed ms / baseline ms), both models "
        "timed in the same round so that drift shared by the round cancels; the job, not the "
        "round, is the replicate (rounds of one job share its state of the machine). Type II "
        "ANOVA on the factors and their two-way interactions, or on the main effects alone "
        "when no recipe ran twice (the interactions then form the residual)."
    )
    table, note = _fit(partial(latency_model, long, runs.factors), long[runs.factors])
    return ItemTest(intro, table, note, {"sum_sq": "sum of squares", "PR(>F)": "p"}, "PR(>F)")


def item_tests(runs: Runs, outcomes: Outcomes, responses: list[str]) -> dict[str, ItemTest]:
    """The item-level test of each response that has one (accuracy, latency)."""
    tests = {}
    if runs.factors and ACCURACY in responses and outcomes.classification:
        tests[ACCURACY] = _accuracy_test(runs, outcomes)
    if runs.factors and LATENCY in responses and outcomes.rounds:
        tests[LATENCY] = _latency_test(runs, outcomes)
    return tests
