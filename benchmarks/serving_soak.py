"""The inference server under abuse, measured: twice its capacity for a while, then a long soak
just under capacity, on loopback. Every request must get an answer (200, 413, 422 or 503; none
lost, none handed another request's answer) and the server's memory must stay flat.

    python benchmarks/serving_soak.py <artifact dir> --overload-s 60 --soak-s 600 \\
        --out benchmarks/results/serving_soak.md

Capacity is 1 / the median model time of requests sent one at a time (the server's own
Server-Timing ``service`` figure). The overload phase offers 2x that, the soak 0.8x, each as
Poisson arrivals (``compress.serving.loadgen``); one request in 50 of the soak is malformed
(422) and one in 50 too large (413), so refusals are part of the traffic. The server's RSS is
read at the start and at the end of each phase (psutil on its process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

from compress.serving.loadgen import LoadSpec, run_load, summarise

TEXT = "a thoughtful, beautifully acted film that stays with you"
ANSWERS = {"200", "413", "422", "503"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(artifact: Path, port: int, threads: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "compress.serving.server", str(artifact), "--port",
               str(port), "--threads", str(threads), "--pad"]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return server
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError(f"server did not start: {server.stderr.read().decode()[-500:]}")


def _service_ms(url: str) -> float:
    timings = []
    with httpx.Client() as client:
        for _ in range(50):
            header = client.post(f"{url}/predict", json={"texts": [TEXT]}).headers
            timings.append(float(header["server-timing"].split("service;dur=")[1].split(",")[0]))
    return float(np.median(timings))


def _phase(url: str, server: psutil.Process, rate: float, seconds: float, payloads) -> dict:
    rss_start = server.memory_info().rss
    spec = LoadSpec(rate, int(rate * seconds) + 1, seconds, seed=1)
    results = asyncio.run(run_load(f"{url}/predict", spec, payloads))
    summary = summarise(results)
    summary |= {"offered_per_s": rate, "seconds": seconds, "rss_start_mb": rss_start / 2**20,
                "rss_end_mb": server.memory_info().rss / 2**20}  # fmt: skip
    summary["other_status"] = sorted(set(summary["by_status"]) - ANSWERS)
    return summary


def _row(name: str, s: dict) -> str:
    statuses = ", ".join(f"{k}: {v}" for k, v in s["by_status"].items())
    return (f"| {name} | {s['offered_per_s']:.1f}/s x {s['seconds']:.0f} s | {s['sent']} | "
            f"{statuses} | {s['unanswered']} | {s['mismatched_ids']} | "
            f"{s.get('p50_ms', float('nan')):.0f} / {s.get('p99_ms', float('nan')):.0f} | "
            f"{s['rss_start_mb']:.0f} → {s['rss_end_mb']:.0f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact", type=Path)
    parser.add_argument("--overload-s", type=float, default=60)
    parser.add_argument("--soak-s", type=float, default=600)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    port = _free_port()
    server = _start(args.artifact, port, args.threads)
    url = f"http://127.0.0.1:{port}"
    try:
        capacity = 1000.0 / _service_ms(url)
        process = psutil.Process(server.pid)
        good = [{"texts": [TEXT]}]
        mixed = good * 48 + [{"text": TEXT}, {"texts": ["x" * 200_000]}]
        phases = {
            "2x capacity": _phase(url, process, 2 * capacity, args.overload_s, good),
            "soak 0.8x, 4% bad requests": _phase(url, process, 0.8 * capacity, args.soak_s, mixed),
        }
    finally:
        server.terminate()
        server.wait(timeout=10)
    lines = [
        f"capacity {capacity:.1f} requests/s (1 / median service time), {args.threads} threads",
        "",
        "| phase | offered | sent | answers by status | unanswered | mixed-up ids | "
        "p50 / p99 ms | server RSS MB |",
        "|---|---|---|---|---|---|---|---|",
        *(_row(name, summary) for name, summary in phases.items()),
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
        args.out.with_suffix(".json").write_text(json.dumps(phases, indent=1))


if __name__ == "__main__":
    main()
