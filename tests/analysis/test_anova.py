"""ANOVA tables against a published example, statsmodels itself and model comparisons."""

from __future__ import annotations

from itertools import product

import numpy as np
import pandas as pd
import pytest
from statsmodels.formula.api import ols
from statsmodels.stats.anova import anova_lm

from analysis.anova import fit_anova, model_terms

# ToothGrowth (R datasets; Crampton 1947): tooth length of 60 guinea pigs, 10 per cell, by
# supplement (OJ, VC) and vitamin C dose (0.5, 1, 2 mg/day).
TOOTH_LENGTH = {
    ("VC", 0.5): [4.2, 11.5, 7.3, 5.8, 6.4, 10, 11.2, 11.2, 5.2, 7],
    ("VC", 1.0): [16.5, 16.5, 15.2, 17.3, 22.5, 17.3, 13.6, 14.5, 18.8, 15.5],
    ("VC", 2.0): [23.6, 18.5, 33.9, 25.5, 26.4, 32.5, 26.7, 21.5, 23.3, 29.5],
    ("OJ", 0.5): [15.2, 21.5, 17.6, 9.7, 14.5, 10, 8.2, 9.4, 16.5, 9.7],
    ("OJ", 1.0): [19.7, 23.3, 23.6, 26.4, 20, 25.2, 25.8, 21.2, 14.5, 27.3],
    ("OJ", 2.0): [25.5, 26.4, 22.4, 24.5, 24.8, 30.9, 26.4, 27.3, 29.4, 23],
}


def tooth_growth() -> pd.DataFrame:
    rows = [(s, d, x) for (s, d), xs in TOOTH_LENGTH.items() for x in xs]
    return pd.DataFrame(rows, columns=["supp", "dose", "len"])


def unbalanced(seed: int = 0) -> pd.DataFrame:
    """3 x 2 levels with 1 to 4 runs per cell and real main effects and interaction."""
    rng = np.random.default_rng(seed)
    counts = {("0.3", "fp32"): 2, ("0.3", "int8"): 3, ("0.5", "fp32"): 1,
              ("0.5", "int8"): 4, ("0.7", "fp32"): 2, ("0.7", "int8"): 3}  # fmt: skip
    rows = []
    for (prune, quant), n in counts.items():
        mean = 10 + 4 * float(prune) + 3 * (quant == "int8") + 5 * float(prune) * (quant == "int8")
        rows += [(prune, quant, mean + rng.normal()) for _ in range(n)]
    return pd.DataFrame(rows, columns=["prune", "quant", "y"])


def test_tooth_growth_matches_the_published_anova():
    # R: summary(aov(len ~ supp * factor(dose), ToothGrowth)), printed in countless textbooks:
    #             Df Sum Sq Mean Sq F value   Pr(>F)
    # supp         1  205.4   205.4  15.572 0.000231 ***
    # dose         2 2426.4  1213.2  92.000  < 2e-16 ***
    # supp:dose    2  108.3    54.2   4.107 0.021860 *
    # Residuals   54  712.1    13.2
    table = fit_anova(tooth_growth(), "len", ["supp", "dose"]).table
    assert table["df"].tolist() == [1, 2, 2, 54]
    assert table["F"].iloc[:3].round(3).tolist() == [15.572, 92.000, 4.107]
    assert table.at["supp", "PR(>F)"] == pytest.approx(0.000231, abs=5e-7)
    assert table.at["supp:dose", "PR(>F)"] == pytest.approx(0.021860, abs=5e-7)
    assert table.at["dose", "PR(>F)"] < 2e-16
    # Sums of squares to R's full precision (205.35 sits on a rounding edge in floating point)
    assert table["sum_sq"].tolist() == pytest.approx(
        [205.350, 2426.434, 108.319, 712.106], abs=1e-3
    )


@pytest.mark.parametrize(("typ", "contrast"), [(2, ""), (3, ", Sum")])
def test_equals_statsmodels_run_directly_on_the_same_table(typ: int, contrast: str):
    data = unbalanced()
    direct = anova_lm(ols(f"y ~ C(prune{contrast}) * C(quant{contrast})", data).fit(), typ=typ)
    ours = fit_anova(data, "y", ["prune", "quant"], typ=typ).table
    expected_rows = ["prune", "quant", "prune:quant", "Residual"]
    assert list(ours.index) == (["Intercept"] if typ == 3 else []) + expected_rows
    for column in ("df", "sum_sq", "F", "PR(>F)"):
        np.testing.assert_allclose(ours[column], direct[column], rtol=1e-10)


