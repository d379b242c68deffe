"""Latency over timed repeats after warm-up, with models interleaved so that drift in the
machine's speed hits baseline and compressed alike (their ratio is what is trustworthy)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from compress.measure.energy import (
    energy_per_batch,
    rapl_available,
    rapl_wrap_joules,
    read_rapl_joules,
)


def latency_stats(samples_ms: list[float], batch_size: int) -> dict:
    values = np.asarray(samples_ms, dtype=np.float64)
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {
        "p50_ms": float(np.percentile(values, 50)),
        "p90_ms": float(np.percentile(values, 90)),
        "p99_ms": float(np.percentile(values, 99)),
        "mean_ms": mean,
        "std_ms": std,
        "min_ms": float(values.min()),
        "cv": std / mean if mean else 0.0,
        "throughput_sps": batch_size * 1000.0 / mean if mean else 0.0,
        "samples_ms": [round(v, 4) for v in values.tolist()],
    }


def interleaved_latency(
    runners: dict[str, Callable[[], object]],
    warmup: int,
    repeats: int,
    batch_size: int,
    watts_per_core: float = 5.0,
) -> dict[str, dict]:
    """Time each runner ``repeats`` times, alternating between runners on every round and
    reversing the order every other round. Each call's CPU time (and package energy, where a
    RAPL counter exists) is recorded too, for the energy figures."""
    names = list(runners)
    for _ in range(warmup):
        for name in names:
            runners[name]()
    use_rapl = rapl_available()
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    joules: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            energy_start = read_rapl_joules() if use_rapl else 0.0
            cpu_start, start = time.process_time_ns(), time.perf_counter_ns()
            runners[name]()
            wall[name].append((time.perf_counter_ns() - start) / 1e6)
            cpu[name].append((time.process_time_ns() - cpu_start) / 1e6)
            if use_rapl:
                joules[name].append((read_rapl_joules() - energy_start) % rapl_wrap_joules())
    return {
        name: latency_stats(wall[name], batch_size)
        | {"cpu_ms_p50": float(np.median(cpu[name]))}
        | {
            "energy": energy_per_batch(
                cpu[name], joules[name] if use_rapl else None, watts_per_core, batch_size
            )
        }  # fmt: skip
        for name in names
    }
