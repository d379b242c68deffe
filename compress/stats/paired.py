"""Paired comparisons of a compressed model against its baseline on the same items.

Both models answer the same evaluation items (and are timed in the same measurement rounds), so
the comparisons here resample or test *pairs*: item-to-item difficulty, shared by both models,
cancels out, and the intervals are much narrower than two independent ones would be.
Bootstraps use the percentile method on one seeded (resamples, n) index matrix: reproducible,
vectorised, and assumption-light for means, medians and ratios alike."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

# A name from _STATISTICS or a numpy-style reducer called as f(x, axis=-1).
Statistic = str | Callable[..., np.ndarray]
_STATISTICS: dict[str, Callable[..., np.ndarray]] = {"mean": np.mean, "median": np.median}
# Index-matrix cells drawn per batch: bounds memory (~128 MiB of indices) for large n.
_MAX_CELLS = 2**24


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval over ``n`` paired units."""

    estimate: float
    low: float
    high: float
    n: int
    method: str
    confidence: float = 0.95

    def to_dict(self) -> dict[str, float | int | str]:
        """Plain Python scalars, ready for ``json.dump``."""
        return {
            "estimate": float(self.estimate),
            "low": float(self.low),
            "high": float(self.high),
            "n": int(self.n),
            "method": self.method,
            "confidence": float(self.confidence),
        }

    def contains(self, value: float) -> bool:
        return bool(self.low <= value <= self.high)


