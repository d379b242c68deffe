"""Classification quality against the labels and agreement with the uncompressed model."""

from __future__ import annotations

import numpy as np
from sklearn import metrics


def _binary(labels: np.ndarray, predictions: np.ndarray, scores: np.ndarray) -> dict:
    """Class 1 is the positive class; ROC-AUC from its score."""
    return {
        "precision": float(metrics.precision_score(labels, predictions, zero_division=0)),
        "recall": float(metrics.recall_score(labels, predictions, zero_division=0)),
        "f1": float(metrics.f1_score(labels, predictions, zero_division=0)),
        "roc_auc": float(metrics.roc_auc_score(labels, scores[:, 1]))
        if len(np.unique(labels)) == 2
        else float("nan"),
        "predicted_positive_rate": float(np.mean(predictions == 1)),
    }


def _multiclass(
    labels: np.ndarray, predictions: np.ndarray, scores: np.ndarray, names: list[str]
) -> dict:
    """Macro and weighted averages, F1 per class, macro one-vs-rest ROC-AUC (undefined while
    a class is missing from the held-out labels)."""
    classes = list(range(len(names)))
    quality: dict = {"f1": float(metrics.f1_score(labels, predictions, labels=classes,
                                                  average="macro", zero_division=0))}  # fmt: skip
    scorers = {"precision": metrics.precision_score, "recall": metrics.recall_score,
               "f1": metrics.f1_score}  # fmt: skip
    for average in ("macro", "weighted"):
        for name, score in scorers.items():
            value = score(labels, predictions, labels=classes, average=average, zero_division=0)
            quality[f"{name}_{average}"] = float(value)
    per_class = metrics.f1_score(labels, predictions, labels=classes, average=None,
                                 zero_division=0)  # fmt: skip
    quality["f1_per_class"] = {name: float(f) for name, f in zip(names, per_class, strict=True)}
    present = len(np.unique(labels)) == len(names)
    quality["roc_auc"] = (
        float(metrics.roc_auc_score(labels, scores, multi_class="ovr", labels=classes))
        if present
        else float("nan")
    )
    return quality


def classification_quality(
    labels: np.ndarray,
    predictions: np.ndarray,
    scores: np.ndarray,
    names: list[str],
    reference_predictions: np.ndarray | None = None,
) -> dict:
    """Quality on the held-out labels; ``scores`` holds each item's class probabilities."""
    labels, predictions, scores = np.asarray(labels), np.asarray(predictions), np.asarray(scores)
    classes = list(range(len(names)))
    quality = {
        "n": int(len(labels)),
        "accuracy": float(metrics.accuracy_score(labels, predictions)),
        **(_binary(labels, predictions, scores) if len(names) == 2
           else _multiclass(labels, predictions, scores, names)),
        "confusion_matrix": metrics.confusion_matrix(labels, predictions, labels=classes).tolist(),
    }  # fmt: skip
    if len(names) > 2:
        quality["labels"] = list(names)
    if reference_predictions is not None:
        quality["agreement"] = float(np.mean(predictions == np.asarray(reference_predictions)))
    return quality