def _dummies(levels: pd.Series) -> np.ndarray:
    """Sum-to-zero coding: one column per level but the last, which is coded -1 everywhere."""
    names = sorted(levels.unique())
    codes = np.array([[(v == n) - (v == names[-1]) for n in names[:-1]] for v in levels])
    return codes.astype(float)


def _rss(y: np.ndarray, *blocks: np.ndarray) -> float:
    x = np.column_stack([np.ones(len(y)), *blocks])
    residual = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
    return float(residual @ residual)


def test_unbalanced_sums_of_squares_equal_model_comparisons():
    """Type II: each main effect adjusted for the other; type III: each term adjusted for all
    others under sum-to-zero coding. Computed here by least squares, without statsmodels."""
    data = unbalanced()
    y, a, b = data["y"].to_numpy(), _dummies(data["prune"]), _dummies(data["quant"])
    ab = np.column_stack([a[:, i] * b[:, j] for i, j in product(range(2), range(1))])
    full = _rss(y, a, b, ab)
    type2 = fit_anova(data, "y", ["prune", "quant"], typ=2).table["sum_sq"]
    type3 = fit_anova(data, "y", ["prune", "quant"], typ=3).table["sum_sq"]
    assert type2["prune"] == pytest.approx(_rss(y, b) - _rss(y, a, b), rel=1e-9)
    assert type2["quant"] == pytest.approx(_rss(y, a) - _rss(y, a, b), rel=1e-9)
    assert type2["prune:quant"] == pytest.approx(_rss(y, a, b) - full, rel=1e-9)
    assert type3["prune"] == pytest.approx(_rss(y, b, ab) - full, rel=1e-9)
    assert type3["quant"] == pytest.approx(_rss(y, a, ab) - full, rel=1e-9)
    assert type2["Residual"] == pytest.approx(full, rel=1e-9)
    assert type3["Residual"] == pytest.approx(full, rel=1e-9)
    assert abs(type2["prune"] - type3["prune"]) > 1e-3  # unbalanced: the two types differ


def test_replicated_balanced_design_keeps_the_interaction():
    data = tooth_growth()
    anova = fit_anova(data, "len", ["supp", "dose"])
    assert anova.formula == "len ~ C(supp) + C(dose) + C(supp):C(dose)"
    assert not any("pooled" in note for note in anova.notes)


def test_without_replicates_the_interaction_is_pooled_into_error():
    data = unbalanced().groupby(["prune", "quant"], as_index=False)["y"].first()  # 6 runs
    anova = fit_anova(data, "y", ["prune", "quant"])
    assert anova.formula == "y ~ C(prune) + C(quant)"
    assert list(anova.table.index) == ["prune", "quant", "Residual"]
    assert anova.table.at["Residual", "df"] == (3 - 1) * (2 - 1)
    assert "prune:quant, is pooled into the error term" in anova.notes[0]
    direct = anova_lm(ols("y ~ C(prune) + C(quant)", data).fit(), typ=2)
    np.testing.assert_allclose(anova.table["F"], direct["F"], rtol=1e-10)


def test_effect_sizes_by_hand():
    # One factor, groups {1, 3} and {5, 7}: grand mean 4, SS_total = 9+1+1+9 = 20,
    # SS_between = 2*(2-4)² + 2*(6-4)² = 16, SS_error = 4: eta² = partial eta² = 0.8.
    data = pd.DataFrame({"quant": ["fp32", "fp32", "int8", "int8"], "y": [1.0, 3, 5, 7]})
    table = fit_anova(data, "y", ["quant"]).table
    assert table.at["quant", "sum_sq"] == pytest.approx(16)
    assert table.at["quant", "mean_sq"] == pytest.approx(16)
    assert table.at["quant", "eta_sq"] == pytest.approx(0.8)
    assert table.at["quant", "partial_eta_sq"] == pytest.approx(0.8)
    assert np.isnan(table.at["Residual", "eta_sq"])