def paired_values(baseline: ArrayLike, compressed: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Two finite 1-D float arrays of equal length (at least 2), or a ValueError saying why."""
    b = np.asarray(baseline, dtype=float)
    c = np.asarray(compressed, dtype=float)
    if b.ndim != 1 or b.shape != c.shape:
        raise ValueError(f"need two 1-D arrays of equal length, got {b.shape} and {c.shape}")
    if len(b) < 2:
        raise ValueError("need at least 2 paired values")
    if not (np.isfinite(b).all() and np.isfinite(c).all()):
        raise ValueError("paired values must be finite")
    return b, c


def _reducer(statistic: Statistic) -> tuple[Callable[..., np.ndarray], str]:
    if callable(statistic):
        return statistic, getattr(statistic, "__name__", "statistic")
    if statistic not in _STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}; use one of {sorted(_STATISTICS)}")
    return _STATISTICS[statistic], statistic


def _replicates(
    columns: tuple[np.ndarray, ...], fn: Callable[..., np.ndarray], resamples: int, seed: int
) -> np.ndarray:
    """``fn`` of the columns resampled jointly: the same item indices for every column, which is
    what keeps the pairs together. ``fn`` reduces the last axis of (batch, n) arrays."""
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    n = len(columns[0])
    rng = np.random.default_rng(seed)
    batch = max(1, _MAX_CELLS // n)
    out = []
    for start in range(0, resamples, batch):
        idx = rng.integers(0, n, size=(min(batch, resamples - start), n))
        out.append(fn(*(column[idx] for column in columns)))
    return np.concatenate(out)


def _percentile(
    estimate: float, replicates: np.ndarray, n: int, method: str, confidence: float
) -> Interval:
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie strictly between 0 and 1")
    tail = (1 - confidence) / 2
    low, high = np.quantile(replicates, [tail, 1 - tail])
    return Interval(float(estimate), float(low), float(high), n, method, confidence)


def _method(what: str, resamples: int, seed: int) -> str:
    return f"paired bootstrap of {what}, percentile, {resamples} resamples, seed {seed}"


def joint_bootstrap(
    columns: tuple[np.ndarray, ...],
    difference: Callable[..., np.ndarray],
    what: str,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Interval:
    """Interval of ``difference(*columns)`` over items, resampling item indices jointly for
    every column: ``difference`` maps (batch, n) arrays to (batch,) values (a metric of the
    compressed model minus that of the baseline). Replicates where the metric is undefined
    (NaN: a resample without a class) are left out."""
    n = len(columns[0])
    if n < 2 or any(len(column) != n for column in columns):
        raise ValueError("need at least 2 items and columns of equal length")
    estimate = float(difference(*(column[None] for column in columns))[0])
    reps = _replicates(columns, difference, resamples, seed)
    return _percentile(estimate, reps[~np.isnan(reps)], n, _method(what, resamples, seed),
                       confidence)  # fmt: skip


def paired_bootstrap(
    baseline: ArrayLike,
    compressed: ArrayLike,
    statistic: Statistic = "mean",
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Interval:
    """Interval of statistic(compressed) - statistic(baseline) over items (e.g. the accuracy
    difference from per-item 0/1 correctness), resampling item indices jointly."""
    b, c = paired_values(baseline, compressed)
    fn, name = _reducer(statistic)
    estimate = fn(c, axis=-1) - fn(b, axis=-1)
    reps = _replicates((b, c), lambda rb, rc: fn(rc, axis=-1) - fn(rb, axis=-1), resamples, seed)
    what = f"{name}(compressed) - {name}(baseline)"
    return _percentile(estimate, reps, len(b), _method(what, resamples, seed), confidence)


def paired_ratio_bootstrap(
    baseline_samples: ArrayLike,
    compressed_samples: ArrayLike,
    statistic: Statistic = "median",
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Interval:
    """Interval of statistic(compressed) / statistic(baseline) for timing samples paired by
    measurement round (sample i of both came from round i), resampling rounds jointly so that
    drift shared by a round (thermal state, background load) cancels. Pass latencies for the
    latency ratio, throughputs for the speed-up."""
    b, c = paired_values(baseline_samples, compressed_samples)
    if (b <= 0).any() or (c <= 0).any():
        raise ValueError("timing samples must be positive")
    fn, name = _reducer(statistic)
    estimate = fn(c, axis=-1) / fn(b, axis=-1)
    reps = _replicates((b, c), lambda rb, rc: fn(rc, axis=-1) / fn(rb, axis=-1), resamples, seed)
    what = f"{name}(compressed) / {name}(baseline)"
    return _percentile(estimate, reps, len(b), _method(what, resamples, seed), confidence)


def _correctness(values: ArrayLike) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype != bool and not np.isin(array, (0, 1)).all():
        raise ValueError("correctness must be boolean or 0/1")
    return array.astype(bool)


def mcnemar_exact(baseline_correct: ArrayLike, compressed_correct: ArrayLike) -> dict:
    """McNemar's exact test: did compression change accuracy on these items? Only discordant
    items carry information; under no change each is equally likely to go either way, so the
    p-value is an exact two-sided binomial test of b against b + c with p = 1/2. ``flips`` is
    the share of items whose correctness changed, (b + c) / n (Dutta et al. 2024): a recipe
    can keep its accuracy while changing many answers."""
    base = _correctness(baseline_correct)
    comp = _correctness(compressed_correct)
    if base.ndim != 1 or base.shape != comp.shape:
        raise ValueError(f"need two 1-D arrays of equal length, got {base.shape}, {comp.shape}")
    b = int((base & ~comp).sum())
    c = int((~base & comp).sum())
    table = [[int((base & comp).sum()), b], [c, int((~base & ~comp).sum())]]
    return {
        "b": b,
        "c": c,
        "discordant": b + c,
        "n": len(base),
        "flips": (b + c) / len(base),
        "p_value": float(mcnemar(table, exact=True).pvalue),
        "method": "McNemar exact (two-sided binomial test on the discordant pairs)",
    }


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values: controls the family-wise error rate over the
    comparisons of one report without assuming they are independent."""
    if len(p_values) == 0:
        return []
    return [float(p) for p in multipletests(list(p_values), method="holm")[1]]


def min_detectable_difference(
    n: int, discordance: float, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Smallest paired accuracy difference d that McNemar's test detects with this power on n
    items, given the proportion of discordant items psi.

    Connor (1987), "Sample size for testing differences in proportions for the paired-sample
    design", Biometrics 43:207-211, needs n = (z_{1-alpha/2} sqrt(psi) + z_{power}
    sqrt(psi - d^2))^2 / d^2 pairs; this solves that equation for d by brentq. The left side
    minus the right is increasing in d for power >= 0.5, so the root is unique. Returns
    ``math.inf`` when no difference is detectable (root beyond psi: |d| <= psi always)."""
    if n < 1 or not 0 <= discordance <= 1:
        raise ValueError("need n >= 1 and 0 <= discordance <= 1")
    if not 0 < alpha < 1 or not 0.5 <= power < 1:
        raise ValueError("need 0 < alpha < 1 and 0.5 <= power < 1")
    if discordance == 0:
        return math.inf
    z_alpha, z_power = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)

    def gap(d: float) -> float:
        needed = z_alpha * math.sqrt(discordance) + z_power * math.sqrt(discordance - d * d)
        return d * math.sqrt(n) - needed

    if gap(discordance) < 0:
        return math.inf
    return float(optimize.brentq(gap, 0.0, discordance, xtol=1e-12))
