"""Paired intervals and tests against statsmodels/scipy, textbook tables and simulation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from compress.stats.paired import (
    Interval,
    holm,
    mcnemar_exact,
    min_detectable_difference,
    paired_bootstrap,
    paired_ratio_bootstrap,
)


def _from_table(table: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-item correctness whose 2x2 table (rows: baseline right/wrong, columns: compressed
    right/wrong) is ``table``."""
    cells = [(True, True), (True, False), (False, True), (False, False)]
    counts = [table[0][0], table[0][1], table[1][0], table[1][1]]
    pairs = [cell for cell, count in zip(cells, counts, strict=True) for _ in range(count)]
    base, comp = zip(*pairs, strict=True)
    return np.array(base), np.array(comp)


def test_mcnemar_matches_statsmodels_on_agresti_approval_table():
    table = [[794, 150], [86, 570]]  # Agresti, presidential approval in two surveys
    result = mcnemar_exact(*_from_table(table))
    assert (result["b"], result["c"], result["discordant"], result["n"]) == (150, 86, 236, 1600)
    assert result["p_value"] == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-12)
    assert result["p_value"] == pytest.approx(stats.binomtest(86, 236).pvalue, rel=1e-9)
    assert 3e-5 < result["p_value"] < 4e-5


def test_mcnemar_small_table_matches_exact_binomial_by_hand():
    base, comp = _from_table([[20, 1], [9, 5]])
    result = mcnemar_exact(base.astype(int), comp.astype(int))  # 0/1 works like bool
    # two-sided: 2 * P(X <= 1), X ~ Binomial(10, 1/2) = 2 * (1 + 10) / 1024
    assert result["p_value"] == pytest.approx(22 / 1024, rel=1e-12)
    assert result["p_value"] == pytest.approx(stats.binomtest(1, 10).pvalue, rel=1e-12)
    assert (result["b"], result["c"]) == (1, 9)


def test_mcnemar_rejects_non_binary_and_unpaired_input():
    with pytest.raises(ValueError, match="0/1"):
        mcnemar_exact([0, 1, 2], [0, 1, 1])
    with pytest.raises(ValueError, match="equal length"):
        mcnemar_exact([True, False], [True])