def test_effect_sizes_of_two_factors():
    data = tooth_growth()
    table = fit_anova(data, "len", ["supp", "dose"]).table
    ss_total = ((data["len"] - data["len"].mean()) ** 2).sum()
    effects = table.drop("Residual")
    np.testing.assert_allclose(effects["eta_sq"], effects["sum_sq"] / ss_total)
    np.testing.assert_allclose(
        effects["partial_eta_sq"],
        effects["sum_sq"] / (effects["sum_sq"] + table.at["Residual", "sum_sq"]),
    )
    assert table["sum_sq"].sum() == pytest.approx(ss_total)  # balanced: SS add up


def test_factor_names_with_dots_or_formula_words_work():
    data = tooth_growth().rename(columns={"supp": "bench.seq_len", "dose": "C"})
    table = fit_anova(data, "len", ["bench.seq_len", "C"]).table
    assert list(table.index) == ["bench.seq_len", "C", "bench.seq_len:C", "Residual"]
    assert table.at["C", "F"] == pytest.approx(92.0, abs=5e-4)


def test_tukey_uses_the_model_error_as_r_tukeyhsd():
    # R: TukeyHSD(aov(len ~ supp * factor(dose), ToothGrowth)), as printed in R tutorials:
    # $supp   VC-OJ   -3.700  -5.579828  -1.820172  0.0002312
    # $dose   1-0.5    9.130   6.362488  11.897512  0.0e+00
    #         2-0.5   15.495  12.727488  18.262512  0.0e+00
    #         2-1      6.365   3.597488   9.132512  2.7e-06
    tukey = fit_anova(tooth_growth(), "len", ["supp", "dose"]).tukey
    dose = tukey["dose"].set_index("comparison")
    assert list(dose.index) == ["1 − 0.5", "2 − 0.5", "2 − 1"]
    np.testing.assert_allclose(dose["difference"], [9.130, 15.495, 6.365], atol=5e-7)
    np.testing.assert_allclose(dose["lower"], [6.362488, 12.727488, 3.597488], atol=5e-7)
    np.testing.assert_allclose(dose["upper"], [11.897512, 18.262512, 9.132512], atol=5e-7)
    np.testing.assert_allclose(dose["p-adj"], [0, 0, 2.7e-06], atol=5e-8)
    supp = tukey["supp"].iloc[0]
    assert supp["comparison"] == "VC − OJ"
    assert [supp["lower"], supp["upper"]] == pytest.approx([-5.579828, -1.820172], abs=5e-7)
    assert supp["p-adj"] == pytest.approx(0.0002312, abs=5e-8)


def test_tukey_only_for_significant_factors():
    anova = fit_anova(tooth_growth(), "len", ["supp", "dose"], alpha=0.01)
    assert set(anova.tukey) == {"supp", "dose"}
    assert len(anova.tukey["dose"]) == 3  # pairs of 3 levels
    assert (anova.tukey["dose"]["significant"] == "yes").all()
    strict = fit_anova(tooth_growth(), "len", ["supp", "dose"], alpha=1e-5)
    assert set(strict.tukey) == {"dose"}


def test_unequal_variances_and_non_normal_residuals_are_flagged():
    rng = np.random.default_rng(1)
    spread = {"fp32": 0.1, "int8": 10.0}
    data = pd.DataFrame(
        [(q, 50 + rng.standard_exponential() * s) for q, s in spread.items() for _ in range(15)],
        columns=["quant", "compressed.speed.p50_ms"],
    )
    anova = fit_anova(data, "compressed.speed.p50_ms", ["quant"])
    assert set(anova.checks["test"]) == {"Shapiro–Wilk (normality)", "Levene (equal variance)"}
    assert any("Levene" in w and "--log latency" in w for w in anova.warnings)
    assert any("Shapiro" in w for w in anova.warnings)


def test_log_transform_fits_the_log_of_the_response():
    data = tooth_growth()
    anova = fit_anova(data, "len", ["supp", "dose"], log=True)
    direct = anova_lm(ols("np.log(len) ~ C(supp) * C(dose)", data).fit(), typ=2)
    np.testing.assert_allclose(anova.table["F"], direct["F"], rtol=1e-10)
    assert anova.formula.startswith("log(len) ~")


