"""BLEU, ROUGE and exact match: perfect on identical texts, lower otherwise."""

from __future__ import annotations

import pytest

from compress.measure.text_quality import bleu, exact_match, fidelity, rouge, text_quality

ANSWERS = ["Artificial intelligence is the branch of engineering and science.",
           "I am written in Python, a programming language."]  # fmt: skip


def test_identical_texts_score_perfectly():
    assert bleu(ANSWERS, [[a] for a in ANSWERS]) == pytest.approx(100.0)
    assert rouge(ANSWERS, [[a] for a in ANSWERS]) == pytest.approx(
        {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    )
    assert fidelity(ANSWERS, ANSWERS) == pytest.approx(
        {"bleu_vs_baseline": 100.0, "rougeL_vs_baseline": 1.0, "exact_match_vs_baseline": 1.0}
    )


def test_any_of_several_references_counts():
    references = [["Something else entirely.", ANSWERS[0]], [ANSWERS[1]]]
    assert text_quality(ANSWERS, references) == pytest.approx(
        {"bleu": 100.0, "rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    )


def test_different_texts_score_lower():
    changed = ["Artificial intelligence is a branch of science.", "Python."]
    quality = text_quality(changed, [[a] for a in ANSWERS])
    assert 0 < quality["bleu"] < 100
    assert 0 < quality["rouge2"] < quality["rouge1"] < 1
    assert exact_match(changed, ANSWERS) == 0.0
    assert exact_match([changed[0], ANSWERS[1]], ANSWERS) == 0.5
