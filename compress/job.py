"""One job of a sweep: compress the cached baseline one way, measure both, write the record.

``run_job(cfg)`` is what ``@hydra.main`` calls; tests call it directly on a composed config.
Whatever happens, the job's folder ends with a ``metrics.json``: ``status: ok`` with the
measurements, or ``status: failed`` with the error; a failure is then re-raised so Hydra
reports it after the other jobs of the sweep have run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import traceback
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from compress.backends import compress_on
from compress.backends.registry import CompressedModel
from compress.infra.context import CompressionContext
from compress.infra.environment import default_threads, git_revision, hardware, library_versions
from compress.infra.placement import own_cores
from compress.infra.quiet import quiet_libraries
from compress.infra.records import RECORD_NAME, SCHEMA_VERSION, write_json_atomic
from compress.measure.coldload import measure_cold_load
from compress.measure.gate import baseline_notes
from compress.measure.size import size_stats
from compress.models.baseline import Baseline, ensure_baseline
from compress.outcomes import paired_outcomes
from compress.recovery.cache import load_or_recover
from compress.schema import Config, NoPruningConfig, QualityMetric
from compress.storage.artifact import TOKENIZER_DIR, disk_bytes
from compress.tasks import build_task
from compress.tasks.base import Task, quality_metrics

log = logging.getLogger(__name__)

FACTORS = (
    "model", "task", "prune_method", "prune", "schedule", "recovery", "quant", "backend",
    "batch_size", "decoding",
)  # fmt: skip
# Factors that live deeper in the config than their name says.
_FACTOR_KEYS = {"decoding": "task.decoding"}


def factor_levels(cfg: DictConfig) -> dict:
    """The design point of this job, by factor name (group options by their ``name``;
    a factor the job's task does not have is ``None``)."""
    levels = {}
    for factor in FACTORS:
        node = OmegaConf.select(cfg, _FACTOR_KEYS.get(factor, factor))
        levels[factor] = node.get("name") if isinstance(node, DictConfig) else node
    return levels


def _hydra_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _ratio(new: float | None, old: float | None) -> float | None:
    return new / old if new is not None and old else None


def _ratios(baseline: dict, compressed: dict, metrics: tuple[QualityMetric, ...]) -> dict:
    ratios = {
        "disk_bytes": _ratio(compressed["size"]["disk_bytes"], baseline["size"]["disk_bytes"]),
        "weight_bytes": _ratio(
            compressed["size"]["weight_bytes"], baseline["size"]["weight_bytes"]
        ),
        "nonzero_params": _ratio(
            compressed["size"]["nonzero_params"], baseline["size"]["nonzero_params"]
        ),
        "latency_p50": _ratio(compressed["speed"]["p50_ms"], baseline["speed"]["p50_ms"]),
        "latency_mean": _ratio(compressed["speed"]["mean_ms"], baseline["speed"]["mean_ms"]),
        "throughput": _ratio(
            compressed["speed"]["throughput_sps"], baseline["speed"]["throughput_sps"]
        ),
    }
    for key in ("load_s", "peak_rss_bytes"):
        old, new = baseline["speed"].get("cold_load", {}), compressed["speed"].get("cold_load", {})
        ratios[f"cold_{key}"] = _ratio(new.get(key), old.get(key))
    for metric in metrics:
        if baseline["quality"].get(metric.name) is not None:
            ratios[metric.ratio_key] = metric.compare(
                compressed["quality"].get(metric.name), baseline["quality"][metric.name]
            )
    return ratios


def _notes(
    config: Config, compression: dict, baseline: Baseline, load_average: float, threads: int
) -> list[str]:
    prune, quant, artifact = (compression[k] for k in ("prune", "quant", "artifact"))
    notes = list(prune["notes"]) + list(quant["notes"])
    if baseline.info["training"].get("weights_note"):
        notes.append(baseline.info["training"]["weights_note"])
    notes += baseline_notes(baseline.info)
    if getattr(config.task, "decoding", None) == "speculative":
        notes.append(
            "decoding=speculative: the compressed speed is the baseline verifying the "
            "compressed model's drafts (batch 1); its output equals the baseline's greedy output"
        )
    if isinstance(config.prune_method, NoPruningConfig) and config.prune > 0:
        notes.append(f"prune_method=none ignores prune={config.prune}: nothing was removed")
    if prune["zeros_in_scope"] and not prune["structured"]:
        sparse = artifact.get("sparse", 0)
        stored = (
            f"{sparse} sparse weight matrices are stored as bitmask + values"
            if sparse
            else "no weight matrix is stored sparse"
        )
        notes.append(f"unstructured zeros are computed by dense kernels (no speed-up); {stored}")
    if load_average > threads:
        notes.append(
            f"1-minute load average {load_average:.1f} exceeded {threads} threads: "
            "timings may be inflated"
        )
    return notes


def _environment(threads: int) -> dict:
    return {
        "versions": library_versions(),
        "hardware": hardware(threads),
        "git": git_revision(Path(__file__).parent),
    }


def _compress(
    config: Config, baseline: Baseline, teacher: torch.nn.Module, task: Task, tokenizer,
    artifact_dir: Path,
) -> tuple[CompressedModel, dict]:  # fmt: skip
    """Prune (and recover), then quantize for the backend, then save: the order every recipe
    follows."""
    start = time.perf_counter()
    context = CompressionContext(
        calibration=partial(task.calibration_batches, tokenizer),
        cache_dir=Path(config.paths.cache_dir).expanduser(),
    )
    model, prune_report, training = load_or_recover(
        config, baseline, teacher, partial(task.train_batches, tokenizer), context,
        Path(config.paths.cache_dir).expanduser(),
    )  # fmt: skip
    compressed = compress_on(config.backend, model, config.quant, context, artifact_dir)
    seconds = time.perf_counter() - start
    artifact = {
        key: len(value) if isinstance(value, list | dict) else value
        for key, value in compressed.artifact.items()
    }
    report = {"prune": prune_report, "recovery": training, "quant": compressed.quant.to_dict(),
              "artifact": artifact, "seconds": seconds}  # fmt: skip
    return compressed, report


def _measure(config: Config, task: Task, models: dict, tokenizer, threads: int) -> dict[str, dict]:
    """Speed of each ``(model, folder, size)``; timed with the models interleaved."""
    bench = config.bench
    runners = {name: model for name, (model, _, _) in models.items()}
    speeds = task.measure_speed(runners, tokenizer, config.batch_size, bench)
    measured = {}
    for name, (_, folder, size) in models.items():
        speed = speeds[name]
        if bench.cold_load:
            speed["cold_load"] = measure_cold_load(
                folder, config.batch_size, bench.seq_len, threads
            )
        measured[name] = {"size": {**size, "disk_bytes": disk_bytes(folder)}, "speed": speed}
    return measured


def _set_up_process(config: Config) -> tuple[int, Path]:
    """Threads, seed and quiet logs for this job; returns the thread count and the cache."""
    quiet_libraries()
    threads = config.threads or default_threads()
    torch.set_num_threads(threads)
    torch.manual_seed(config.seed)
    # Compiled backends keep Inductor's graph cache beside the baselines: a recipe compiled by
    # one job (or its cold-load process) is loaded, not compiled, by the next.
    cache = Path(config.paths.cache_dir).expanduser()
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache / "inductor"))
    return threads, cache


