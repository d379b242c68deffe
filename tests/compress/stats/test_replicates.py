"""Intervals of a recipe over its runs: a t reference for timing, the pooled counts for accuracy,
and coverage where runs differ by more than their rounds show."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from compress.stats.proportions import tango_bounds, tango_interval
from compress.stats.replicates import accuracy_over_runs, ratio_over_runs


def test_ratio_over_runs_is_the_t_interval_of_the_log_ratios():
    ratios = np.array([0.44, 0.47, 0.45, 0.50])
    interval = ratio_over_runs(ratios)
    reference = stats.ttest_1samp(np.log(ratios), 0).confidence_interval(0.95)
    assert interval.estimate == pytest.approx(stats.gmean(ratios))
    assert (interval.low, interval.high) == pytest.approx(np.exp([reference.low, reference.high]))
    assert interval.n == 4 and "clustered by run" in interval.method
    with pytest.raises(ValueError, match="two or more"):
        ratio_over_runs([0.5])


def test_runs_are_the_units_when_each_run_drifts():
    """Each run's machine state shifts its log ratio (sd 0.08) far more than its 15 rounds of
    2% noise show. Pooling all rounds as one sample covers the true ratio 0.5 about a third of
    the time; t over 4 runs' ratios about 0.95."""
    rng = np.random.default_rng(0)
    sweeps, runs, rounds = 1000, 4, 15
    shift = rng.normal(0, 0.08, (sweeps, runs, 1))
    base = 100 * np.exp(rng.normal(0, 0.02, (sweeps, runs, rounds)))
    comp = 50 * np.exp(shift + rng.normal(0, 0.02, (sweeps, runs, rounds)))
    per_run = np.median(comp, axis=2) / np.median(base, axis=2)
    clustered = np.mean([ratio_over_runs(r).contains(0.5) for r in per_run])
    logs = np.log(comp / base).reshape(sweeps, -1)  # every round as if independent
    error = logs.std(axis=1, ddof=1) / np.sqrt(logs.shape[1])
    naive = np.mean(np.abs(logs.mean(axis=1) - np.log(0.5)) <= 1.96 * error)
    assert 0.93 <= clustered <= 0.97
    assert naive < 0.6


def test_accuracy_over_runs_pools_counts_of_the_same_items():
    single = accuracy_over_runs([6], [2], 200)
    assert single == tango_interval(6, 2, 200)
    copies = accuracy_over_runs([6, 6, 6], [2, 2, 2], 200)
    assert (copies.low, copies.high, copies.n) == (single.low, single.high, 200)
    differing = accuracy_over_runs([4, 8], [2, 2], 200)
    assert differing.estimate == pytest.approx((2 - 6) / 200) and differing.n == 200
    assert "mean discordant counts of 2 runs" in differing.method


def test_accuracy_over_runs_covers_the_seed_averaged_difference():
    """Two runs per recipe whose compressions differ: each item flips right to wrong with its
    own propensity (mean 3%), shared by the runs. The target, the expected accuracy change
    averaged over seeds, is -0.03 * 0.8 (only right answers can flip right to wrong)."""
    rng = np.random.default_rng(1)
    sweeps, n, runs = 3000, 400, 2
    right = rng.random((sweeps, n)) < 0.8
    propensity = rng.beta(0.3, 9.7, (sweeps, n))  # mean 0.03, strongly item-dependent
    flips = rng.random((sweeps, runs, n)) < propensity[:, None, :]
    b = (flips & right[:, None, :]).sum(axis=2)
    pooled, reference = accuracy_over_runs(b[0], [0, 0], n), tango_interval(b[0].mean(), 0, n)
    assert (pooled.low, pooled.high) == (reference.low, reference.high)
    low, high = tango_bounds(b.mean(axis=1), 0, n)  # the same, vectorised over sweeps
    assert np.mean((low <= -0.024) & (-0.024 <= high)) >= 0.95  # conservative, as argued