def _correlated(n: int = 200, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Scores with large item-to-item spread shared by both models."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1, n)
    return base, base + 0.1 + rng.normal(0, 0.2, n)


def test_paired_bootstrap_agrees_with_scipy_percentile():
    base, comp = _correlated()
    ours = paired_bootstrap(base, comp, resamples=4000, seed=1)
    theirs = stats.bootstrap(
        (base, comp),
        lambda b, c, axis: c.mean(axis=axis) - b.mean(axis=axis),
        paired=True,
        vectorized=True,
        method="percentile",
        n_resamples=4000,
        rng=np.random.default_rng(2),
    )
    assert ours.estimate == pytest.approx(comp.mean() - base.mean(), abs=1e-12)
    # Monte-Carlo error of a 2.5% quantile from 4000 resamples is ~0.04 standard errors
    tolerance = 0.25 * theirs.standard_error
    assert ours.low == pytest.approx(theirs.confidence_interval.low, abs=tolerance)
    assert ours.high == pytest.approx(theirs.confidence_interval.high, abs=tolerance)


def test_paired_bootstrap_width_is_that_of_the_differences():
    base, comp = _correlated()
    interval = paired_bootstrap(base, comp)
    diff_se = np.std(comp - base, ddof=1) / np.sqrt(len(base))
    unpaired_se = np.sqrt((np.var(base, ddof=1) + np.var(comp, ddof=1)) / len(base))
    width = interval.high - interval.low
    assert width == pytest.approx(2 * 1.96 * diff_se, rel=0.1)
    assert width < 0.3 * 2 * 1.96 * unpaired_se


def test_paired_bootstrap_is_reproducible_and_says_how():
    base, comp = _correlated()
    first = paired_bootstrap(base, comp, statistic="median", seed=5)
    assert first == paired_bootstrap(base, comp, statistic="median", seed=5)
    assert first != paired_bootstrap(base, comp, statistic="median", seed=6)
    assert first.estimate == pytest.approx(np.median(comp) - np.median(base))
    assert "percentile, 2000 resamples, seed 5" in first.method
    assert "median" in first.method


def test_paired_bootstrap_covers_true_accuracy_difference():
    """1000 simulated evaluations of 500 items: baseline right with p = 0.8, compression flips
    each answer with p = 0.1, so accuracy changes by 0.2 * 0.1 - 0.8 * 0.1 = -0.06 in
    expectation. 1000 resamples per interval (not 2000) keep the test to a few seconds."""
    rng = np.random.default_rng(123)
    sims, n, truth = 1000, 500, -0.06
    base = rng.random((sims, n)) < 0.8
    comp = base ^ (rng.random((sims, n)) < 0.1)
    covered = [
        paired_bootstrap(base[k], comp[k], resamples=1000, seed=k).contains(truth)
        for k in range(sims)
    ]
    assert 0.93 <= np.mean(covered) <= 0.97


def test_ratio_of_exactly_halved_samples_is_exactly_half():
    base = np.arange(1, 41, dtype=float) * 0.25  # powers of two: halving is exact
    interval = paired_ratio_bootstrap(base, 0.5 * base)
    assert (interval.estimate, interval.low, interval.high) == pytest.approx((0.5, 0.5, 0.5))
    assert interval.n == 40


def test_ratio_resamples_rounds_jointly():
    """Round-to-round drift (30%) dwarfs the within-round noise (2%); resampling rounds
    together keeps it out of the interval of the 0.6 latency ratio."""
    rng = np.random.default_rng(11)
    drift = np.exp(rng.normal(0, 0.3, 50))
    base = 10 * drift * np.exp(rng.normal(0, 0.02, 50))
    comp = 6 * drift * np.exp(rng.normal(0, 0.02, 50))
    interval = paired_ratio_bootstrap(base, comp)
    assert interval.contains(0.6)
    assert interval.high - interval.low < 0.05
    with pytest.raises(ValueError, match="positive"):
        paired_ratio_bootstrap(base, np.r_[comp[:-1], 0.0])


def test_interval_serialises_to_plain_json():
    base, comp = _correlated()
    interval = paired_bootstrap(base, comp)
    loaded = json.loads(json.dumps(interval.to_dict()))
    assert Interval(**loaded) == interval
    assert interval.contains(interval.estimate)
    assert not interval.contains(interval.high + 1e-9)


def test_holm_equals_statsmodels_and_hand_values():
    p = [0.01, 0.04, 0.03, 0.005, 0.2]
    assert holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]))
    # sorted 0.005*5, 0.01*4, 0.03*3, max(0.04*2, 0.09), 0.2*1
    assert holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.2])
    assert holm([]) == []


def test_min_detectable_difference_monotone_and_closed_form():
    assert min_detectable_difference(2000, 0.1) < min_detectable_difference(500, 0.1)
    assert min_detectable_difference(1000, 0.05) < min_detectable_difference(1000, 0.2)
    # power 0.5 drops the second term: d = z_{0.975} sqrt(psi / n)
    expected = stats.norm.ppf(0.975) * math.sqrt(0.1 / 1000)
    assert min_detectable_difference(1000, 0.1, power=0.5) == pytest.approx(expected, rel=1e-9)
    d = min_detectable_difference(1000, 0.1)  # Connor's sample size for d is 1000 again
    z_a, z_b = stats.norm.ppf(0.975), stats.norm.ppf(0.8)
    n = (z_a * math.sqrt(0.1) + z_b * math.sqrt(0.1 - d * d)) ** 2 / d**2
    assert n == pytest.approx(1000, rel=1e-9)
    assert min_detectable_difference(100, 0.01) == math.inf  # ~1 discordant item expected
    assert min_detectable_difference(100, 0.0) == math.inf


def test_min_detectable_difference_has_the_power_by_simulation():
    """The exact test is a little conservative, so the simulated power sits just under 0.8."""
    n, psi = 400, 0.2
    d = min_detectable_difference(n, psi)
    counts = np.random.default_rng(0).multinomial(n, [(psi + d) / 2, (psi - d) / 2, 1 - psi], 5000)
    b, c = counts[:, 0], counts[:, 1]
    p = np.minimum(1.0, 2 * stats.binom.cdf(np.minimum(b, c), b + c, 0.5))
    assert 0.72 <= np.mean(p < 0.05) <= 0.85
