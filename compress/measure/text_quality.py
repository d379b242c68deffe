"""Quality of generated text: corpus BLEU (sacrebleu, 0-100), ROUGE-1/2/L F-measure
(rouge-score, 0-1, best over a prompt's references, averaged over prompts), and the rate of
outputs identical to another model's."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np
import sacrebleu
from rouge_score import rouge_scorer

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


@cache
def _scorer() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU; ``references[i]`` holds every reference of hypothesis ``i``."""
    streams = max(len(refs) for refs in references)
    padded = [list(refs) + [None] * (streams - len(refs)) for refs in references]
    return float(
        sacrebleu.corpus_bleu(list(hypotheses), [list(s) for s in zip(*padded, strict=True)]).score
    )


def rouge(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    scores = [
        _scorer().score_multi(list(refs), hyp)
        for hyp, refs in zip(hypotheses, references, strict=True)
    ]
    return {kind: float(np.mean([s[kind].fmeasure for s in scores])) for kind in ROUGE_TYPES}


def sentence_scores(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]]
) -> dict[str, list[float]]:
    """Per-answer sentence BLEU (0-100, sacrebleu's smoothed sentence score) and ROUGE-L:
    the per-item outcomes of paired comparisons (their mean is not corpus BLEU)."""
    return {
        "bleu": [
            float(sacrebleu.sentence_bleu(hyp, list(refs)).score)
            for hyp, refs in zip(hypotheses, references, strict=True)
        ],
        "rougeL": [
            float(_scorer().score_multi(list(refs), hyp)["rougeL"].fmeasure)
            for hyp, refs in zip(hypotheses, references, strict=True)
        ],
    }


def exact_match(hypotheses: Sequence[str], others: Sequence[str]) -> float:
    pairs = list(zip(hypotheses, others, strict=True))
    return float(np.mean([a == b for a, b in pairs]))


def text_quality(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict:
    """BLEU and ROUGE of ``hypotheses`` against their references."""
    return {"bleu": bleu(hypotheses, references), **rouge(hypotheses, references)}


def fidelity(hypotheses: Sequence[str], reference_outputs: Sequence[str]) -> dict:
    """How closely ``hypotheses`` reproduce another model's outputs (the baseline's)."""
    single = [[text] for text in reference_outputs]
    return {
        "bleu_vs_baseline": bleu(hypotheses, single),
        "rougeL_vs_baseline": rouge(hypotheses, single)["rougeL"],
        "exact_match_vs_baseline": exact_match(hypotheses, reference_outputs),
    }
