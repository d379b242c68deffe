"""Service-time distributions from a sweep's job records.

Each ``ok`` record holds ``<side>.speed.samples_ms``: forward-pass times of one model call on
``batch_size`` sequences padded to ``seq_len`` (no tokenization, no HTTP). Without dynamic
batching a request is exactly that call, one per job; with dynamic batching a request is one
sequence and a recipe's jobs at several batch sizes give the cost of each batch size.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from analysis.queueing.simulation import ServiceTimes
from compress.record import RECORD_NAME, ok_records

BASELINE = "baseline"


@dataclass(frozen=True)
class Recipe:
    """One queue to analyse: a label, the sequences each request carries, its service times."""

    label: str
    sequences_per_request: int
    service: ServiceTimes


def load_ok_records(run_dir: Path) -> list[dict]:
    """Records with ``status: ok`` under ``run_dir`` (a sweep folder or a single job's)."""
    records = ok_records(run_dir)
    if not records:
        raise FileNotFoundError(f"no {RECORD_NAME} with status ok under {run_dir}")
    return records


def _varying_factors(records: list[dict]) -> list[str]:
    names = [name for name in records[0]["factors"] if name != "batch_size"]
    return [n for n in names if len({json.dumps(r["factors"][n]) for r in records}) > 1]


def _recipe_label(factors: dict, varying: list[str]) -> str:
    return " ".join(f"{name}={factors[name]}" for name in varying) or "compressed"


def _samples(record: dict, side: str) -> tuple[int, list[float]]:
    speed = record[side]["speed"]
    return speed["batch_size"], speed["samples_ms"]


def per_job(records: list[dict]) -> list[Recipe]:
    """One queue per job, whose request is the measured call on ``batch_size`` sequences,
    plus the baseline at each batch size (its samples pooled over the jobs that timed it)."""
    varying = _varying_factors(records)
    recipes, baseline = [], defaultdict(list)
    for record in records:
        size, samples = _samples(record, "compressed")
        label = f"{_recipe_label(record['factors'], varying)} batch={size}"
        recipes.append(Recipe(label, size, ServiceTimes({size: samples})))
        size, samples = _samples(record, BASELINE)
        baseline[size].extend(samples)
    for size, samples in sorted(baseline.items()):
        recipes.append(Recipe(f"{BASELINE} batch={size}", size, ServiceTimes({size: samples})))
    return recipes


def per_recipe(records: list[dict]) -> list[Recipe]:
    """One queue per recipe (all factors but batch size) whose request is one sequence; each
    batch size the recipe's jobs measured is one batch cost. Baseline likewise, pooled."""
    varying = _varying_factors(records)
    grouped: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    baseline: dict[int, list[float]] = defaultdict(list)
    for record in records:
        size, samples = _samples(record, "compressed")
        grouped[_recipe_label(record["factors"], varying)][size].extend(samples)
        size, samples = _samples(record, BASELINE)
        baseline[size].extend(samples)
    grouped[BASELINE] = baseline
    return [Recipe(label, 1, ServiceTimes(sizes)) for label, sizes in grouped.items()]
