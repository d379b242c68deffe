"""The baseline gate: the exact binomial test against the majority class (checked against the
binomial sum computed independently), the sign test against token frequencies, and what it
says when a baseline learned nothing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from compress.measure.gate import (
    diagnosis,
    headline,
    majority_gate,
    unigram_gate,
)
from compress.pipeline.baseline import baseline_notes


def _upper_tail(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


def test_the_p_value_is_the_binomial_upper_tail_at_the_majority_share():
    labels = np.array([0] * 60 + [1] * 30 + [2] * 10)  # majority share 0.6
    predictions = labels.copy()
    predictions[:30] = 1  # 70 of 100 right
    gate = majority_gate(labels, predictions)
    assert (gate["n"], gate["correct"], gate["majority_share"]) == (100, 70, 0.6)
    assert gate["p_value"] == pytest.approx(_upper_tail(70, 100, 0.6), rel=1e-9)
    assert gate["learned"] is (gate["p_value"] < 0.05) is True


def test_always_answering_the_majority_class_learned_nothing():
    labels = np.array([0] * 90 + [1] * 10)
    gate = majority_gate(labels, np.zeros(100, dtype=int))
    assert gate["accuracy"] == 0.9 and gate["p_value"] == pytest.approx(_upper_tail(90, 100, 0.9))
    assert gate["learned"] is False


def _training(improving: bool = False, steps: int = 50) -> dict:
    stopped = {
        "reason": "max_epochs" if improving else "early_stopping",
        "detail": "task.finetune.max_epochs=1 reached",
        "improving_at_stop": improving,
    }
    return {"steps": steps, "stopped": stopped, "best": {"validation_f1_macro": 0.31}}  # fmt: skip


@pytest.mark.parametrize(
    ("training", "rows", "why", "fix"),
    [
        (_training(improving=True), 5000, "too few steps", "task.finetune.max_epochs"),
        (_training(), 40, "too few rows (40 train rows for 3 classes)", "at least 60"),
        (_training(), 800, "labels unrelated to the text", "task.data.label_column"),
        (_training(steps=0), 800, "own head does not predict", "model.finetuned=false"),
    ],
)
def test_the_reason_and_the_fix_follow_from_how_training_went(training, rows, why, fix):
    reason, remedy = diagnosis(training, rows, 3)
    assert why in reason and fix in remedy


def test_the_headline_and_the_note_give_the_figures_the_reason_and_the_fix():
    gate = majority_gate(np.array([0] * 50 + [1] * 50), np.array([0] * 100))
    gate["reason"], gate["fix"] = diagnosis(_training(), 800, 2)
    text = headline(gate)
    assert text.startswith("the baseline learned nothing measurable (accuracy 0.500 vs 0.500")
    assert "exact binomial p = " in text and "; likely cause: labels unrelated" in text
    (note,) = baseline_notes({"gate": gate, "data": {}})
    assert note.startswith("no quality conclusion: ")


def test_a_language_model_must_beat_token_frequencies():
    rng = np.random.default_rng(0)
    text = rng.choice(50, size=2000, p=np.r_[[0.5], np.full(49, 0.5 / 49)])
    windows = dict(window=64, stride=32)
    # a model that knows the frequencies exactly (up to smoothing), and one that is uniform
    probabilities = np.bincount(text, minlength=100)[:100] + 1.0
    good_nll = -np.log(probabilities / probabilities.sum()) - 0.05  # a bit better
    from compress.measure.perplexity import strided_windows

    scored = [text[w.first_target : w.end] for w in strided_windows(len(text), **windows)]
    good = [float(good_nll[ids].sum()) for ids in scored]
    uniform = [len(ids) * math.log(100) for ids in scored]
    assert unigram_gate(good, text, text, 100, **windows)["learned"] is True
    failed = unigram_gate(uniform, text, text, 100, **windows)
    assert failed["learned"] is False and failed["won"] == 0
    assert failed["perplexity"] == pytest.approx(100)
    assert failed["reason"].startswith("untrained or mis-loaded weights (perplexity 100 ")
