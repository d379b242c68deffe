"""The open-loop load generator: Poisson schedule, bounds, and stopping by itself."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
from fastapi import FastAPI, Response

from compress.serving.loadgen import (
    LoadSpec,
    parse_server_timing,
    poisson_schedule,
    run_load,
    summarise,
)


def test_schedule_is_seeded_poisson_and_bounded():
    spec = LoadSpec(rate_per_s=50.0, max_requests=20_000, max_duration_s=1e9, seed=1)
    times = poisson_schedule(spec)
    assert len(times) == 20_000 and np.all(np.diff(times) > 0)
    assert np.array_equal(times, poisson_schedule(spec))
    gaps = np.diff(times)
    assert gaps.mean() == pytest.approx(1 / 50, rel=0.03)
    assert gaps.std() == pytest.approx(gaps.mean(), rel=0.05)  # exponential: CV = 1
    short = poisson_schedule(LoadSpec(50.0, 20_000, max_duration_s=2.0, seed=1))
    assert short.max() < 2.0 and len(short) < 200


def test_server_timing_header_is_parsed():
    assert parse_server_timing("queue;dur=1.5, service;desc=x;dur=10") == {
        "queue": 1.5,
        "service": 10.0,
    }
    assert parse_server_timing(None) == {}


def _app(delay_s: float, status: int) -> FastAPI:
    app = FastAPI()

    @app.post("/predict")
    async def predict() -> Response:
        await asyncio.sleep(delay_s)
        return Response(status_code=status, headers={"Server-Timing": "service;dur=1"})

    return app


async def _load(app: FastAPI, spec: LoadSpec) -> list:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await run_load("/predict", spec, client=client)


def test_stops_at_its_duration_and_gives_up_on_unanswered_requests():
    spec = LoadSpec(rate_per_s=100.0, max_requests=10_000, max_duration_s=0.3,
                    drain_timeout_s=0.2, seed=0)  # fmt: skip
    results = asyncio.run(_load(_app(delay_s=60.0, status=200), spec))
    assert 0 < len(results) < 10_000
    assert all(r.error == "unfinished: drain timeout" for r in results)
    assert summarise(results)["ok"] == 0


def test_stops_after_its_count_and_records_failures():
    spec = LoadSpec(rate_per_s=500.0, max_requests=30, max_duration_s=60.0, seed=0)
    results = asyncio.run(_load(_app(delay_s=0.0, status=503), spec))
    assert len(results) == 30
    assert all(r.status == 503 and r.error is not None for r in results)
    assert summarise(results)["errors"] == 30
