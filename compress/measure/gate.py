"""The baseline gate: did the baseline learn anything the held-out items can see?

A classifier is compared with the majority-class predictor, the constant answer that is right
most often on the held-out items themselves: an exact one-sided binomial test of its number of
correct answers against that predictor's accuracy (the "no-information rate" test of caret's
``confusionMatrix``). A language model (``task=lm``) is compared with the unigram model of the
calibration text (token frequencies, add-one smoothed): an exact sign test over the scored
windows, each won by the model with the lower NLL. A baseline that is not significantly better
learned nothing measurable, and no comparison of a compressed model with it says anything
about quality: the record says ``baseline.learned: false``, with the figures and what to try.
"""

from __future__ import annotations

import numpy as np

ALPHA = 0.05
# Fewer train rows per class than this, and a baseline that learned nothing, is "too few rows".
FEW_ROWS_PER_CLASS = 20
MAJORITY_TEST = (
    "exact binomial test, one-sided: P(X >= correct) for X ~ Binomial(n, majority share), "
    "the majority share being the most frequent class's share of the held-out items"
)


def majority_gate(labels: np.ndarray, predictions: np.ndarray, alpha: float = ALPHA) -> dict:
    """Whether ``predictions`` are right significantly more often than always answering the
    held-out items' most frequent class."""
    from scipy.stats import binomtest

    labels, predictions = np.asarray(labels), np.asarray(predictions)
    n = len(labels)
    classes, counts = np.unique(labels, return_counts=True)
    majority, share = int(classes[counts.argmax()]), float(counts.max() / n)
    correct = int((labels == predictions).sum())
    p_value = float(binomtest(correct, n, share, alternative="greater").pvalue) if n else 1.0
    return {
        "learned": p_value < alpha,
        "test": MAJORITY_TEST,
        "alpha": alpha,
        "n": n,
        "correct": correct,
        "accuracy": correct / n if n else None,
        "majority_class": majority,
        "majority_share": share,
        "p_value": p_value,
    }


UNIGRAM_TEST = (
    "exact sign test, one-sided: P(X >= windows won) for X ~ Binomial(windows, 1/2), a window "
    "won when the model's NLL of its scored tokens is below the unigram model's"
)


def unigram_gate(
    window_nll: list[float], calibration_ids: np.ndarray, eval_ids: np.ndarray, vocab: int,
    window: int, stride: int, alpha: float = ALPHA,
) -> dict:  # fmt: skip
    """Whether a language model beats token frequencies on the held-out windows: the unigram
    NLL of each window's scored tokens (``compress.measure.perplexity.strided_windows``)
    against the model's."""
    from scipy.stats import binomtest

    from compress.measure.perplexity import strided_windows

    counts = np.bincount(calibration_ids, minlength=vocab)[:vocab] + 1.0
    nll = -np.log(counts / counts.sum())
    windows = strided_windows(len(eval_ids), window, stride)
    unigram = [float(nll[eval_ids[w.first_target : w.end]].sum()) for w in windows]
    won = int(sum(m < u for m, u in zip(window_nll, unigram, strict=True)))
    p_value = float(binomtest(won, len(unigram), 0.5, alternative="greater").pvalue)
    tokens = sum(w.end - w.first_target for w in windows)
    gate = {"learned": p_value < alpha, "test": UNIGRAM_TEST, "alpha": alpha,
            "n": len(unigram), "won": won, "p_value": p_value,
            "perplexity": float(np.exp(sum(window_nll) / tokens)),
            "unigram_perplexity": float(np.exp(sum(unigram) / tokens))}  # fmt: skip
    if not gate["learned"]:
        gate["reason"] = (f"untrained or mis-loaded weights (perplexity {gate['perplexity']:.4g} "
                          f"is no better than the {gate['unigram_perplexity']:.4g} of token "
                          f"frequencies alone: {won} of {len(unigram)} windows won, sign "
                          f"test p = {p_value:.3g})")  # fmt: skip
        gate["fix"] = "model.name_or_path pointing at trained weights that load completely"
    return gate


def diagnosis(training: dict, rows: int, classes: int) -> tuple[str, str]:
    """Why a baseline learned nothing, and the fix to try, from how it was trained: training
    cut off by its cap while still improving is too few steps; few train rows per class is
    too few rows; otherwise training ran to its plateau on enough rows, and the labels carry
    nothing the model can read in the texts."""
    if training.get("steps") == 0:
        return ("the model's own head does not predict these labels",
                "model.finetuned=false, to train a fresh head on the data")  # fmt: skip
    stopped = training.get("stopped") or {}
    if stopped.get("improving_at_stop"):
        return (f"too few steps ({stopped.get('detail')})",
                "raise task.finetune.max_epochs or task.finetune.max_steps")  # fmt: skip
    if rows < FEW_ROWS_PER_CLASS * classes:
        return (f"too few rows ({rows} train rows for {classes} classes)",
                f"at least {FEW_ROWS_PER_CLASS * classes} labelled rows: more data, or a "
                "larger task.train_size")  # fmt: skip
    peak = (training.get("best") or {}).get("validation_f1_macro", 0.0)
    return (f"labels unrelated to the text (validation macro-F1 peaked at {peak:.3f} on "
            f"{rows} train rows, then stopped improving)",
            "check that task.data.label_column holds these texts' labels, row by row")  # fmt: skip


def headline(gate: dict) -> str:
    """One sentence: the gate's figures, why, and the fix."""
    cause = f"likely cause: {gate['reason']}; to try: {gate['fix']}"
    if "majority_share" not in gate:
        return f"the baseline learned nothing measurable; {cause}"
    figures = (
        f"accuracy {gate['accuracy']:.3f} vs {gate['majority_share']:.3f} for always "
        f"answering the majority class, exact binomial p = {gate['p_value']:.3g}, "
        f"n = {gate['n']}"
    )
    return f"the baseline learned nothing measurable ({figures}); {cause}"
