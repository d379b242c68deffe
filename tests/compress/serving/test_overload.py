"""A real server process at twice its capacity: it answers every request (200 or 503), keeps
its queue bounded, and never hands a response to the wrong request."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from compress.serving.loadgen import LoadSpec, run_load, summarise
from tests.compress.serving.test_serve import TEXTS, _free_port

MAX_QUEUE = 4


@pytest.fixture(scope="module")
def server_url(tiny_artifact: Path) -> Iterator[str]:
    port = _free_port()
    command = [sys.executable, "-m", "compress.serving.server", str(tiny_artifact),
               "--port", str(port), "--threads", "1", "--max-queue", str(MAX_QUEUE),
               "--pad", "--max-length", "128"]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"server did not start: {server.stderr.read().decode()[-500:]}")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _service_ms(url: str) -> float:
    """Median model time of one request, measured on requests sent one at a time."""
    timings = []
    with httpx.Client() as client:
        for _ in range(30):
            response = client.post(f"{url}/predict", json={"texts": TEXTS[:1]})
            header = response.headers["server-timing"]
            timings.append(float(header.split("service;dur=")[1].split(",")[0]))
    return float(np.median(timings))


def test_twice_the_capacity_is_answered_without_loss_or_mixup(server_url):
    capacity_per_s = 1000.0 / _service_ms(server_url)
    rate = 2 * capacity_per_s
    count = int(min(600, rate * 10))  # about ten seconds of load
    spec = LoadSpec(rate_per_s=rate, max_requests=count, max_duration_s=20, seed=1)
    results = asyncio.run(run_load(f"{server_url}/predict", spec, [{"texts": TEXTS[:1]}]))
    summary = summarise(results)
    print(f"capacity {capacity_per_s:.0f}/s, offered {rate:.0f}/s: {summary['by_status']}")
    assert summary["sent"] == len(results) > 100
    assert summary["unanswered"] == 0 and summary["mismatched_ids"] == 0
    assert set(summary["by_status"]) <= {"200", "503"}
    assert summary["by_status"].get("503", 0) > 0, "twice the capacity must overflow the queue"
    assert summary["by_status"].get("200", 0) > 0
    health = httpx.get(f"{server_url}/health").json()
    assert health["in_flight"] == 0 and health["status"] == "ok"
    assert health["rejected"] == summary["by_status"]["503"]
