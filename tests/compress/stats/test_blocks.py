"""The perplexity interval over non-overlapping blocks of windows: the blocks, a one-sample t
reference, and coverage where neighbouring windows are correlated."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from compress.stats.blocks import block_labels, paired_block_interval


def test_blocks_are_consecutive_windows_of_about_equal_tokens():
    tokens = np.r_[511, np.full(254, 256), 100]  # a text's windows: the first scores 511
    labels = block_labels(tokens, 2048)
    assert labels[0] == 0 and (np.diff(labels) >= 0).all()  # consecutive, in text order
    assert labels.max() + 1 == tokens.sum() // 2048 == 32
    sizes = np.bincount(labels, weights=tokens)
    assert sizes.min() > 2048 - 2 * 511 and sizes.max() < 2048 + 2 * 511
    assert block_labels([40, 30, 30], 2048).tolist() == [0, 0, 1]  # still 2 blocks
    assert block_labels([10, 10], 1).tolist() == [0, 1]  # at most one block per window
    with pytest.raises(ValueError, match="2 or more windows"):
        block_labels([300], 2048)


def _correlated_windows(rng: np.random.Generator, sets: int, windows: int, phi: float):
    """NLL differences of ``windows`` 256-token windows, AR(1) with correlation ``phi`` between
    neighbours, mean 0.02 nats per token; ``sets`` independent texts at once."""
    noise = np.empty((sets, windows))
    noise[:, 0] = rng.normal(0, 1, sets)
    for w in range(1, windows):
        noise[:, w] = phi * noise[:, w - 1] + np.sqrt(1 - phi**2) * rng.normal(0, 1, sets)
    tokens = np.full(windows, 256.0)
    baseline = tokens * 3.0 + rng.normal(0, 20, (sets, windows))
    return tokens, baseline, baseline + tokens * (0.02 + 0.05 * noise)


def test_equal_blocks_give_the_one_sample_t_interval_of_block_means():
    tokens, baseline, compressed = _correlated_windows(np.random.default_rng(0), 1, 256, 0.3)
    interval = paired_block_interval(baseline[0], compressed[0], tokens, 2048)
    per_block = (compressed[0] - baseline[0]).reshape(32, 8).sum(1) / 2048
    reference = stats.ttest_1samp(per_block, 0).confidence_interval(0.95)
    assert interval.n == 32 and interval.estimate == pytest.approx(per_block.mean())
    assert (interval.low, interval.high) == pytest.approx((reference.low, reference.high))
    assert "32 non-overlapping blocks" in interval.method and "31 df" in interval.method


def test_a_different_model_without_effect_has_an_interval_around_zero():
    """The null arm differs from the baseline on every window, by noise of mean zero."""
    rng = np.random.default_rng(1)
    tokens = rng.integers(200, 300, 128).astype(float)
    baseline = tokens * 3.0
    compressed = baseline + rng.normal(0, 10, 128)
    interval = paired_block_interval(baseline, compressed, tokens, 2048)
    assert interval.low < 0 < interval.high and interval.high - interval.low > 1e-3


def _window_bootstrap_covers(difference: np.ndarray, tokens: np.ndarray, truth: float) -> bool:
    """What the record did before: a percentile bootstrap resampling windows as if they were
    independent, NLL per token recomputed per resample."""
    idx = np.random.default_rng(len(difference)).integers(0, len(tokens), (500, len(tokens)))
    low, high = np.quantile(difference[idx].sum(1) / tokens[idx].sum(1), [0.025, 0.975])
    return bool(low <= truth <= high)


def test_blocks_keep_coverage_where_windows_are_correlated_and_windows_do_not():
    """400 texts of 256 windows, neighbours correlated 0.4: resampling windows as if they were
    independent covers about 0.78; t over 32 blocks about 0.94."""
    tokens, baseline, compressed = _correlated_windows(np.random.default_rng(2), 400, 256, 0.4)
    blocks = [paired_block_interval(b, c, tokens, 2048).contains(0.02)
              for b, c in zip(baseline, compressed, strict=True)]  # fmt: skip
    windows = [_window_bootstrap_covers(c - b, tokens, 0.02)
               for b, c in zip(baseline, compressed, strict=True)]  # fmt: skip
    assert 0.91 <= np.mean(blocks) <= 0.98
    assert np.mean(windows) < 0.85


def test_block_ratio_interval_of_differences_is_the_paired_interval():
    from compress.stats.blocks import block_ratio_interval

    tokens, baseline, compressed = _correlated_windows(np.random.default_rng(2), 1, 64, 0.3)
    paired = paired_block_interval(baseline[0], compressed[0], tokens, 2048)
    direct = block_ratio_interval(compressed[0] - baseline[0], tokens, 2048, "differences")
    assert (direct.estimate, direct.low, direct.high, direct.n) == pytest.approx(
        (paired.estimate, paired.low, paired.high, paired.n)
    )
    with pytest.raises(ValueError, match="one finite value per window"):
        block_ratio_interval([1.0, np.nan], [10, 10], 10, "x")
