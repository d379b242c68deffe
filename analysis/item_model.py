"""Factor models beside the per-job ANOVA: which compression factors, and which interactions,
change quality and latency.

A sweep without replicates has no residual to test interactions against in a per-run ANOVA;
for quality the evaluation items supply it. Every configuration answers the same items, so the
per-item 0/1 correctness is modelled by a binomial GEE with items as clusters (an item that is
hard for one configuration is hard for all: exchangeable correlation, robust sandwich errors).

Timing rounds cannot play that part for latency: the rounds of one job share that job's state
of the machine, so treating them as replicates would count drift between jobs as an effect of
the factors. Latency is modelled as per-job paired summaries instead: each job's mean over its
rounds of log(compressed ms / baseline ms), both timed in the same round (drift shared by the
round cancels), with the job as the unit of replication."""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from statsmodels.genmod.generalized_estimating_equations import GEEResults
from statsmodels.stats.anova import anova_lm

from analysis import AnalysisError

Term = tuple[str, ...]


@dataclass
class ItemModel:
    """A fitted binomial GEE of item correctness; ``labels`` maps its formula terms (on
    formula-safe column names) to terms named by the factors, ``C(prune):C(quant)``."""

    result: GEEResults
    formula: str
    factors: list[str]
    labels: dict[str, str]

    def wald_table(self) -> pd.DataFrame:
        """One row per model term: a joint Wald chi-square test of all its coefficients.

        Sum-to-zero contrasts make each main-effect test the effect averaged over the other
        factors' levels (type III), not the effect at their reference levels."""
        table = self.result.wald_test_terms(skip_single=False, scalar=True).table
        table = table.drop(index="Intercept")
        return pd.DataFrame(
            {
                "term": [self.labels[t] for t in table.index],
                "df": table["df_constraint"].astype(int).to_numpy(),
                "chi2": table["statistic"].astype(float).to_numpy(),
                "p_value": table["pvalue"].astype(float).to_numpy(),
            }
        )


def _terms(factors: list[str], interactions: bool = True) -> list[Term]:
    """Main effects and (unless told otherwise) all two-way interactions."""
    return [(f,) for f in factors] + (list(combinations(factors, 2)) if interactions else [])


def _prepare(
    long: pd.DataFrame, factors: list[str], columns: list[str]
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Factor columns renamed to formula-safe names (factors may hold dots, ``bench.seq_len``,
    or shadow formula functions, ``C``) next to ``columns``, rows with gaps dropped."""
    if not factors or len(set(factors)) != len(factors):
        raise AnalysisError(f"need distinct factors, got {factors}")
    missing = [c for c in [*factors, *columns] if c not in long.columns]
    if missing:
        raise AnalysisError(f"columns missing from the table: {missing}")
    names = {f: f"f{i}_" + re.sub(r"\W", "_", f) for i, f in enumerate(factors)}
    frame = long[[*factors, *columns]].dropna().rename(columns=names)
    single = [f for f in factors if frame[names[f]].nunique() < 2]
    if single:
        raise AnalysisError(f"factors with a single level cannot be tested: {single}")
    return frame, names


def _formula(
    response: str, factors: list[str], names: dict[str, str], contrast: str,
    interactions: bool = True,
) -> tuple[str, dict[str, str]]:  # fmt: skip
    """``response ~ C(a) + C(b) + C(a):C(b)`` and the map of its terms to factor-named ones."""
    labels = {}
    for term in _terms(factors, interactions):
        formula_term = ":".join(f"C({names[f]}{contrast})" for f in term)
        labels[formula_term] = ":".join(f"C({f})" for f in term)
    return f"{response} ~ {' + '.join(labels)}", labels


def fit_item_model(
    long: pd.DataFrame, factors: list[str], response: str = "correct", cluster: str = "item"
) -> ItemModel:
    """Binomial GEE of ``response`` (0/1 per item and configuration) on the factors, their
    two-way interactions, items as clusters. ``long`` has one row per configuration and item;
    the same item id must mean the same evaluation example in every configuration."""
    frame, names = _prepare(long, factors, [response, cluster])
    y = frame.pop(response)
    if not y.isin([0, 1]).all():
        raise AnalysisError(f"{response} must be 0/1 or boolean")
    frame["y_"] = y.astype(int)
    formula, labels = _formula("y_", factors, names, ", Sum")
    model = smf.gee(
        formula,
        groups=cluster,
        data=frame,
        cov_struct=sm.cov_struct.Exchangeable(),
        family=sm.families.Binomial(),
    )
    return ItemModel(model.fit(), formula, list(factors), labels)


def job_log_ratios(long_rounds: pd.DataFrame, factors: list[str], job: str = "job") -> pd.DataFrame:
    """One row per job: its factor levels and ``log_ratio``, the mean over its timing rounds of
    log(compressed ms / baseline ms)."""
    missing = [c for c in (job, "baseline_ms", "compressed_ms") if c not in long_rounds]
    if missing:
        raise AnalysisError(f"columns missing from the rounds: {missing}")
    if not (long_rounds[["baseline_ms", "compressed_ms"]] > 0).all().all():
        raise AnalysisError("round times must be positive")
    ratios = np.log(long_rounds["compressed_ms"] / long_rounds["baseline_ms"])
    per_job = long_rounds.assign(log_ratio=ratios).groupby(job, sort=False)
    return per_job[factors].first().assign(log_ratio=per_job["log_ratio"].mean()).reset_index()


def latency_model(long_rounds: pd.DataFrame, factors: list[str], job: str = "job") -> pd.DataFrame:
    """Type II ANOVA of OLS ``log_ratio ~ C(a) * C(b)`` over jobs (``job_log_ratios``): effects
    on latency are multiplicative, and the paired ratio cancels what a round shares. With no
    recipe run twice the interactions leave no residual; then main effects only are fitted
    (the interactions pooled into the residual), and the table has no interaction rows."""
    jobs = job_log_ratios(long_rounds, factors, job)
    frame, names = _prepare(jobs, factors, ["log_ratio"])
    for interactions in (True, False):
        formula, labels = _formula("log_ratio", factors, names, "", interactions)
        fit = smf.ols(formula, data=frame).fit()
        if fit.df_resid >= 1:
            return anova_lm(fit, typ=2).rename(index=labels)
    raise AnalysisError("no residual degrees of freedom: run more jobs (another seed) per recipe")
