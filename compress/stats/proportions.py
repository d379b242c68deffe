"""The difference of two paired proportions (the accuracy of a compressed model minus that of
its baseline on the same items): Tango's score interval.

Only the discordant items carry information: ``b`` the baseline gets right and the compressed
model wrong, ``c`` the other way round, out of ``n``. The difference is (c - b) / n. A
percentile bootstrap of it under-covers when few items change (n = 200 with 1% flipped one way:
0.88) and is [0, 0] when none does, so any margin would be "provably" met. Tango's interval
(Tango 1998, Statistics in Medicine 17:891-908) inverts the score test of each difference
under its constrained maximum-likelihood nuisance: it keeps its coverage at low discordance and
has width at zero discordance (about z^2 / (n + z^2) on each side, the score analogue of the
rule of three). ``docs/statistics.md`` holds its coverage table.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from compress.stats.paired import Interval

# Bisection steps on [-1, 1]: 2 * 2^-60 is far below any difference n items can resolve.
_STEPS = 60
METHOD = "Tango score interval of a paired difference of proportions"


def _score(b: np.ndarray, c: np.ndarray, n: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Tango's score statistic of the difference ``delta`` = (c - b) / n: decreasing in delta.

    In Tango's notation n12 = c, n21 = b; q21 is the maximum-likelihood probability of a
    baseline-only success under the constraint p12 - p21 = delta, the root of a quadratic."""
    quad_b = -c - b + (2 * n - c + b) * delta
    quad_c = -b * delta * (1 - delta)
    root = np.sqrt(np.maximum(quad_b * quad_b - 8 * n * quad_c, 0.0))
    q21 = (root - quad_b) / (4 * n)
    variance = n * (2 * q21 + delta * (1 - delta))
    return (c - b - n * delta) / np.sqrt(np.maximum(variance, np.finfo(float).tiny))


def tango_bounds(
    b: ArrayLike, c: ArrayLike, n: ArrayLike, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of Tango's interval for (c - b) / n, element-wise (vectorised for
    coverage simulations). Counts may be fractional: the means over runs of a recipe."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie strictly between 0 and 1")
    b, c, n = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (b, c, n)))
    if (b < 0).any() or (c < 0).any() or (b + c > n).any() or (n <= 0).any():
        raise ValueError("need 0 <= b, c and b + c <= n")
    z = stats.norm.ppf(0.5 + confidence / 2)
    estimate = (c - b) / n
    bounds = []
    for target, low, high in ((z, -1.0, estimate), (-z, estimate, 1.0)):
        low, high = np.broadcast_to(low, b.shape).copy(), np.broadcast_to(high, b.shape).copy()
        for _ in range(_STEPS):
            middle = (low + high) / 2
            right = _score(b, c, n, middle) > target  # the root lies above middle
            low, high = np.where(right, middle, low), np.where(right, high, middle)
        bounds.append((low + high) / 2)
    return bounds[0], bounds[1]


def discordant(baseline_correct: ArrayLike, compressed_correct: ArrayLike) -> tuple[int, int, int]:
    """``b`` (baseline right, compressed wrong), ``c`` (the reverse) and ``n`` of 0/1 pairs."""
    base, comp = np.asarray(baseline_correct), np.asarray(compressed_correct)
    for array in (base, comp):
        if array.dtype != bool and not np.isin(array, (0, 1)).all():
            raise ValueError("correctness must be boolean or 0/1")
    if base.ndim != 1 or base.shape != comp.shape or len(base) == 0:
        raise ValueError(f"need two 1-D arrays of equal length, got {base.shape}, {comp.shape}")
    base, comp = base.astype(bool), comp.astype(bool)
    return int((base & ~comp).sum()), int((~base & comp).sum()), len(base)


def tango_interval(b: float, c: float, n: int, confidence: float = 0.95) -> Interval:
    """Tango's interval of (c - b) / n as an :class:`Interval` over ``n`` items."""
    low, high = tango_bounds(b, c, n, confidence)
    return Interval((c - b) / n, float(low), float(high), int(n), METHOD, confidence)


def paired_proportion_difference(
    baseline_correct: ArrayLike, compressed_correct: ArrayLike, confidence: float = 0.95
) -> Interval:
    """Interval of mean(compressed) - mean(baseline) for per-item 0/1 outcomes (accuracy)."""
    b, c, n = discordant(baseline_correct, compressed_correct)
    return tango_interval(b, c, n, confidence)


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson's score interval of one proportion k / n of independent items (Wilson 1927): the
    share of prompts whose answer changed. Unlike the Wald interval it keeps width at k = 0 and
    k = n and stays inside [0, 1]."""
    if not 0 <= k <= n or n < 1:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    z = stats.norm.ppf(0.5 + confidence / 2)
    share = k / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    low, high = max(0.0, centre - half), min(1.0, centre + half)
    return Interval(share, float(low), float(high), n, f"Wilson score interval of {k}/{n}",
                    confidence)  # fmt: skip
