"""Figures from the per-item outcomes: ROC curves and confusion matrices of the recipes beside
the baseline's, and quality against the pruned fraction with its interval band."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from analysis.plots import save

ANNOTATED_CLASSES = 10  # confusion matrices with more classes are shaded, not numbered
GRID_COLUMNS = 4


def _grid(panels: int, width: float, height: float) -> tuple[Figure, list[Axes]]:
    """A figure of ``panels`` axes in rows of at most GRID_COLUMNS; spare axes hidden."""
    columns = min(GRID_COLUMNS, panels)
    rows = math.ceil(panels / columns)
    figure = Figure(figsize=(0.4 + width * columns, 0.6 + height * rows), layout="constrained")
    axes = list(figure.subplots(rows, columns, squeeze=False).ravel())
    for ax in axes[panels:]:
        ax.set_axis_off()
    return figure, axes[:panels]


def roc_points(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """False and true positive rates at every distinct score threshold, from (0, 0) to
    (1, 1); tied scores move both rates at once. None without positives or negatives."""
    order = np.argsort(-scores, kind="stable")
    ranked = positive[order].astype(float)
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores[order])), len(scores) - 1]
    tp = np.cumsum(ranked)[last_of_tie]
    fp = last_of_tie + 1 - tp
    if tp[-1] == 0 or fp[-1] == 0:
        return None
    return np.r_[0.0, fp / fp[-1]], np.r_[0.0, tp / tp[-1]]


def _roc_panel(ax: Axes, groups: dict[str, pd.DataFrame], k: int) -> None:
    ax.plot([0, 1], [0, 1], color="lightgrey", linewidth=1)
    for number, (name, items) in enumerate(groups.items()):
        points = roc_points((items["label"] == k).to_numpy(), items[f"score_{k}"].to_numpy())
        if points is None:
            continue
        style = {"color": "black", "linestyle": "--"} if number == 0 else {"color": f"C{number}"}
        auc = np.trapezoid(points[1], points[0])
        ax.plot(*points, linewidth=1.2, label=f"{name} (AUC {auc:.3f})", **style)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", aspect="equal")
    ax.legend(fontsize="x-small", loc="lower right")


def roc(groups: dict[str, pd.DataFrame], classes: int, path: Path) -> Path:
    """One panel for a binary task (class 1 positive), else one per class, one vs the rest.
    ``groups``: label and score_k columns per curve, the baseline first (dashed)."""
    positives = [1] if classes == 2 else list(range(classes))
    figure, axes = _grid(len(positives), 4.6, 4.4)
    for ax, k in zip(axes, positives, strict=True):
        _roc_panel(ax, groups, k)
        ax.set_title("ROC" if classes == 2 else f"class {k} vs the rest", fontsize="medium")
    figure.suptitle("ROC curves of the recipes and the baseline (dashed)")
    return save(figure, path)


def confusion_matrix(items: pd.DataFrame, classes: int) -> np.ndarray:
    """Counts by true class (rows) and predicted class (columns)."""
    matrix = np.zeros((classes, classes), dtype=int)
    np.add.at(matrix, (items["label"].astype(int), items["prediction"].astype(int)), 1)
    return matrix


def confusion(groups: dict[str, pd.DataFrame], classes: int, path: Path) -> Path:
    """A grid of confusion matrices, one per group (baseline first), in item counts."""
    figure, axes = _grid(len(groups), 2.9, 2.8)
    for ax, (name, items) in zip(axes, groups.items(), strict=True):
        matrix = confusion_matrix(items, classes)
        ax.imshow(matrix, cmap="Blues", vmin=0)  # colour in proportion to the count
        if classes <= ANNOTATED_CLASSES:
            for (i, j), count in np.ndenumerate(matrix):
                dark = count > matrix.max() / 2
                color = "white" if dark else "black"
                ax.text(j, i, str(count), ha="center", va="center", fontsize=8, color=color)
        ticks = range(classes) if classes <= ANNOTATED_CLASSES else []
        ax.set(xlabel="predicted", ylabel="true", xticks=ticks, yticks=ticks)
        ax.set_title(name, fontsize="small")
    figure.suptitle("Confusion matrices (items; rows: true class)")
    return save(figure, path)


def breaking_points(
    curves: pd.DataFrame, ylabel: str, reference: float, limit: float, path: Path
) -> Path:
    """Quality against the pruned fraction, one panel per prune method, one line per setting
    of the other factors, each with its interval band. ``curves``: columns method, line,
    prune, delta, low, high. Dashed: the baseline's level; dotted: the allowed drop."""
    methods = list(dict.fromkeys(curves["method"]))
    figure, axes = _grid(len(methods), 4.8, 3.8)
    for ax, method in zip(axes, methods, strict=True):
        panel = curves[curves["method"] == method]
        for number, (line, points) in enumerate(panel.groupby("line", sort=False)):
            points = points.sort_values("prune")
            color = f"C{number}"
            ax.plot(points["prune"], points["delta"], marker="o", color=color, label=line)
            ax.fill_between(points["prune"], points["low"], points["high"], color=color, alpha=0.2)
        ax.axhline(reference, color="grey", linestyle="--", linewidth=1)
        ax.axhline(limit, color="C3", linestyle=":", linewidth=1.2, label="allowed drop")
        ax.set(xlabel="prune", ylabel=ylabel, title=method)
        ax.legend(fontsize="x-small")
    figure.suptitle("Quality vs pruned fraction (bands: intervals)")
    return save(figure, path)
