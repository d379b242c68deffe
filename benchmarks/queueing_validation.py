"""Do the queueing predictions hold for a real server? Serve a saved artifact over HTTP,
measure its service time with sequential requests, drive it with Poisson load at 50% and
80% utilisation, and compare the measured response-time p50/p95 with the M/G/1 simulation
(empirical service distribution), the Pollaczek–Khinchine distribution and M/M/1.

    .venv/bin/python benchmarks/queueing_validation.py <artifact dir>

The server (``compress.serving.server``, one worker, by default padding to 128 tokens like the
sweep's timings) and this client are pinned to different cores, so that the load generator does
not steal the server's CPU. Writes ``benchmarks/results/<--name>.{csv,json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from analysis.queueing.report import markdown_table
from analysis.queueing.simulation import ServiceTimes, simulate
from analysis.queueing.theory import mg1_response_quantiles, mmc_response_quantiles
from compress.infra.environment import library_versions
from compress.serving.loadgen import (
    LoadSpec,
    RequestResult,
    parse_server_timing,
    run_load,
    summarise,
)

RESULTS = Path(__file__).parent / "results"
TEXTS = (
    "a thoughtful, beautifully acted film that stays with you",
    "dull, overlong and completely predictable",
    "the kind of movie that reminds you why you go to the cinema at all",
    "i laughed twice, but mostly i checked my watch",
    "an ambitious, sprawling family saga that keeps promising a payoff it never delivers, "
    "though the two leads are so good together that you forgive the script its detours, its "
    "false endings and its habit of explaining every feeling twice",
)
PAYLOADS = [{"texts": [text]} for text in TEXTS]
SIMULATED_REQUESTS = 200_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(url: str, process: subprocess.Popen, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(f"server at {url} not ready after {timeout_s} s")


@contextmanager
def running_server(artifact: Path, threads: int, cpus: set[int] | None, pad: bool) -> Iterator[str]:
    """``compress.serving.server`` in a subprocess on 127.0.0.1, pinned to ``cpus``; yields its
    URL."""
    port = _free_port()
    command = [
        sys.executable, "-m", "compress.serving.server", str(artifact), "--port", str(port),
        "--threads", str(threads), *(["--pad"] if pad else []),
    ]  # fmt: skip
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    process = subprocess.Popen(command, preexec_fn=pin)  # before any thread starts
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _busy_ms(timing: dict[str, float]) -> float:
    """How long the server process worked on a request: its time in the app less the wait."""
    return timing["app"] - timing["queue"]


async def sequential_service(url: str, count: int, warmup: int) -> dict[str, np.ndarray]:
    """One request at a time (no queue), ms: the client's round trip, the server's busy time
    (``Server-Timing``) and the model call alone (``service``)."""
    samples: dict[str, list[float]] = {"round_trip": [], "busy": [], "service": []}
    async with httpx.AsyncClient(timeout=60.0) as client:
        for index in range(warmup + count):
            start = time.perf_counter()
            response = await client.post(f"{url}/predict", json=PAYLOADS[index % len(PAYLOADS)])
            elapsed = (time.perf_counter() - start) * 1e3
            response.raise_for_status()
            if index >= warmup:
                timing = parse_server_timing(response.headers["server-timing"])
                samples["round_trip"].append(elapsed)
                samples["busy"].append(_busy_ms(timing))
                samples["service"].append(timing["service"])
    return {name: np.array(values) for name, values in samples.items()}


def wait_idle(url: str, timeout_s: float = 600.0) -> None:
    """Until the server has answered everything it was sent (even what the client gave up)."""
    deadline = time.monotonic() + timeout_s
    while httpx.get(f"{url}/health", timeout=10.0).json()["in_flight"]:
        if time.monotonic() > deadline:
            raise TimeoutError(f"server still busy after {timeout_s} s")
        time.sleep(0.5)


def _percentiles(values: np.ndarray) -> tuple[float, float]:
    p50, p95 = np.percentile(values, [50, 95])
    return float(p50), float(p95)


def _answered(results: list[RequestResult], warmup: float) -> list[RequestResult]:
    """Answered requests after the first ``warmup`` fraction (the queue starts empty)."""
    return [r for r in results[int(warmup * len(results)) :] if r.error is None]


def _measured(results: list[RequestResult], answered: list[RequestResult]) -> dict:
    p50, p95 = _percentiles(np.array([r.latency_ms for r in answered]))
    return {
        "measured_p50_ms": p50,
        "measured_p95_ms": p95,
        "client_lag_p95_ms": summarise(results)["lag_p95_ms"],
        "requests_ok": len(answered),
        "errors": sum(r.error is not None for r in results),
    }


def _simulated(
    busy_ms: np.ndarray, delay_ms: np.ndarray, rate: float, seed: int, name: str
) -> dict:
    """M/G/1 on the server's busy times, plus an independent draw of the delay outside the
    server's queue (client, loopback, HTTP parsing) for every request."""
    times = simulate(ServiceTimes({1: busy_ms}), rate, requests=SIMULATED_REQUESTS, seed=seed)
    times = times + np.random.default_rng(seed).choice(delay_ms, len(times))
    p50, p95 = _percentiles(times)
    return {f"{name}_p50_ms": p50, f"{name}_p95_ms": p95}