def test_nothing_to_test_without_a_varying_factor_or_response():
    data = pd.DataFrame({"quant": ["int8"] * 3, "y": [1.0, 2.0, 3.0]})
    assert fit_anova(data, "y", ["quant"]).table is None
    flat = pd.DataFrame({"quant": ["fp32", "int8"] * 2, "y": [1.0] * 4})
    assert fit_anova(flat, "y", ["quant"]).table is None


def test_aliased_interactions_keep_only_the_first_term():
    terms, labels = model_terms(
        ["a", "b", "c", "d"], [["a:b", "c:d"], ["a:c", "b:d"], ["d:a", "b:c"]]
    )
    assert terms == [("a",), ("b",), ("c",), ("d",), ("a", "b"), ("a", "c"), ("a", "d")]
    assert labels == {"a:b": ["c:d"], "a:c": ["b:d"], "a:d": ["b:c"]}


def test_a_term_aliased_with_a_main_effect_is_left_out():
    terms, labels = model_terms(["a", "b", "c"], [["a", "b:c"], ["a:b", "c"], ["b", "a:c"]])
    assert terms == [("a",), ("b",), ("c",)]
    assert labels == {"a": ["b:c"], "c": ["a:b"], "b": ["a:c"]}


def test_half_fraction_with_replicates_is_fitted_with_alias_labels():
    """2^(4-1), d = abc, two replicates: two-way effects are aliased in pairs."""
    rng = np.random.default_rng(2)
    runs = [(a, b, c, a * b * c) for a, b, c in product((-1, 1), repeat=3)]
    rows = [(*run, 5 + 2 * run[0] + run[0] * run[1] + rng.normal()) for run in runs * 2]
    data = pd.DataFrame(rows, columns=["a", "b", "c", "d", "y"])
    aliases = [["a:b", "c:d"], ["a:c", "b:d"], ["a:d", "b:c"]]
    anova = fit_anova(data, "y", ["a", "b", "c", "d"], aliases=aliases)
    assert list(anova.table.index) == ["a", "b", "c", "d", "a:b", "a:c", "a:d", "Residual"]
    assert anova.table.at["Residual", "df"] == 16 - 8
    assert anova.aliases == {"a:b": ["c:d"], "a:c": ["b:d"], "a:d": ["b:c"]}
    assert anova.significant(0.05)[:2] == ["a", "a:b"]


def test_saturated_fraction_pools_its_interactions():
    runs = [(a, b, c, a * b * c) for a, b, c in product((-1, 1), repeat=3)]
    data = pd.DataFrame(runs, columns=["a", "b", "c", "d"]).assign(y=np.arange(8.0) ** 1.5)
    aliases = [["a:b", "c:d"], ["a:c", "b:d"], ["a:d", "b:c"]]
    anova = fit_anova(data, "y", ["a", "b", "c", "d"], aliases=aliases)
    assert list(anova.table.index) == ["a", "b", "c", "d", "Residual"]
    assert anova.table.at["Residual", "df"] == 3
    assert any("two-way interactions" in note for note in anova.notes)


def test_a_factor_confounded_with_another_is_left_out():
    data = unbalanced().assign(warmup=lambda d: d["quant"].map({"fp32": 2, "int8": 5}))
    anova = fit_anova(data, "y", ["prune", "quant", "warmup"])
    assert list(anova.table.index) == ["prune", "quant", "prune:quant", "Residual"]
    assert anova.notes == [
        "warmup changes only together with the factors before it: it cannot be separated "
        "from them and is left out of the model."
    ]


def test_an_interaction_with_a_never_run_combination_is_pooled():
    data = unbalanced()
    data = data[(data["prune"] != "0.5") | (data["quant"] != "fp32")]
    anova = fit_anova(data, "y", ["prune", "quant"])
    assert list(anova.table.index) == ["prune", "quant", "Residual"]
    assert "prune:quant cannot be estimated" in anova.notes[0]
    direct = anova_lm(ols("y ~ C(prune) + C(quant)", data).fit(), typ=2)
    np.testing.assert_allclose(anova.table["F"], direct["F"], rtol=1e-10)
