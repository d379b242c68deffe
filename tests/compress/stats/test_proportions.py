"""Tango's interval of a paired difference of proportions: a published example, its closed form
at zero discordance, and its coverage by simulation where few items change."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from compress.stats.coverage import (
    METHODS,
    Scenario,
    coverage_table,
    exact_coverage,
    scenarios,
    simulated_coverage,
)
from compress.stats.proportions import (
    discordant,
    paired_proportion_difference,
    tango_bounds,
    tango_interval,
)

TANGO, BOOTSTRAP = METHODS


def test_tango_matches_the_published_cavo_example():
    """Fagerland, Lydersen & Laake (2017), Statistical Analysis of Contingency Tables, ch. 8:
    complete response before and after consolidation therapy (Cavo et al. 2012), n12 = 6,
    n21 = 16 of 161 pairs; Tango's asymptotic score CI -0.0621 (-0.1240 to -0.0054)."""
    interval = tango_interval(b=16, c=6, n=161)
    assert interval.estimate == pytest.approx(-0.0621, abs=5e-5)
    assert (interval.low, interval.high) == pytest.approx((-0.1240, -0.0054), abs=5e-5)
    assert interval.n == 161 and "Tango" in interval.method


def test_zero_discordance_has_the_score_bound_not_a_point():
    """With b = c = 0 the constrained nuisance is 0 above the estimate and -delta below it, so
    the score equation n delta^2 = z^2 |delta| (1 - |delta|) gives |delta| = z^2 / (n + z^2)."""
    z2 = stats.norm.ppf(0.975) ** 2
    for n in (50, 200, 1000):
        low, high = tango_bounds(0, 0, n)
        assert (float(low), float(high)) == pytest.approx((-z2 / (n + z2), z2 / (n + z2)))
    interval = paired_proportion_difference(np.ones(200, bool), np.ones(200, bool))
    assert interval.low < 0 < interval.high and interval.estimate == 0


def test_swapping_the_models_negates_the_interval_and_confidence_widens_it():
    low, high = tango_bounds([3, 10, 0], [7, 2, 4], 300)
    swapped_low, swapped_high = tango_bounds([7, 2, 4], [3, 10, 0], 300)
    np.testing.assert_allclose(swapped_low, -high, atol=1e-12)
    np.testing.assert_allclose(swapped_high, -low, atol=1e-12)
    wide_low, wide_high = tango_bounds([3, 10, 0], [7, 2, 4], 300, confidence=0.99)
    assert (wide_low < low).all() and (wide_high > high).all()


def test_discordant_counts_and_bad_input():
    base = np.array([1, 1, 1, 0, 0, 1])
    comp = np.array([1, 0, 0, 1, 0, 1])
    assert discordant(base, comp) == (2, 1, 6)
    with pytest.raises(ValueError, match="0/1"):
        discordant([0, 2], [0, 1])
    with pytest.raises(ValueError, match="equal length"):
        discordant([0, 1], [1])
    with pytest.raises(ValueError, match="b \\+ c <= n"):
        tango_bounds(5, 6, 10)


@pytest.mark.parametrize("scenario", scenarios(), ids=str)
def test_tango_keeps_its_coverage_where_few_items_change(scenario: Scenario):
    """20000 simulated evaluations per scenario (Monte-Carlo SE about 0.0015). Coverage is at
    least 0.93 everywhere and at most 0.97 where items change, except at n = 200 with 1%
    discordance: 2 expected discordant items, where no interval at least as conservative as
    the mid-p one can exclude the truth more often (see docs/statistics.md), so 0.985."""
    coverage, width = simulated_coverage(TANGO, scenario, datasets=20000, seed=11)
    assert coverage >= 0.93
    assert width > 0
    if scenario.discordance > 0:
        few = scenario.n * scenario.discordance < 5
        assert coverage <= (0.99 if few else 0.97)
    assert coverage == pytest.approx(exact_coverage(scenario), abs=4 * 0.0015)


def test_the_percentile_bootstrap_it_replaces_under_covers_and_collapses():
    """The defect: n = 200 with 1% of items flipped right to wrong covers about 0.87, and no
    changed item gives the point [0, 0]."""
    one_way = Scenario(200, 0.01, "one-directional")
    coverage, _ = simulated_coverage(BOOTSTRAP, one_way, datasets=2000, seed=3)
    assert coverage < 0.9
    _, width = simulated_coverage(BOOTSTRAP, Scenario(200, 0.0, "one-directional"), 2000)
    assert width == 0


def test_coverage_table_lists_every_method_and_scenario():
    table = coverage_table(datasets=200)
    assert len(table) == len(METHODS) * len(scenarios())
    assert set(table["n"]) == {200, 1000} and set(table["discordance"]) == {0.0, 0.01, 0.1}
    assert table.loc[table["method"] == TANGO, "exact coverage"].notna().all()


@pytest.mark.parametrize(("k", "n"), [(0, 48), (3, 48), (24, 48), (48, 48), (1, 1)])
def test_wilson_interval_matches_statsmodels(k, n):
    from statsmodels.stats.proportion import proportion_confint

    from compress.stats.proportions import wilson_interval

    interval = wilson_interval(k, n)
    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert interval.estimate == k / n and interval.n == n
    assert (interval.low, interval.high) == pytest.approx((low, high), abs=1e-12)
