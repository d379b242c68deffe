"""``python -m analysis.queueing <run dir> --slo-ms 200 --workers 1``: per recipe, the largest
Poisson arrival rate whose p95 response time meets the SLO, and response time against load.

Writes ``summary.csv``, ``summary.md``, ``curves.csv`` and ``response_vs_load.png`` into
``<run dir>/queueing`` (or ``--out``) and prints the summary.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from analysis.queueing.capacity import Scenario
from analysis.queueing.records import load_ok_records, per_job, per_recipe
from analysis.queueing.report import analyse, markdown_table
from analysis.queueing.simulation import Batching


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analysis.queueing", description=__doc__)
    parser.add_argument("run_dir", type=Path, help="a sweep folder (or one job's folder)")
    parser.add_argument("--slo-ms", type=float, required=True, help="p95 response-time SLO")
    parser.add_argument("--workers", type=int, default=1, help="model calls served at once")
    parser.add_argument(
        "--max-batch", type=int, default=1,
        help="dynamic batching: requests (one sequence each) per model call, at most",
    )  # fmt: skip
    parser.add_argument("--max-wait-ms", type=float, default=0.0, help="dynamic batching wait")
    parser.add_argument("--requests", type=int, default=20_000, help="per simulation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="default: <run dir>/queueing")
    return parser


def main(argv: Sequence[str] | None = None) -> Path:
    args = _parser().parse_args(argv)
    records = load_ok_records(args.run_dir)
    batching = Batching(args.max_batch, args.max_wait_ms)
    recipes = per_recipe(records) if batching.max_batch > 1 else per_job(records)
    scenario = Scenario(args.workers, batching, args.requests, args.seed)
    out_dir = args.out or args.run_dir / "queueing"
    summary = analyse(recipes, scenario, args.slo_ms, out_dir)
    print(markdown_table(summary))
    print(f"written to {out_dir}")
    return out_dir


if __name__ == "__main__":
    main()
