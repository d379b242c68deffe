"""The fixed-sequence procedure: its rule, and its family-wise error rate by simulation against
picking among recipes tested separately."""

from __future__ import annotations

import math

import numpy as np

from compress.stats.multiplicity import fixed_sequence


def test_testing_stops_at_the_first_failure():
    assert fixed_sequence([0.002, 0.008, 0.012, 0.001], 0.01) == 2
    assert fixed_sequence([0.02, 0.001], 0.01) == 0
    assert fixed_sequence([0.01, 0.0], 0.01) == 2  # on the limit counts as within
    assert fixed_sequence([0.001, math.nan, 0.001], 0.01) == 1
    assert fixed_sequence([], 0.01) == 0


def test_the_claim_keeps_its_error_rate_where_every_recipe_is_exactly_at_the_limit():
    """Five recipes, each truly losing exactly the allowed 0.01 (every non-inferiority claim
    would be wrong), each bound a 97.5% upper bound of a normal estimate. Choosing the fastest
    that passes on its own makes a false claim in 1 - 0.975^5 = 12% of sweeps; the fixed
    sequence in 2.5%."""
    rng = np.random.default_rng(0)
    sweeps, recipes, limit, error = 100_000, 5, 0.01, 0.004
    upper = rng.normal(limit, error, (sweeps, recipes)) + 1.959964 * error
    separately = (upper <= limit).any(axis=1).mean()
    sequence = np.mean([fixed_sequence(row, limit) > 0 for row in upper[:20_000]])
    assert abs(separately - (1 - 0.975**5)) < 0.005
    assert 0.02 <= sequence <= 0.03
