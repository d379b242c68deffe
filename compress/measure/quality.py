"""Classification quality against the labels and agreement with the uncompressed model."""

from __future__ import annotations

import numpy as np
from sklearn import metrics


def classification_quality(
    labels: np.ndarray,
    predictions: np.ndarray,
    positive_scores: np.ndarray,
    reference_predictions: np.ndarray | None = None,
) -> dict:
    """Binary metrics with label 1 as the positive class; ROC-AUC from the positive score."""
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    quality = {
        "n": int(len(labels)),
        "accuracy": float(metrics.accuracy_score(labels, predictions)),
        "precision": float(metrics.precision_score(labels, predictions, zero_division=0)),
        "recall": float(metrics.recall_score(labels, predictions, zero_division=0)),
        "f1": float(metrics.f1_score(labels, predictions, zero_division=0)),
        "roc_auc": float(metrics.roc_auc_score(labels, positive_scores))
        if len(np.unique(labels)) == 2
        else float("nan"),
        "confusion_matrix": metrics.confusion_matrix(labels, predictions, labels=[0, 1]).tolist(),
        "predicted_positive_rate": float(np.mean(predictions == 1)),
    }
    if reference_predictions is not None:
        quality["agreement"] = float(np.mean(predictions == np.asarray(reference_predictions)))
    return quality