def _compress_and_measure(config: Config, output_dir: Path) -> dict:
    started = time.perf_counter()
    threads, cache = _set_up_process(config)
    environment = _environment(threads)
    task = build_task(config.task)
    baseline = ensure_baseline(config.model, task, cache)
    task.adopt_baseline(baseline.info["training"])
    tokenizer = baseline.load_tokenizer()
    reference = baseline.load_model()
    overhead_s = time.perf_counter() - started

    artifact_dir = output_dir / "artifact"
    compressed, compression = _compress(config, baseline, reference, task, tokenizer, artifact_dir)
    tokenizer.save_pretrained(str(artifact_dir / TOKENIZER_DIR))
    reference_outputs = baseline.info["outputs"]
    quality, outputs = task.evaluate(compressed.model, tokenizer, reference=reference_outputs)
    models = {
        "baseline": (reference, baseline.model_dir, size_stats(reference)),
        "compressed": (compressed.model, artifact_dir, compressed.size),
    }
    measured = _measure(config, task, models, tokenizer, threads)
    measured["baseline"]["quality"] = baseline.info["quality"]
    measured["baseline"]["training"] = baseline.info["training"]
    gate = baseline.info.get("gate") or {}
    measured["baseline"] |= {"data": baseline.info.get("data"), "learned": gate.get("learned"),
                             "gate": gate}  # fmt: skip
    measured["compressed"]["quality"] = quality
    if not config.keep_artifact:
        shutil.rmtree(artifact_dir)
    ratios = _ratios(measured["baseline"], measured["compressed"], quality_metrics(task))
    ratios |= paired_outcomes(task, outputs, reference_outputs, measured, output_dir, config.seed,
                              quality=gate.get("learned") is not False)  # fmt: skip
    load_average = environment["hardware"]["load_average_1m"]
    return {
        "environment": environment,
        "compression": compression,
        **measured,
        "ratios": ratios,
        "notes": _notes(config, compression, baseline, load_average, threads),
        "timing": {"overhead_s": overhead_s},
    }


def _finished_record(output_dir: Path, resolved: dict) -> dict | None:
    """The record of an earlier run of this very job, if it ended ``ok``: a re-run of a sweep
    into the same folder then skips it. A killed job never wrote one (writes are atomic)."""
    path = output_dir / RECORD_NAME
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if record.get("status") == "ok" and record.get("config") == resolved:
        return record
    return None


def run_job(cfg: DictConfig) -> dict:
    """Run one design point and write its record into ``cfg.paths.output_dir``."""
    output_dir = Path(cfg.paths.output_dir)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    finished = _finished_record(output_dir, resolved)
    if finished is not None:
        log.info("skipping: %s already holds an ok record of this job", output_dir)
        return finished
    start = time.perf_counter()
    record: dict = {
        "schema_version": SCHEMA_VERSION,
        "status": "failed",
        "error": None,
        "factors": factor_levels(cfg),
        "overrides": _hydra_overrides(),
        "config": resolved,
        "started_at": _now(),
    }
    try:
        config: Config = OmegaConf.to_object(cfg)
        with own_cores() as placement:  # parallel launchers: pin this job to its own cores
            record["placement"] = placement
            results = _compress_and_measure(config, output_dir)
        timing = results.pop("timing")
        record.update(results, status="ok")
    except Exception as error:
        record["error"] = f"{type(error).__name__}: {error}"
        record["traceback"] = traceback.format_exc()
        log.error("job failed: %s", record["error"])
        timing = {}
        raise
    finally:
        record["finished_at"] = _now()
        record["timing"] = {**timing, "wall_s": time.perf_counter() - start}
        write_json_atomic(output_dir / RECORD_NAME, record)
    return record
