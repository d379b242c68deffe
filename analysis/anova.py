"""ANOVA of one response: main effects and two-way interactions of the factors that vary,
fitted by formula with statsmodels, with effect sizes, Tukey HSD and assumption checks.

Factor columns are renamed to formula-safe names (factors may hold dots, ``bench.seq_len``,
or shadow formula functions, ``C``) and the rows of the table mapped back."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.formula.api import ols
from statsmodels.stats.anova import anova_lm

from analysis import AnalysisError
from analysis.checks import MIN_DF, assumption_checks, warnings_for
from analysis.load import level_label, ordered_levels
from analysis.responses import cli_name, label

Term = tuple[str, ...]
COLUMNS = ["df", "sum_sq", "mean_sq", "F", "PR(>F)", "eta_sq", "partial_eta_sq"]
NOT_EFFECTS = ("Intercept", "Residual")


@dataclass
class Anova:
    response: str
    log: bool
    formula: str  # with the real factor names, for display
    n: int
    table: pd.DataFrame | None = None  # index: "prune", "prune:quant", ..., "Residual"
    aliases: dict[str, list[str]] = field(default_factory=dict)  # term → effects aliased with it
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checks: pd.DataFrame | None = None  # test, groups, statistic, p
    tukey: dict[str, pd.DataFrame] = field(default_factory=dict)
    residuals: pd.Series | None = None

    def p_values(self) -> pd.Series:
        if self.table is None:
            return pd.Series(dtype=float)
        return self.table["PR(>F)"].drop(list(NOT_EFFECTS), errors="ignore")

    def significant(self, alpha: float) -> list[str]:
        return [term for term, p in self.p_values().items() if p < alpha]


def _parse_effect(effect: str, factors: list[str]) -> Term | None:
    parts = effect.split(":")
    return tuple(sorted(parts, key=factors.index)) if set(parts) <= set(factors) else None


def model_terms(
    factors: list[str], aliases: list[list[str]] = ()
) -> tuple[list[Term], dict[str, list[str]]]:
    """Main effects and two-way interactions. Of each alias group of a fractional design only
    one term stays: its main effect if it has one, else its first term."""
    terms: list[Term] = [(f,) for f in factors] + list(combinations(factors, 2))
    labels: dict[str, list[str]] = {}
    for group in aliases:
        members = [_parse_effect(effect, factors) for effect in group]
        present = [m for m in members if m in terms]
        if not present:
            continue
        keep = next((m for m in present if len(m) == 1), present[0])
        terms = [t for t in terms if t == keep or t not in present]
        labels[":".join(keep)] = [e for e, m in zip(group, members, strict=True) if m != keep]
    return terms, labels


def _term(term: Term, names: dict[str, str], typ: int) -> str:
    contrast = ", Sum" if typ == 3 else ""  # type III needs sum-to-zero contrasts
    return ":".join(f"C({names[f]}{contrast})" for f in term)


def formula(response: str, terms: list[Term], names: dict[str, str], typ: int) -> str:
    """``response ~ C(a) + C(b) + C(a):C(b)``, columns named by ``names``."""
    return f"{response} ~ {' + '.join(_term(t, names, typ) for t in terms) or '1'}"


def _safe_names(factors: list[str]) -> dict[str, str]:
    return {f: f"f{i}_" + re.sub(r"\W", "_", f) for i, f in enumerate(factors)}


def _fit(frame: pd.DataFrame, terms: list[Term], names: dict[str, str], typ: int):
    return ols(formula("y", terms, names, typ), data=frame).fit()


def _effect_sizes(table: pd.DataFrame, y: pd.Series) -> pd.DataFrame:
    """eta² = SS_effect / SS_total (corrected total); partial eta² = SS_effect / (SS_effect +
    SS_error)."""
    effects = table["sum_sq"].where(~table.index.isin(NOT_EFFECTS))
    ss_error = table.at["Residual", "sum_sq"]
    return table.assign(
        mean_sq=table["sum_sq"] / table["df"],
        eta_sq=effects / float(((y - y.mean()) ** 2).sum()),
        partial_eta_sq=effects / (effects + ss_error),
    )[COLUMNS]


def _tukey(frame: pd.DataFrame, column: str, mse: float, df: float, alpha: float) -> pd.DataFrame:
    """Tukey HSD (Tukey-Kramer when unbalanced) of one factor's level means, with the model's
    error mean square and df as R's ``TukeyHSD(aov(...))``: the other factors' effects stay
    out of the error."""
    groups = frame.groupby(column, observed=True)["y"]
    means, counts = groups.mean(), groups.size()
    q_critical = stats.studentized_range.ppf(1 - alpha, len(means), df)
    rows = []
    for low, high in combinations(means.index, 2):
        difference = means[high] - means[low]
        se = np.sqrt(mse / 2 * (1 / counts[low] + 1 / counts[high]))
        p = stats.studentized_range.sf(abs(difference) / se, len(means), df)
        margin = q_critical * se
        low_end, high_end = difference - margin, difference + margin
        significant = "yes" if p < alpha else "no"
        rows.append((f"{high} − {low}", difference, p, low_end, high_end, significant))
    columns = ["comparison", "difference", "p-adj", "lower", "upper", "significant"]
    return pd.DataFrame(rows, columns=columns)


def _prepare(ok: pd.DataFrame, response: str, factors: list[str], log: bool):
    data = ok.dropna(subset=[response])
    y = data[response].astype(float)
    if log:
        if (y <= 0).any():
            raise AnalysisError(f"cannot log-transform {response}: it has values <= 0")
        y = np.log(y)
    factors = [f for f in factors if data[f].map(level_label).nunique() > 1]
    names = _safe_names(factors)
    levels = {
        names[f]: pd.Categorical(data[f].map(level_label), categories=ordered_levels(data[f]))
        for f in factors
    }  # in numeric order where numeric: the first level is the reference of the contrasts
    frame = pd.DataFrame(levels, index=data.index).assign(y=y)
    return frame, factors, names


def _estimable(
    frame: pd.DataFrame, terms: list[Term], names: dict[str, str]
) -> tuple[list[Term], list[str]]:
    """The terms, in order, that each add as many independent columns as they have. A main
    effect whose levels always change with earlier factors', or an interaction with level
    combinations never run, cannot be estimated: it is left out, with a note."""
    kept: list[Term] = []
    notes = []
    for term in terms:
        if len(term) > 1 and any((factor,) not in kept for factor in term):
            continue  # an interaction of a factor left out
        exog = ols(formula("y", [*kept, term], names, 2), data=frame).exog
        if np.linalg.matrix_rank(exog) == exog.shape[1]:
            kept.append(term)
        elif len(term) == 1:
            notes.append(
                f"{term[0]} changes only together with the factors before it: it cannot be "
                "separated from them and is left out of the model."
            )
        else:
            notes.append(
                f"{':'.join(term)} cannot be estimated (some level combinations were never "
                "run): it is pooled into the error term."
            )
    return kept, notes


def _pooled(terms: list[Term], factors: list[str], replicated: bool) -> tuple[list[Term], str]:
    """Without replicates the highest interaction is the only estimate of error."""
    mains = [t for t in terms if len(t) == 1]
    if replicated or len(factors) < 2 or len(mains) == len(terms):
        return terms, ""
    if len(factors) == 2:
        note = f"No replicates: the highest interaction, {':'.join(factors)}, is pooled into "
        return mains, note + "the error term."
    return terms, "No replicates: the interactions of three or more factors form the error term."


def fit_anova(
    ok: pd.DataFrame,
    response: str,
    factors: list[str],
    *,
    typ: int = 2,
    alpha: float = 0.05,
    log: bool = False,
    aliases: list[list[str]] = (),
) -> Anova:
    """ANOVA of ``response`` over the successful runs ``ok``; one column per factor."""
    frame, factors, names = _prepare(ok, response, factors, log)
    shown = f"log({cli_name(response)})" if log else cli_name(response)
    own = {f: f for f in factors}  # the formula as shown, with the real factor names
    result = Anova(response, log, formula(shown, [(f,) for f in factors], own, typ), len(frame))
    if len(frame) < len(ok):
        result.notes.append(f"{len(ok) - len(frame)} successful runs lack {response}: left out.")
    if not factors or frame["y"].nunique() < 2:
        result.notes.append("Nothing to test: no factor varies, or the response never changes.")
        return result

    terms, aliased = model_terms(factors, aliases)
    terms, notes = _estimable(frame, terms, names)
    result.notes += notes
    factors = [term[0] for term in terms if len(term) == 1]
    replicated = frame.groupby(list(names.values()), observed=True).size().max() > 1
    terms, note = _pooled(terms, factors, replicated)
    result.notes += [note] if note else []
    model = _fit(frame, terms, names, typ)
    if model.df_resid < 1 and len(terms) > len(factors):
        terms = [t for t in terms if len(t) == 1]
        result.notes.append(
            "Too few runs for the two-way interactions and an error term: "
            "they are pooled into the error term."
        )
        model = _fit(frame, terms, names, typ)
    result.formula = formula(shown, terms, own, typ)
    result.aliases = {t: a for t, a in aliased.items() if tuple(t.split(":")) in terms}
    if model.df_resid < 1:
        result.notes.append("No degrees of freedom left for the error: add runs or replicates.")
        return result
    with np.errstate(divide="ignore", invalid="ignore"):
        table = anova_lm(model, typ=typ)
    labels = {_term(t, names, typ): ":".join(t) for t in terms}
    _test(result, table.rename(index=labels), model.resid, frame, names, alpha)
    return result


def _test(
    result: Anova,
    table: pd.DataFrame,
    residuals: pd.Series,
    frame: pd.DataFrame,
    names: dict[str, str],
    alpha: float,
) -> None:
    """Effect sizes, assumption checks and Tukey HSD from a fitted model's table."""
    result.table = _effect_sizes(table, frame["y"])
    if table.at["Residual", "sum_sq"] <= 1e-12 * table["sum_sq"].sum():
        result.warnings.append(
            f"The factors explain {label(result.response)} exactly (no residual variance): "
            "F and p are degenerate, read the effect sizes instead."
        )
        return
    result.residuals = residuals
    df_error = table.at["Residual", "df"]
    if df_error < MIN_DF:
        result.notes.append(
            f"With {df_error:g} error degree(s) of freedom the residuals are too "
            "constrained to check normality and equal variance."
        )
    else:
        levels = frame[list(names.values())].set_axis(list(names), axis=1)
        result.checks = assumption_checks(levels, residuals)
        result.warnings += warnings_for(result.checks, result.response, alpha, result.log)
    mse = table.at["Residual", "sum_sq"] / df_error
    for factor in result.significant(alpha):
        if factor in names:  # main effects only
            result.tukey[factor] = _tukey(frame, names[factor], mse, df_error, alpha)
