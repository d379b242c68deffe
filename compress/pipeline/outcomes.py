"""What a job keeps of every evaluation item and timing round, and the paired comparisons
built from them.

Beside ``metrics.json`` each job writes ``items.parquet`` (one row per held-out item: both
models' outcomes on it, from the task) and ``rounds.parquet`` (one row per timing round:
both models' milliseconds, timed in that round). The record's ``ratios.intervals`` hold the
quality differences with paired-bootstrap intervals over items and the latency and
throughput ratios with intervals over rounds; ``ratios.tests`` the task's tests (McNemar's
for classification). Each interval states its ``n`` and ``method``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pandas as pd

from compress.infra.atomic import write_table_atomic
from compress.record import ITEMS, ROUNDS, Side
from compress.stats.paired import paired_ratio_bootstrap
from compress.tasks.base import Task


def timing_rounds(baseline_speed: dict, compressed_speed: dict) -> pd.DataFrame | None:
    """The timed samples by round: sample ``i`` of both models was taken in round ``i``, one
    call each (a forward pass; for causal LMs a ``generate`` call, by its median token time).
    None when the two hold different numbers of samples: then there are no rounds to pair."""
    baseline, compressed = baseline_speed["samples_ms"], compressed_speed["samples_ms"]
    if len(baseline) != len(compressed):
        return None
    return pd.DataFrame(
        {"round": range(len(baseline)), "baseline_ms": baseline, "compressed_ms": compressed}
    )


def timing_intervals(rounds: pd.DataFrame, seed: int) -> dict[str, dict]:
    """Latency p50 ratio (median compressed / median baseline) and throughput ratio (mean
    baseline / mean compressed time), each resampling whole rounds."""
    baseline, compressed = rounds["baseline_ms"], rounds["compressed_ms"]
    latency = paired_ratio_bootstrap(baseline, compressed, "median", seed=seed)
    throughput = paired_ratio_bootstrap(compressed, baseline, "mean", seed=seed)
    method = throughput.method.replace(
        "mean(compressed) / mean(baseline)", "mean(baseline ms) / mean(compressed ms)"
    )
    throughput = dataclasses.replace(throughput, method=method)
    return {"latency_p50": latency.to_dict(), "throughput": throughput.to_dict()}


def eval_fingerprint(items: pd.DataFrame) -> str:
    """What identifies the evaluation set in an item table, hashed: the item ids and, where the
    task has them, the labels (classification) or the scored tokens of each window (language
    modelling). The analysis pairs records only when theirs agree."""
    columns = [column for column in ("item", "label", "tokens") if column in items]
    return hashlib.sha256(items[columns].to_csv(index=False).encode()).hexdigest()[:16]


def paired_outcomes(
    task: Task, outputs: dict, reference: dict, measured: dict[str, Side], folder: Path, seed: int,
    quality: bool = True,
) -> tuple[dict, str]:  # fmt: skip
    """Write the item and round tables into ``folder``; returns ``intervals`` and ``tests``
    (of quality only when ``quality``: not against a baseline that learned nothing), and the
    evaluation set's fingerprint."""
    items = task.item_outcomes(outputs, reference)
    rounds = timing_rounds(measured["baseline"].speed, measured["compressed"].speed)
    write_table_atomic(folder / ITEMS, items)
    intervals, tests = task.paired_quality(items) if quality else ({}, {})
    if rounds is not None:
        write_table_atomic(folder / ROUNDS, rounds)
        intervals |= timing_intervals(rounds, seed)
    return {"intervals": intervals, "tests": tests}, eval_fingerprint(items)