def _analytic(busy_ms: np.ndarray, delay_ms: float, rate: float) -> dict:
    """P-K and M/M/1 percentiles of the queue, plus the mean delay outside it."""
    pk50, pk95 = mg1_response_quantiles(busy_ms, rate, [0.5, 0.95])
    mm50, mm95 = mmc_response_quantiles(busy_ms.mean(), rate, 1, [0.5, 0.95])
    values = {"pk_p50_ms": pk50, "pk_p95_ms": pk95, "mm1_p50_ms": mm50, "mm1_p95_ms": mm95}
    return {name: value + delay_ms for name, value in values.items()}


def _drift(answered: list[RequestResult], window_s: float = 10.0) -> dict:
    """How far the server's busy time wandered during the run: the coefficient of variation
    of its means over ``window_s`` windows (i.i.d. service gives about CV / sqrt(n per
    window), a few %), and the correlation of successive requests' busy times (0 if i.i.d.)."""
    busy = np.array([_busy_ms(r.server_timing_ms) for r in answered])
    windows = np.array([r.scheduled_s // window_s for r in answered])
    means = np.array([busy[windows == w].mean() for w in np.unique(windows)])
    return {
        "busy_window_cv": float(means.std() / means.mean()),
        "busy_lag1_correlation": float(np.corrcoef(busy[:-1], busy[1:])[0, 1]),
    }


def validate_at(url: str, service: dict, utilisation: float, requests: int, seed: int) -> dict:
    """Poisson load at ``utilisation`` of the server (rate = rho / mean busy time), against:
    ``sim``, M/G/1 on the idle busy times plus the idle delay outside the server: the
    prediction one can make beforehand; ``sim_round_trip``, M/G/1 with the whole round trip
    as service time (what a client-side benchmark would give); ``sim_observed``, as ``sim``
    but on the busy times the server reported during this very run: the queue model alone,
    with the slow-down under load and the machine's drift taken out."""
    busy, delay = service["busy"], service["round_trip"] - service["busy"]
    rate = utilisation / busy.mean() * 1000.0
    spec = LoadSpec(rate, requests, max_duration_s=2 * requests / rate, seed=seed)
    results = asyncio.run(run_load(f"{url}/predict", spec, PAYLOADS))
    wait_idle(url)
    answered = _answered(results, warmup=0.05)
    observed = np.array([_busy_ms(r.server_timing_ms) for r in answered])
    row = {"utilisation": utilisation, "rate_per_s": rate, **_measured(results, answered)}
    row |= _simulated(busy, delay, rate, seed, "sim") | _analytic(busy, delay.mean(), rate)
    row |= _simulated(service["round_trip"], np.zeros(1), rate, seed, "sim_round_trip")
    row |= _simulated(observed, delay, rate, seed, "sim_observed")
    row["observed_utilisation"] = rate * observed.mean() / 1000.0
    row |= _drift(answered)
    row["load_average_1m"] = os.getloadavg()[0]
    for model in ("sim", "sim_observed"):
        for p in ("p50", "p95"):
            row[f"{model}_{p}_error"] = row[f"{model}_{p}_ms"] / row[f"measured_{p}_ms"] - 1
    return row


def _table(rows: list[dict]) -> pd.DataFrame:
    columns = [
        "utilisation", "rate_per_s", "measured_p50_ms", "sim_p50_ms", "sim_p50_error",
        "measured_p95_ms", "sim_p95_ms", "sim_p95_error", "pk_p50_ms", "pk_p95_ms",
        "mm1_p50_ms", "mm1_p95_ms", "sim_round_trip_p50_ms", "sim_round_trip_p95_ms",
        "observed_utilisation", "sim_observed_p50_ms", "sim_observed_p50_error",
        "sim_observed_p95_ms", "sim_observed_p95_error", "client_lag_p95_ms",
        "busy_window_cv", "busy_lag1_correlation", "load_average_1m", "requests_ok", "errors",
    ]  # fmt: skip
    return pd.DataFrame(rows)[columns]


def _service_stats(service: dict[str, np.ndarray]) -> dict:
    return {
        f"{name}_{stat}_ms": float(fn(values))
        for name, values in service.items()
        for stat, fn in (("mean", np.mean), ("p50", np.median), ("std", np.std))
    }


def _write(out: Path, name: str, report: dict) -> None:
    """Everything so far, after every phase: a run cut short still leaves its numbers."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(report, indent=1, default=str))
    if report["rows"]:
        table = _table(report["rows"])
        table.to_csv(out / f"{name}.csv", index=False)
        (out / f"{name}.md").write_text(markdown_table(table))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("artifact", type=Path, help="a saved artifact (a job's artifact/)")
    parser.add_argument("--requests", type=int, default=3000, help="per utilisation")
    parser.add_argument("--service-requests", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the server")
    parser.add_argument("--server-cpus", type=int, nargs="*", default=[0])
    parser.add_argument("--client-cpus", type=int, nargs="*", default=[1])
    parser.add_argument(
        "--pad", action=argparse.BooleanOptionalAction, default=True,
        help="pad every text to 128 tokens, the sweep's timing shape (--no-pad: real lengths)",
    )  # fmt: skip
    parser.add_argument("--utilisations", type=float, nargs="+", default=[0.5, 0.8])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="queueing_validation", help="of the result files")
    return parser


def main() -> None:
    args = _parser().parse_args()
    if args.client_cpus:
        os.sched_setaffinity(0, set(args.client_cpus))
    report = {
        "artifact": str(args.artifact),
        "setup": {k: v for k, v in vars(args).items() if k not in ("out", "name")},
        "load_average_1m_before": os.getloadavg()[0],
        "versions": library_versions(),
        "rows": [],
    }
    with running_server(args.artifact, args.threads, set(args.server_cpus), args.pad) as url:
        asyncio.run(sequential_service(url, count=30, warmup=0))  # warm-up
        for index, rho in enumerate(args.utilisations):
            # Calibrated right before its load run: the machine's speed drifts.
            service = asyncio.run(sequential_service(url, args.service_requests, warmup=5))
            row = validate_at(url, service, rho, args.requests, args.seed + index)
            report["rows"].append(row | {"service": _service_stats(service)})
            _write(args.out, args.name, report)
        after = asyncio.run(sequential_service(url, args.service_requests, warmup=5))
        report["service_after"] = _service_stats(after)
    _write(args.out, args.name, report)
    print(json.dumps([row["service"] for row in report["rows"]], indent=1))
    print(markdown_table(_table(report["rows"])))


if __name__ == "__main__":
    main()
