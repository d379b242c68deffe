"""Which record column a response reads, what it is called, and which way is better."""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd

from analysis import AnalysisError
from compress.config.store import schema_types
from compress.record import QualityMetric

QUALITY = "compressed.quality."
LATENCY = "compressed.speed.p50_ms"
SIZE = "compressed.size.disk_bytes"
SHORTHANDS = {"latency": LATENCY, "size": SIZE}
# Generation's ``bleu`` is corpus BLEU; its paired interval is of sentence BLEU (comparison).
LABELS = {
    LATENCY: "latency p50 (ms)",
    SIZE: "size on disk (bytes)",
    f"{QUALITY}bleu": "corpus BLEU",
}
# What every task declares it reports (compress.config.task), by metric name; headline first.
_TASKS = schema_types("task")
METRICS: dict[str, QualityMetric] = {m.name: m for t in _TASKS for m in t.QUALITY_METRICS}
DEFAULT_QUALITY = tuple(dict.fromkeys(t.QUALITY_METRICS[0].name for t in _TASKS))


def resolve(name: str, columns: Collection[str]) -> str:
    """A column of the runs table, from its full name or a shorthand (``accuracy``, ``size``)."""
    for candidate in (name, SHORTHANDS.get(name), f"{QUALITY}{name}", f"ratios.{name}"):
        if candidate in columns:
            return candidate
    raise AnalysisError(
        f"unknown response {name!r}: give a column of runs.csv "
        f"or one of {', '.join([*DEFAULT_QUALITY, *SHORTHANDS])}"
    )


def quality_metric(columns: Collection[str]) -> str | None:
    return next((QUALITY + m for m in DEFAULT_QUALITY if QUALITY + m in columns), None)


def default_responses(columns: Collection[str]) -> list[str]:
    return [c for c in (quality_metric(columns), LATENCY, SIZE) if c in columns]


def label(column: str) -> str:
    return LABELS.get(column, column.removeprefix(QUALITY))


def metric_of(column: str) -> QualityMetric | None:
    """The declared metric a column holds, derived figures included (``perplexity_vs_baseline``
    is a perplexity)."""
    name = column.rpartition(".")[2]
    found = [m for m in METRICS.values() if name == m.name or name.startswith(f"{m.name}_")]
    return max(found, key=lambda m: len(m.name), default=None)


def higher_is_better(column: str) -> bool:
    """Scores are better high; what a task declares lower-is-better (perplexity) is not."""
    metric = metric_of(column)
    return metric.higher_is_better if metric else True


def baseline_column(column: str) -> str:
    return column.replace("compressed.", "baseline.", 1)


def quality_drop(frame: pd.DataFrame, column: str) -> pd.Series:
    """Quality lost against the baseline of the same record: the absolute drop of a score
    (accuracy, F1), the relative increase of a loss (perplexity)."""
    baseline = frame[baseline_column(column)]
    if higher_is_better(column):
        return baseline - frame[column]
    return frame[column] / baseline - 1


def cli_name(column: str) -> str:
    """The shortest name ``--response`` and ``--log`` accept for ``column``."""
    shorthand = {v: k for k, v in SHORTHANDS.items()}
    return shorthand.get(column, column.removeprefix(QUALITY))
