"""Item-level GEE of correctness and the log-latency ANOVA on simulated sweeps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from statsmodels.stats.anova import anova_lm

from analysis import AnalysisError
from analysis.item_model import fit_item_model, latency_model


def _items(
    seed: int = 0,
    items: int = 300,
    levels_a: tuple[str, ...] = ("x", "y"),
    effect_a: float = 0.8,
    effect_a_at_q: float = 0.0,
) -> pd.DataFrame:
    """One row per configuration (a x b) and item; items differ in difficulty (shared by all
    configurations). Level i of ``a`` adds i * effect_a to the logit, and effect_a_at_q more
    where b = q; b itself does nothing."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(1.0, 1.0, items)
    frames = []
    for i, a in enumerate(levels_a):
        for b in ("p", "q"):
            logit = difficulty + i * (effect_a + (effect_a_at_q if b == "q" else 0.0))
            correct = rng.random(items) < 1 / (1 + np.exp(-logit))
            frame = pd.DataFrame({"item": np.arange(items), "correct": correct})
            frames.append(frame.assign(a=a, b=b))
    return pd.concat(frames, ignore_index=True)


def test_wald_table_flags_the_real_effect_only():
    table = fit_item_model(_items(), ["a", "b"]).wald_table()
    assert list(table.columns) == ["term", "df", "chi2", "p_value"]
    assert list(table["term"]) == ["C(a)", "C(b)", "C(a):C(b)"]
    p = table.set_index("term")["p_value"]
    assert p["C(a)"] < 0.01
    assert p["C(b)"] > 0.05
    assert list(table["df"]) == [1, 1, 1]


def test_coefficients_match_a_direct_gee_fit():
    long = _items()
    model = fit_item_model(long, ["a", "b"])
    direct = smf.gee(
        "correct ~ C(a, Sum) * C(b, Sum)",
        groups="item",
        data=long.assign(correct=long["correct"].astype(int)),
        cov_struct=sm.cov_struct.Exchangeable(),
        family=sm.families.Binomial(),
    ).fit()
    np.testing.assert_allclose(model.result.params.to_numpy(), direct.params.to_numpy(), atol=1e-8)
    np.testing.assert_allclose(model.result.bse.to_numpy(), direct.bse.to_numpy(), atol=1e-8)


def test_term_test_is_joint_over_all_its_coefficients():
    model = fit_item_model(_items(levels_a=("x", "y", "z")), ["a", "b"])
    row = model.wald_table().set_index("term").loc["C(a):C(b)"]
    names = list(model.result.params.index)
    columns = [i for i, name in enumerate(names) if ":" in name]
    contrast = np.eye(len(names))[columns]
    manual = model.result.wald_test(contrast, scalar=True)
    assert row["df"] == 2
    assert row["chi2"] == pytest.approx(float(manual.statistic), rel=1e-10)
    assert row["p_value"] == pytest.approx(float(manual.pvalue), rel=1e-10)


def test_main_effect_is_averaged_over_the_other_factor():
    """a only matters where b = q; a treatment-coded test of C(a) would test it at b = p."""
    long = _items(items=400, effect_a=0.0, effect_a_at_q=1.2, seed=2)
    p = fit_item_model(long, ["a", "b"]).wald_table().set_index("term")["p_value"]
    assert p["C(a)"] < 0.01
    assert p["C(a):C(b)"] < 0.01


def test_one_factor_and_unsafe_names():
    long = _items().rename(columns={"a": "bench.seq_len", "b": "C"})
    assert list(fit_item_model(long, ["bench.seq_len"]).wald_table()["term"]) == [
        "C(bench.seq_len)"
    ]
    terms = fit_item_model(long, ["bench.seq_len", "C"]).wald_table()["term"]
    assert list(terms) == ["C(bench.seq_len)", "C(C)", "C(bench.seq_len):C(C)"]


def test_item_model_rejects_unusable_input():
    long = _items(items=20)
    with pytest.raises(AnalysisError, match="single level"):
        fit_item_model(long[long["a"] == "x"], ["a", "b"])
    with pytest.raises(AnalysisError, match="0/1"):
        fit_item_model(long.assign(correct=2), ["a", "b"])
    with pytest.raises(AnalysisError, match="missing"):
        fit_item_model(long, ["a", "quant"])


def _timings(seed: int = 0, rounds: int = 5) -> pd.DataFrame:
    """a = y halves the latency; b does nothing; 5% multiplicative noise per round."""
    rng = np.random.default_rng(seed)
    rows = [
        {"a": a, "b": b, "ms": (5.0 if a == "y" else 10.0) * np.exp(rng.normal(0, 0.05))}
        for a in ("x", "y")
        for b in ("p", "q")
        for _ in range(rounds)
    ]
    return pd.DataFrame(rows)


def test_latency_model_is_the_type2_anova_of_log_ms():
    timings = _timings()
    table = latency_model(timings, ["a", "b"])
    assert list(table.index) == ["C(a)", "C(b)", "C(a):C(b)", "Residual"]
    assert table.loc["C(a)", "PR(>F)"] < 0.01
    assert table.loc["C(b)", "PR(>F)"] > 0.05
    direct = anova_lm(smf.ols("np.log(ms) ~ C(a) * C(b)", data=timings).fit(), typ=2)
    np.testing.assert_allclose(table.to_numpy(), direct.to_numpy(), rtol=1e-10)


def test_latency_model_needs_replicates_and_positive_times():
    with pytest.raises(AnalysisError, match="rounds"):
        latency_model(_timings(rounds=1), ["a", "b"])
    with pytest.raises(AnalysisError, match="positive"):
        latency_model(_timings().assign(ms=0.0), ["a", "b"])
