"""Item-level GEE of correctness and the log-latency ANOVA on simulated sweeps."""

from __future__ import annotations

from itertools import product

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from statsmodels.stats.anova import anova_lm

from analysis import AnalysisError
from analysis.item_model import fit_item_model, job_log_ratios, latency_model


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


def test_coefficients_are_the_cell_logits_in_sum_contrasts():
    """The a x b model is saturated, so the GEE's fitted means are the observed cell accuracies
    whatever the working correlation: its coefficients follow by hand from the logits of the
    four cells (sum-to-zero contrasts: grand mean, half differences, interaction)."""
    long = _items()
    cells = long.groupby(["a", "b"])["correct"].mean()
    logit = np.log(cells / (1 - cells))
    grand = logit.mean()
    a_x = logit["x"].mean() - grand
    b_p = logit.xs("p", level="b").mean() - grand
    ab = logit[("x", "p")] - grand - a_x - b_p
    params = fit_item_model(long, ["a", "b"]).result.params.to_numpy()
    np.testing.assert_allclose(params, [grand, a_x, b_p, ab], atol=1e-6)


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


def _sweep_rounds(
    rng: np.random.Generator, jobs: int = 2, rounds: int = 15, effect_b: float = 0.0,
    job_sd: float = 0.05, drift_sd: float = 0.3,
) -> pd.DataFrame:  # fmt: skip
    """Timing rounds of a 2 x 2 sweep with ``jobs`` runs per recipe: a = y halves the latency,
    b multiplies it by exp(effect_b). Every job runs in its own state of the machine: a drift
    shared by both models (sd ``drift_sd`` in logs: cancels in the ratio) and a shift of the
    recipe alone (``job_sd``: the job-to-job variation the factors must be judged against);
    2% noise per round and model."""
    frames = []
    for job, (a, b, _) in enumerate(product("xy", "pq", range(jobs))):
        drift, shift = rng.normal(0, drift_sd), rng.normal(0, job_sd)
        effect = np.log(0.5) * (a == "y") + effect_b * (b == "q") + shift
        noise = rng.normal(0, 0.02, (2, rounds))
        frames.append(pd.DataFrame({
            "job": f"job{job}", "a": a, "b": b, "round": range(rounds),
            "baseline_ms": 100 * np.exp(drift + noise[0]),
            "compressed_ms": 100 * np.exp(drift + effect + noise[1]),
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def test_latency_model_is_the_anova_of_each_jobs_mean_log_ratio():
    long = _sweep_rounds(np.random.default_rng(0))
    table = latency_model(long, ["a", "b"])
    assert list(table.index) == ["C(a)", "C(b)", "C(a):C(b)", "Residual"]
    assert table.loc["C(a)", "PR(>F)"] < 0.001 and table.loc["C(b)", "PR(>F)"] > 0.05
    assert table.loc["Residual", "df"] == 8 - 4  # jobs, not rounds, are the replicates
    jobs = job_log_ratios(long, ["a", "b"])
    expected = np.log(long["compressed_ms"] / long["baseline_ms"]).groupby(long["job"]).mean()
    np.testing.assert_allclose(jobs.set_index("job")["log_ratio"], expected.loc[jobs["job"]])


def test_round_replicates_find_effects_that_job_replicates_do_not():
    """b does nothing, but every job shifts its recipe's latency a little (sd 0.05). Counting
    rounds as replicates of log(compressed ms), as the model did before, declares b
    significant in most sweeps; the per-job paired model in about 5% (60 sweeps)."""
    rng = np.random.default_rng(1)
    ours, rounds_as_replicates = [], []
    for _ in range(60):
        long = _sweep_rounds(rng)
        ours.append(latency_model(long, ["a", "b"]).loc["C(b)", "PR(>F)"] < 0.05)
        naive = smf.ols("np.log(compressed_ms) ~ C(a) * C(b)", data=long).fit()
        rounds_as_replicates.append(anova_lm(naive, typ=2).loc["C(b)", "PR(>F)"] < 0.05)
    assert np.mean(ours) <= 0.12
    assert np.mean(rounds_as_replicates) > 0.5


def test_latency_model_detects_a_real_effect_against_job_variation():
    rng = np.random.default_rng(2)
    found = [latency_model(_sweep_rounds(rng, effect_b=0.15), ["a", "b"]).loc["C(b)", "PR(>F)"]
             < 0.05 for _ in range(25)]  # fmt: skip
    assert np.mean(found) > 0.8


def test_one_job_per_recipe_pools_the_interactions_into_the_residual():
    table = latency_model(_sweep_rounds(np.random.default_rng(3), jobs=1), ["a", "b"])
    assert list(table.index) == ["C(a)", "C(b)", "Residual"]
    assert table.loc["Residual", "df"] == 1


@pytest.mark.filterwarnings("ignore:The design matrix is rank-deficient")
def test_latency_model_needs_jobs_and_positive_times():
    long = _sweep_rounds(np.random.default_rng(4), jobs=1)
    three_recipes = long[(long["a"] == "x") | (long["b"] == "p")]
    with pytest.raises(AnalysisError, match="no residual"):
        latency_model(three_recipes, ["a", "b"])
    with pytest.raises(AnalysisError, match="positive"):
        latency_model(long.assign(baseline_ms=0.0), ["a", "b"])
    with pytest.raises(AnalysisError, match="missing"):
        latency_model(long.drop(columns="job"), ["a", "b"])
