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
from pathlib import Path

import pandas as pd

from compress.infra.records import write_table_atomic
from compress.stats.paired import paired_ratio_bootstrap
from compress.tasks.base import Task

ITEMS = "items.parquet"
ROUNDS = "rounds.parquet"


def timing_rounds(baseline_speed: dict, compressed_speed: dict) -> pd.DataFrame | None:
    """The timed samples by round: sample ``i`` of both models was taken in round ``i``. None
    when the two hold different numbers of samples (speculative decoding drafts a varying
    number of tokens per step): then there are no rounds to pair."""
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


def paired_outcomes(
    task: Task, outputs: dict, reference: dict, measured: dict, folder: Path, seed: int,
    quality: bool = True,
) -> dict:  # fmt: skip
    """Write the item and round tables into ``folder``; returns ``intervals`` and ``tests``
    (of quality only when ``quality``: not against a baseline that learned nothing)."""
    items = task.item_outcomes(outputs, reference)
    rounds = timing_rounds(measured["baseline"]["speed"], measured["compressed"]["speed"])
    write_table_atomic(folder / ITEMS, items)
    intervals, tests = task.paired_quality(items) if quality else ({}, {})
    if rounds is not None:
        write_table_atomic(folder / ROUNDS, rounds)
        intervals |= timing_intervals(rounds, seed)
    return {"intervals": intervals, "tests": tests}
