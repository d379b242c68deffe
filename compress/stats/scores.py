"""Paired intervals of the F1 and ROC-AUC differences of a compressed classifier and its
baseline, from the items both answered (``items.parquet``).

Neither metric is a mean over items, so neither has a closed-form paired interval as simple as
the accuracy's; both are bootstrapped over items, the same resampled items for both models.
A resample is a weight per item (how often it was drawn), so the items are sorted once and
every resample is a weighted sum. The metrics are those the record computes with
scikit-learn: F1 of class 1 for two classes, macro F1 over every class otherwise (0 for a
class never predicted nor present); ROC-AUC of class 1's score for two classes, else the macro
one-vs-rest ROC-AUC, ties counted one half.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from compress.stats.paired import Interval, joint_bootstrap


def f1(
    labels: np.ndarray, predictions: np.ndarray, classes: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """F1 of class 1 for two classes, else the macro mean; ``weights`` (..., items): how often
    each item counts (a bootstrap resample), once each by default."""
    weights = np.ones(len(labels)) if weights is None else weights
    per_class = []
    for k in range(1, 2) if classes == 2 else range(classes):
        predicted, actual = predictions == k, labels == k
        hits = 2 * (weights @ (predicted & actual))
        total = weights @ predicted + weights @ actual
        per_class.append(np.where(total > 0, hits / np.maximum(total, 1), 0.0))
    return np.mean(per_class, axis=0)


def _auc(positive: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mann-Whitney form of the ROC-AUC with weighted items: the weight of (positive, negative)
    pairs ranked right, ties one half, over all such pairs. Items are sorted once; each
    resample only re-weights them. NaN where one class is absent."""
    order = np.argsort(score, kind="stable")
    ranked = score[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])  # groups of equal scores
    w, pos = weights[..., order], positive[order]
    group_pos = np.add.reduceat(w * pos, starts, axis=-1)
    group_neg = np.add.reduceat(w * ~pos, starts, axis=-1)
    below = np.cumsum(group_neg, axis=-1) - group_neg
    right = (group_pos * (below + 0.5 * group_neg)).sum(-1)
    pairs = group_pos.sum(-1) * group_neg.sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pairs > 0, right / pairs, np.nan)


def roc_auc(
    labels: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """ROC-AUC from class scores (items x classes): of class 1 for two classes, else the macro
    one-vs-rest mean; ``weights`` as for :func:`f1`."""
    weights = np.ones(len(labels)) if weights is None else weights
    classes = scores.shape[-1]
    if classes == 2:
        return _auc(labels == 1, scores[:, 1], weights)
    return np.mean([_auc(labels == k, scores[:, k], weights) for k in range(classes)], axis=0)


def _counts(resampled: np.ndarray, n: int) -> np.ndarray:
    """How often each of ``n`` items was drawn, per row of resampled item indices."""
    rows = resampled.reshape(-1, n)
    offsets = (np.arange(len(rows)) * n)[:, None]
    return np.bincount((rows + offsets).ravel(), minlength=rows.size).reshape(rows.shape)


def _checked(labels: ArrayLike, *arrays: ArrayLike) -> list[np.ndarray]:
    converted = [np.asarray(labels), *(np.asarray(a) for a in arrays)]
    if any(len(a) != len(converted[0]) for a in converted):
        raise ValueError("labels and both models' outputs must cover the same items")
    return converted


def paired_f1_difference(
    labels: ArrayLike,
    baseline_predictions: ArrayLike,
    compressed_predictions: ArrayLike,
    classes: int,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Interval:
    """Interval of F1(compressed) - F1(baseline), items resampled jointly."""
    y, base, comp = _checked(labels, baseline_predictions, compressed_predictions)

    def difference(items: np.ndarray) -> np.ndarray:
        weights = _counts(items, len(y))
        return f1(y, comp, classes, weights) - f1(y, base, classes, weights)

    what = "F1(compressed) - F1(baseline)"
    return joint_bootstrap((np.arange(len(y)),), difference, what, resamples, seed, confidence)


def paired_roc_auc_difference(
    labels: ArrayLike,
    baseline_scores: ArrayLike,
    compressed_scores: ArrayLike,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Interval:
    """Interval of ROC-AUC(compressed) - ROC-AUC(baseline) from each item's class scores
    (items x classes), items resampled jointly."""
    y, base, comp = _checked(labels, baseline_scores, compressed_scores)

    def difference(items: np.ndarray) -> np.ndarray:
        weights = _counts(items, len(y))
        return roc_auc(y, comp, weights) - roc_auc(y, base, weights)

    what = "ROC-AUC(compressed) - ROC-AUC(baseline)"
    return joint_bootstrap((np.arange(len(y)),), difference, what, resamples, seed, confidence)
