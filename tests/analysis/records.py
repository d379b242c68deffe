"""Job folders as a Hydra sweep leaves them, built in code for the analysis tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from compress.infra.atomic import write_json_atomic
from compress.stats.paired import mcnemar_exact, paired_bootstrap, paired_ratio_bootstrap

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
    accuracy: float = 0.8,
    latency: float = 100.0,
    disk: float = 1000.0,
    baseline: dict[str, float] | None = None,
) -> dict:
    """An ``ok`` record with the fields the analysis reads, list-valued ones included;
    ``baseline`` replaces values of BASELINE."""
    base = BASELINE | (baseline or {})
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


def write_job(
    folder: Path,
    overrides: list[str],
    config: dict,
    record: dict | str | None,
    tables: dict[str, pd.DataFrame] | None = None,
) -> Path:
    """``record``: a metrics dict, raw text (to corrupt it), or None for a job that never ended;
    ``tables``: parquet files beside it by name (items.parquet, rounds.parquet)."""
    hydra = folder / ".hydra"
    hydra.mkdir(parents=True)
    (hydra / "overrides.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(overrides)))
    (hydra / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(config)))
    if isinstance(record, str):
        (folder / "metrics.json").write_text(record)
    elif record is not None:
        write_json_atomic(folder / "metrics.json", record)
    for name, table in (tables or {}).items():
        table.to_parquet(folder / name, index=False)
    return folder


Job = tuple[dict[str, Any], dict | str | None] | tuple[dict[str, Any], dict, dict]


def write_sweep(root: Path, jobs: list[Job], design: dict | None = None) -> Path:
    """A multirun folder: one numbered job per (levels by override key, record[, tables])."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "multirun.yaml").write_text("hydra:\n  mode: MULTIRUN\n")
    if design is not None:
        (root / "design.json").write_text(json.dumps(design))
    for number, (levels, record, *tables) in enumerate(jobs):
        overrides = [f"{key}={value}" for key, value in levels.items()]
        write_job(root / str(number), overrides, resolved_config(levels), record, *tables)
    return root


ITEMS_SEED = 7  # the evaluation items and the baseline's answers: the same in every job


def _scores(prediction: np.ndarray, classes: int, rng: np.random.Generator) -> np.ndarray:
    """Class probabilities whose argmax is ``prediction``."""
    logits = rng.normal(0, 1, (len(prediction), classes))
    rows = np.arange(len(prediction))
    logits[rows, prediction] = logits.max(axis=1) + rng.uniform(0.1, 2, len(prediction))
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def _answers(side: str, prediction: np.ndarray, classes: int, rng: np.random.Generator) -> dict:
    scores = _scores(prediction, classes, rng)
    return {f"{side}_prediction": prediction} | {
        f"{side}_score_{k}": scores[:, k] for k in range(classes)
    }


def baseline_items(items: int = 200, classes: int = 2, accuracy: float = 0.8) -> pd.DataFrame:
    """Labels and the baseline's predictions and class scores, seeded by ITEMS_SEED."""
    rng = np.random.default_rng(ITEMS_SEED)
    label = rng.integers(0, classes, items)
    wrong = (label + rng.integers(1, classes, items)) % classes
    prediction = np.where(rng.random(items) < accuracy, label, wrong)
    answers = _answers("baseline", prediction, classes, rng)
    return pd.DataFrame({"item": np.arange(items), "label": label} | answers)


def _rounds(latency: float, rng: np.random.Generator, rounds: int = 15) -> pd.DataFrame:
    """Both models' milliseconds per round: the baseline at 100 ms, 3% noise each."""
    noise = np.exp(rng.normal(0, 0.03, (2, rounds)))
    return pd.DataFrame(
        {"round": range(rounds), "baseline_ms": 100 * noise[0], "compressed_ms": latency * noise[1]}
    )


def _paired_record(items: pd.DataFrame, rounds: pd.DataFrame, disk: float) -> dict:
    """``metrics`` of these items and rounds, with the intervals and test a job records."""
    baseline = items["baseline_prediction"] == items["label"]
    compressed = items["compressed_prediction"] == items["label"]
    base_ms, comp_ms = rounds["baseline_ms"], rounds["compressed_ms"]
    base = {"accuracy": baseline.mean(), "p50_ms": base_ms.median()}
    record = metrics(compressed.mean(), comp_ms.median(), disk, base)
    record["ratios"]["intervals"] = {
        "accuracy_delta": paired_bootstrap(baseline, compressed).to_dict(),
        "latency_p50": paired_ratio_bootstrap(base_ms, comp_ms).to_dict(),
        "throughput": paired_ratio_bootstrap(comp_ms, base_ms, "mean").to_dict(),
    }
    record["ratios"]["tests"] = {"mcnemar": mcnemar_exact(baseline, compressed)}
    return record


def _changed(
    items: pd.DataFrame, flip: float, churn: float, rng: np.random.Generator
) -> np.ndarray:
    """Items the compressed model answers differently: a random ``flip`` fraction of all (a
    real effect: most were right), then ``churn`` more, half right and half wrong ones (noise
    that leaves the accuracy where it was)."""
    n = len(items)
    changed = rng.permutation(n) < round(flip * n)
    right = (items["baseline_prediction"] == items["label"]).to_numpy()
    for pool in (right & ~changed, ~right & ~changed):
        changed[rng.permutation(np.flatnonzero(pool))[: round(churn * n / 2)]] = True
    return changed


def paired_job(
    rng: np.random.Generator,
    flip: float = 0.0,
    latency: float = 100.0,
    disk: float = 1000.0,
    churn: float = 0.06,
    base: pd.DataFrame | None = None,
) -> tuple[dict, dict[str, pd.DataFrame]]:
    """A job with its items and rounds: the compressed model answers like the baseline except
    on the items ``_changed`` picks, where it picks another class."""
    items = (baseline_items() if base is None else base).copy()
    classes = sum(c.startswith("baseline_score_") for c in items.columns)
    other = (items["baseline_prediction"] + rng.integers(1, classes, len(items))) % classes
    changed = _changed(items, flip, churn, rng)
    prediction = np.where(changed, other, items["baseline_prediction"])
    items = items.assign(**_answers("compressed", prediction, classes, rng))
    rounds = _rounds(latency, rng)
    return _paired_record(items, rounds, disk), {"items.parquet": items, "rounds.parquet": rounds}
