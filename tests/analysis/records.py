"""Job folders as a Hydra sweep leaves them, built in code for the analysis tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from compress.infra.records import write_json_atomic

BASE_CONFIG = {
    "model": {"name": "minilm", "name_or_path": "pkg:minilm"},
    "task": {"name": "sentiment"},
    "prune_method": {"name": "global_l1", "per_layer": False},
    "quant": {"name": "fp32"},
    "prune": 0.0,
    "batch_size": 8,
    "bench": {"seq_len": 128, "warmup": 5, "repeats": 30},
    "paths": {"output_dir": "${hydra:runtime.output_dir}"},
}
BASELINE = {"accuracy": 0.8, "p50_ms": 100.0, "disk_bytes": 1000.0}


def metrics(
    accuracy: float = 0.8, latency: float = 100.0, disk: float = 1000.0, **baseline: float
) -> dict:
    """An ``ok`` record with the fields the analysis reads, list-valued ones included."""
    base = BASELINE | baseline
    return {
        "schema_version": 1,
        "status": "ok",
        "error": None,
        "overrides": ["recorded=but-not-read"],
        "baseline": {
            "quality": {"accuracy": base["accuracy"], "confusion_matrix": [[1, 2], [3, 4]]},
            "speed": {"p50_ms": base["p50_ms"], "samples_ms": [base["p50_ms"]] * 3},
            "size": {"disk_bytes": base["disk_bytes"]},
        },
        "compressed": {
            "quality": {"accuracy": accuracy, "confusion_matrix": [[1, 2], [3, 4]]},
            "speed": {"p50_ms": latency, "samples_ms": [latency] * 3},
            "size": {"disk_bytes": disk},
        },
        "ratios": {
            "disk_bytes": disk / base["disk_bytes"],
            "latency_p50": latency / base["p50_ms"],
            "accuracy_delta": accuracy - base["accuracy"],
        },
        "notes": ["a list, left out of the table"],
    }


def failed(error: str = "RuntimeError: out of memory") -> dict:
    return {"schema_version": 1, "status": "failed", "error": error, "traceback": "..."}


def resolved_config(levels: dict[str, Any]) -> dict:
    """BASE_CONFIG with each override applied; a config group is set by its ``name``."""
    config = OmegaConf.create(BASE_CONFIG)
    for key, value in levels.items():
        node = OmegaConf.select(config, key, throw_on_resolution_failure=False)
        OmegaConf.update(config, f"{key}.name" if isinstance(node, DictConfig) else key, value)
    return OmegaConf.to_container(config, resolve=False)


def write_job(folder: Path, overrides: list[str], config: dict, record: dict | str | None) -> Path:
    """``record``: a metrics dict, raw text (to corrupt it), or None for a job that never ended."""
    hydra = folder / ".hydra"
    hydra.mkdir(parents=True)
    (hydra / "overrides.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(overrides)))
    (hydra / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(config)))
    if isinstance(record, str):
        (folder / "metrics.json").write_text(record)
    elif record is not None:
        write_json_atomic(folder / "metrics.json", record)
    return folder


def write_sweep(
    root: Path, jobs: list[tuple[dict[str, Any], dict | str | None]], design: dict | None = None
) -> Path:
    """A multirun folder: one numbered job per (levels by override key, record)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "multirun.yaml").write_text("hydra:\n  mode: MULTIRUN\n")
    if design is not None:
        (root / "design.json").write_text(json.dumps(design))
    for number, (levels, record) in enumerate(jobs):
        overrides = [f"{key}={value}" for key, value in levels.items()]
        write_job(root / str(number), overrides, resolved_config(levels), record)
    return root
