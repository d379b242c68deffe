"""Per-token intervals over blocks (the perplexity ratio, the KL divergence from the baseline,
top-1 agreement): the scored windows of one running text are not
independent (neighbouring windows share their context and their topic), so they are grouped
into non-overlapping blocks of consecutive windows, and the blocks are the units.

With ``block_tokens`` = 2048 and windows scoring 256 new tokens each, a block is 8 windows: long
against the 512-token context any window sees, so blocks are close to independent, while 64k
evaluation tokens still make 32 of them. With so few units a percentile bootstrap of the
blocks is too narrow (simulated coverage 0.92 with independent blocks, 0.89 with neighbouring
windows correlated 0.4); the interval is Student's t over the blocks instead (the batch-means
interval: 0.94 for both; ``docs/statistics.md``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from compress.stats.paired import Interval, paired_values


def block_labels(tokens: ArrayLike, block_tokens: int) -> np.ndarray:
    """The block of each window (in text order): ``total // block_tokens`` blocks of
    consecutive windows with about equal scored tokens, at least 2 (as long as there are 2
    windows), at most one per window."""
    counts = np.asarray(tokens, dtype=float)
    if block_tokens < 1 or counts.ndim != 1 or len(counts) < 2 or (counts <= 0).any():
        raise ValueError("need 2 or more windows with positive token counts, block_tokens >= 1")
    blocks = int(min(len(counts), max(2, counts.sum() // block_tokens)))
    before = np.cumsum(counts) - counts  # scored tokens ahead of each window
    labels = np.floor(before / counts.sum() * blocks).astype(int)
    return np.unique(labels, return_inverse=True)[1]  # no empty block


def block_ratio_interval(
    sums: ArrayLike, tokens: ArrayLike, block_tokens: int, what: str, confidence: float = 0.95
) -> Interval:
    """Interval of a per-token mean, sum(sums) / sum(tokens), from each window's summed value
    and scored tokens (``what`` names the summed value in the method); ``n`` is the number of
    blocks.

    The standard error is the between-block spread of the linearised block residuals
    s_k - estimate * t_k (the ratio estimator's delta-method variance, with the K / (K - 1)
    correction), and the quantile Student's t with K - 1 degrees of freedom."""
    values = np.asarray(sums, dtype=float)
    if values.ndim != 1 or len(values) != len(np.asarray(tokens)) or not np.isfinite(values).all():
        raise ValueError("need one finite value per window")
    labels = block_labels(tokens, block_tokens)
    totals = np.bincount(labels, weights=values)
    counts = np.bincount(labels, weights=np.asarray(tokens, dtype=float))
    blocks = len(counts)
    estimate = totals.sum() / counts.sum()
    residuals = totals - estimate * counts
    error = np.sqrt(blocks / (blocks - 1) * (residuals**2).sum()) / counts.sum()
    quantile = stats.t.ppf(0.5 + confidence / 2, blocks - 1)
    method = (
        f"Student t over {blocks} non-overlapping blocks of consecutive windows (about "
        f"{block_tokens} scored tokens each) of {what}: sum of values / sum of tokens, "
        f"between-block standard error, {blocks - 1} df"
    )
    return Interval(float(estimate), float(estimate - quantile * error),
                    float(estimate + quantile * error), blocks, method, confidence)  # fmt: skip


def paired_block_interval(
    baseline_sums: ArrayLike,
    compressed_sums: ArrayLike,
    tokens: ArrayLike,
    block_tokens: int,
    confidence: float = 0.95,
) -> Interval:
    """Interval of the difference in NLL per token, compressed - baseline, from each window's
    summed NLL and scored tokens; ``n`` is the number of blocks (:func:`block_ratio_interval`
    of the windows' differences)."""
    baseline, compressed = paired_values(baseline_sums, compressed_sums)
    what = "NLL per token, compressed - baseline"
    return block_ratio_interval(compressed - baseline, tokens, block_tokens, what, confidence)
