"""Time ``python -m analysis`` on a synthetic 100-job sweep (target: under 30 s).

    .venv/bin/python benchmarks/analysis_report.py [--keep DIR]

Builds 5 prune x 2 quant x 2 prune_method x 5 batch_size jobs (4 factors, no replicates:
25 figures) with records shaped like compress's, then runs the command in a fresh process so
that imports count too.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from itertools import product
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from compress.infra.atomic import write_json_atomic
from compress.record import RECORD_NAME

LEVELS = {
    "prune": [0.0, 0.2, 0.4, 0.6, 0.8],
    "quant": ["fp32", "int8"],
    "prune_method": ["global_l1", "l1"],
    "batch_size": [1, 2, 4, 8, 16],
}
BASELINE = {"accuracy": 0.8, "p50_ms": 100.0, "disk_bytes": 90_000_000}


def _side(accuracy: float, p50_ms: float, disk_bytes: float, rng: np.random.Generator) -> dict:
    samples = list(p50_ms * rng.lognormal(0, 0.05, 30))
    return {
        "size": {"params": 22_713_986, "disk_bytes": disk_bytes, "weight_bytes": disk_bytes},
        "speed": {"p50_ms": p50_ms, "p90_ms": max(samples), "samples_ms": samples},
        "quality": {"accuracy": accuracy, "f1": accuracy, "confusion_matrix": [[1, 2], [3, 4]]},
    }


def _record(levels: dict, rng: np.random.Generator) -> dict:
    prune, int8, batch = levels["prune"], levels["quant"] == "int8", levels["batch_size"]
    accuracy = BASELINE["accuracy"] - 0.1 * prune**2 - 0.005 * int8 + rng.normal(0, 0.003)
    p50_ms = BASELINE["p50_ms"] * batch**0.8 * (0.6 if int8 else 1) * rng.lognormal(0, 0.05)
    disk = BASELINE["disk_bytes"] * (0.27 if int8 else 1) + rng.normal(0, 1000)
    baseline = _side(BASELINE["accuracy"], BASELINE["p50_ms"] * batch**0.8, 9e7, rng)
    compressed = _side(accuracy, p50_ms, disk, rng)
    return {
        "schema_version": 1,
        "status": "ok",
        "error": None,
        "factors": levels,
        "config": {**levels, "bench": {"seq_len": 128}},
        "environment": {"versions": {"python": "3.11"}, "hardware": {"threads": 2}},
        "baseline": baseline,
        "compressed": compressed,
        "ratios": {
            "disk_bytes": disk / baseline["size"]["disk_bytes"],
            "latency_p50": p50_ms / baseline["speed"]["p50_ms"],
            "accuracy_delta": accuracy - BASELINE["accuracy"],
        },
        "notes": [],
    }


def build_sweep(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (root / "multirun.yaml").write_text("hydra:\n  mode: MULTIRUN\n")
    for number, values in enumerate(product(*LEVELS.values())):
        levels = dict(zip(LEVELS, values, strict=True))
        job = root / str(number)
        (job / ".hydra").mkdir(parents=True)
        overrides = [f"{key}={value}" for key, value in levels.items()]
        config = {
            **levels,
            "quant": {"name": levels["quant"]},
            "prune_method": {"name": levels["prune_method"]},
        }
        (job / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(overrides))
        (job / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(config))
        write_json_atomic(job / RECORD_NAME, _record(levels, rng))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build the sweep here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        root = args.keep or Path(temporary)
        root.mkdir(parents=True, exist_ok=True)
        build_sweep(root)
        start = time.perf_counter()
        command = [sys.executable, "-m", "analysis", str(root), "--log", "latency", "size"]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        figures = len(list((root / "analysis").glob("*.png")))
    print(f"100-job report, {figures} figures: {seconds:.1f} s (target: under 30 s)")


if __name__ == "__main__":
    main()
