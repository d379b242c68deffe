"""Paired F1 and ROC-AUC intervals: the vectorised metrics against scikit-learn, and coverage of
the bootstrap intervals by simulation against population values."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from compress.stats.scores import f1, paired_f1_difference, paired_roc_auc_difference, roc_auc


def _classifier(n: int, classes: int, rng: np.random.Generator, noise: float = 1.0):
    labels = rng.integers(0, classes, n)
    logits = rng.normal(0, noise, (n, classes))
    logits[np.arange(n), labels] += 1.0
    scores = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return labels, scores


@pytest.mark.parametrize("classes", [2, 3, 5])
def test_vectorised_metrics_equal_scikit_learn(classes: int):
    rng = np.random.default_rng(classes)
    labels = rng.integers(0, classes, 300)
    logits = np.round(rng.normal(0, 1, (300, classes)), 1)  # ties, counted one half by both
    logits[np.arange(300), labels] += 1.0
    scores = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    predictions = scores.argmax(1)
    if classes == 5:
        predictions[predictions == 4] = 3  # a class never predicted: its F1 is 0
    average = "binary" if classes == 2 else "macro"
    expected = metrics.f1_score(labels, predictions, labels=list(range(classes)),
                                average=average, zero_division=0)  # fmt: skip
    assert f1(labels, predictions, classes) == pytest.approx(expected, abs=1e-12)
    if classes == 2:
        expected = metrics.roc_auc_score(labels, scores[:, 1])
    else:
        expected = metrics.roc_auc_score(labels, scores, multi_class="ovr",
                                         labels=list(range(classes)))  # fmt: skip
    assert roc_auc(labels, scores) == pytest.approx(expected, abs=1e-12)


def test_intervals_hold_the_observed_difference_and_say_how():
    rng = np.random.default_rng(0)
    labels, base = _classifier(400, 3, rng)
    comp = np.clip(base + rng.normal(0, 0.1, base.shape), 1e-6, None)
    comp /= comp.sum(1, keepdims=True)
    interval = paired_f1_difference(labels, base.argmax(1), comp.argmax(1), 3, seed=4)
    expected = metrics.f1_score(labels, comp.argmax(1), average="macro") - metrics.f1_score(
        labels, base.argmax(1), average="macro"
    )
    assert interval.estimate == pytest.approx(expected)
    assert interval.low < interval.estimate < interval.high and interval.n == 400
    assert "F1(compressed) - F1(baseline)" in interval.method and "seed 4" in interval.method
    auc = paired_roc_auc_difference(labels, base, comp, seed=4)
    assert auc.low < auc.estimate < auc.high
    with pytest.raises(ValueError, match="same items"):
        paired_f1_difference(labels[:-1], base.argmax(1), comp.argmax(1), 3)


def _population(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    """Binary items; the compressed model sees each item's evidence through extra noise, so it
    is truly a little worse on both metrics."""
    labels = rng.integers(0, 2, n)
    evidence = 1.2 * labels + rng.normal(0, 1, n)
    compressed = evidence + rng.normal(0, 0.5, n)
    scores = [np.stack([1 - s, s], 1) for s in (1 / (1 + np.exp(-(e - 0.6)))
                                                   for e in (evidence, compressed))]  # fmt: skip
    return labels, scores[0], scores[1]


def test_bootstrap_intervals_cover_the_population_differences():
    """Population differences from 400 000 items; 200 evaluations of 300 items, 400 resamples
    each. Coverage within 0.88-0.99 (Monte-Carlo SE about 0.015 at 0.95)."""
    labels, base, comp = _population(np.random.default_rng(1), 400_000)
    true_f1 = f1(labels, comp.argmax(1), 2) - f1(labels, base.argmax(1), 2)
    true_auc = roc_auc(labels, comp) - roc_auc(labels, base)
    assert true_f1 < -0.01 and true_auc < -0.01
    rng = np.random.default_rng(2)
    covered = {"f1": [], "auc": []}
    for k in range(200):
        y, b, c = _population(rng, 300)
        f1_interval = paired_f1_difference(y, b.argmax(1), c.argmax(1), 2, resamples=400, seed=k)
        auc_interval = paired_roc_auc_difference(y, b, c, resamples=400, seed=k)
        covered["f1"].append(f1_interval.contains(true_f1))
        covered["auc"].append(auc_interval.contains(true_auc))
    assert 0.88 <= np.mean(covered["f1"]) <= 0.99
    assert 0.88 <= np.mean(covered["auc"]) <= 0.99
