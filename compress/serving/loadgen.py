"""Open-loop load generator: Poisson arrivals at a fixed rate against an HTTP endpoint.

Open loop means a request is sent at its scheduled time whether or not earlier ones have
been answered, as independent users do; a closed loop (send, wait, send) would hide the
queue. Latency is counted from the scheduled time, so a client that falls behind cannot
hide waiting either (``lag_ms`` says by how much it fell behind). A run is bounded by a
request count and a duration, and waits at most ``drain_timeout_s`` for the last answers:
it always stops by itself.

``python -m compress.serving.loadgen http://127.0.0.1:8000/predict --rate 20 --requests 500``
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import httpx
import numpy as np

DEFAULT_PAYLOAD = {"texts": ["a thoughtful, beautifully acted film that stays with you"]}


@dataclass(frozen=True)
class LoadSpec:
    rate_per_s: float
    max_requests: int
    max_duration_s: float
    seed: int = 0
    drain_timeout_s: float = 30.0


@dataclass(frozen=True)
class RequestResult:
    """One request; ``echoed_id`` is the ``X-Request-ID`` the answer carried (a server that
    mixes up responses answers with another request's id)."""

    scheduled_s: float
    lag_ms: float
    latency_ms: float | None
    status: int | None
    server_timing_ms: dict[str, float]
    error: str | None = None
    request_id: str = ""
    echoed_id: str | None = None


def poisson_schedule(spec: LoadSpec) -> np.ndarray:
    """Send times (s from the start): exponential gaps, seeded, cut by count and duration."""
    gaps = np.random.default_rng(spec.seed).exponential(1 / spec.rate_per_s, spec.max_requests)
    times = np.cumsum(gaps)
    return times[times < spec.max_duration_s]


def parse_server_timing(header: str | None) -> dict[str, float]:
    """``queue;dur=1.2, service;dur=10`` -> ``{"queue": 1.2, "service": 10.0}``."""
    timings = {}
    for entry in (header or "").split(","):
        name, _, params = entry.strip().partition(";")
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "dur":
                timings[name] = float(value)
    return timings


async def _send(
    client: httpx.AsyncClient, url: str, payload: dict, start: float, offset: float, rid: str
) -> RequestResult:
    loop = asyncio.get_running_loop()
    lag_ms = (loop.time() - start - offset) * 1e3
    try:
        response = await client.post(url, json=payload, headers={"X-Request-ID": rid})
    except httpx.HTTPError as error:
        failure = f"{type(error).__name__}: {error}"
        return RequestResult(offset, lag_ms, None, None, {}, failure, request_id=rid)
    latency_ms = (loop.time() - start - offset) * 1e3
    timing = parse_server_timing(response.headers.get("server-timing"))
    error = None if response.is_success else response.text[:200]
    return RequestResult(offset, lag_ms, latency_ms, response.status_code, timing, error,
                         rid, response.headers.get("x-request-id"))  # fmt: skip


async def _dispatch(
    client: httpx.AsyncClient, url: str, payloads: Sequence[dict], schedule: np.ndarray
) -> list[asyncio.Task]:
    loop = asyncio.get_running_loop()
    start, tasks = loop.time(), []
    for index, offset in enumerate(schedule.tolist()):
        await asyncio.sleep(max(0.0, start + offset - loop.time()))
        payload = payloads[index % len(payloads)]
        request = _send(client, url, payload, start, offset, f"{index}")
        tasks.append(asyncio.create_task(request))
    return tasks


async def _drain(tasks: list[asyncio.Task], timeout_s: float) -> None:
    """Wait for the answers, then cancel (and await) whatever is still open."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def _result(task: asyncio.Task, offset: float) -> RequestResult:
    if task.cancelled():
        return RequestResult(offset, 0.0, None, None, {}, "unfinished: drain timeout")
    return task.result()


async def run_load(
    url: str,
    spec: LoadSpec,
    payloads: Sequence[dict] = (DEFAULT_PAYLOAD,),
    client: httpx.AsyncClient | None = None,
) -> list[RequestResult]:
    """Send ``payloads`` (in turn) as POST requests at Poisson times; one result each."""
    schedule = poisson_schedule(spec)
    own_client = client is None
    # Open loop: one connection per request in flight, never a pool to wait for.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    client = client or httpx.AsyncClient(limits=limits, timeout=spec.drain_timeout_s)
    try:
        tasks = await _dispatch(client, url, payloads, schedule)
        await _drain(tasks, spec.drain_timeout_s)
        return [_result(task, offset) for task, offset in zip(tasks, schedule, strict=True)]
    finally:
        if own_client:
            await client.aclose()


def summarise(results: Sequence[RequestResult]) -> dict:
    """Counts (by HTTP status too) and latency percentiles (ms) of the answered requests;
    ``unanswered``: no HTTP answer at all; ``mismatched_ids``: answers carrying another
    request's id."""
    latencies = np.array([r.latency_ms for r in results if r.error is None])
    statuses = Counter(str(r.status) for r in results if r.status is not None)
    summary = {
        "sent": len(results),
        "ok": len(latencies),
        "errors": sum(r.error is not None for r in results),
        "by_status": dict(sorted(statuses.items())),
        "unanswered": sum(r.status is None for r in results),
        "mismatched_ids": sum(
            r.status is not None and r.echoed_id != r.request_id for r in results
        ),  # fmt: skip
        "last_send_s": max((r.scheduled_s for r in results), default=0.0),
        "lag_p95_ms": float(np.percentile([r.lag_ms for r in results], 95)) if results else 0.0,
    }
    if len(latencies):
        for p in (50, 95, 99):
            summary[f"p{p}_ms"] = float(np.percentile(latencies, p))
        summary["mean_ms"] = float(latencies.mean())
    return summary


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m compress.serving.loadgen", description=__doc__)
    parser.add_argument("url", help="e.g. http://127.0.0.1:8000/predict")
    parser.add_argument("--rate", type=float, required=True, help="mean requests per second")
    parser.add_argument("--requests", type=int, default=1000, help="at most this many")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds, at most")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--text", action="append", help="text to send (repeatable)")
    parser.add_argument("--details", action="store_true", help="print every request too")
    return parser


def main(argv: Sequence[str] | None = None) -> dict:
    args = _parser().parse_args(argv)
    spec = LoadSpec(args.rate, args.requests, args.duration, args.seed)
    payloads = [{"texts": [text]} for text in args.text] if args.text else [DEFAULT_PAYLOAD]
    results = asyncio.run(run_load(args.url, spec, payloads))
    summary = summarise(results)
    if args.details:
        summary["requests"] = [asdict(r) for r in results]
    print(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
