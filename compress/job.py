"""One job of a sweep: compress the cached baseline one way, measure both, write the record.

``run_job(cfg)`` is what ``@hydra.main`` calls; tests call it directly on a composed config.
Whatever happens, the job's folder ends with a ``metrics.json``: ``status: ok`` with the
measurements, or ``status: failed`` with the error; a failure is then re-raised so Hydra
reports it after the other jobs of the sweep have run.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import traceback
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from compress.artifact import TOKENIZER_DIR, disk_bytes, save_artifact
from compress.baseline import ensure_baseline
from compress.env_info import default_threads, git_revision, hardware, library_versions
from compress.measure.coldload import measure_cold_load
from compress.measure.size import size_stats
from compress.pruning import PruneContext, prune_model
from compress.quantization import quantize_
from compress.quiet import quiet_libraries
from compress.records import RECORD_NAME, SCHEMA_VERSION, write_json_atomic
from compress.schema import Config, NoPruningConfig
from compress.tasks import build_task

log = logging.getLogger(__name__)

FACTORS = ("model", "task", "prune_method", "prune", "quant", "batch_size")


def factor_levels(cfg: DictConfig) -> dict:
    """The design point of this job, by factor name (group options by their ``name``)."""
    levels = {}
    for factor in FACTORS:
        node = cfg.get(factor)
        levels[factor] = node.get("name") if isinstance(node, DictConfig) else node
    return levels


def _hydra_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _ratio(new: float | None, old: float | None) -> float | None:
    return new / old if new is not None and old else None


def _ratios(baseline: dict, compressed: dict) -> dict:
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
    for key in ("accuracy", "f1", "roc_auc"):
        if key in baseline["quality"]:
            ratios[f"{key}_delta"] = compressed["quality"][key] - baseline["quality"][key]
    return ratios


def _notes(config: Config, compression: dict, load_average: float, threads: int) -> list[str]:
    prune, quant, artifact = (compression[k] for k in ("prune", "quant", "artifact"))
    notes = list(prune["notes"]) + list(quant["notes"])
    if isinstance(config.prune_method, NoPruningConfig) and config.prune > 0:
        notes.append(f"prune_method=none ignores prune={config.prune}: nothing was removed")
    if prune["zeros_in_scope"] and not prune["structured"]:
        stored = (
            f"{artifact['sparse']} sparse weight matrices are stored as bitmask + values"
            if artifact["sparse"]
            else "no weight matrix was sparse enough to store smaller than dense"
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
    config: Config, model: torch.nn.Module, context: PruneContext, artifact_dir: Path
) -> dict:
    """Prune, then quantize, then save: the order every recipe follows."""
    start = time.perf_counter()
    prune_report = prune_model(config.prune_method, model, config.prune, context).to_dict()
    quant_report = quantize_(config.quant, model).to_dict()
    seconds = time.perf_counter() - start
    manifest = save_artifact(model, artifact_dir)
    artifact = {k: len(v) if isinstance(v, list | dict) else v for k, v in manifest.items()}
    return {"prune": prune_report, "quant": quant_report, "artifact": artifact, "seconds": seconds}


def _measure(
    config: Config, task, models: dict, folders: dict[str, Path], tokenizer, threads: int
) -> dict[str, dict]:
    """Size and speed of each model; speed is timed with the models interleaved."""
    bench = config.bench
    speeds = task.measure_speed(models, tokenizer, config.batch_size, bench)
    measured = {}
    for name, model in models.items():
        speed = speeds[name]
        if bench.cold_load:
            speed["cold_load"] = measure_cold_load(
                folders[name], config.batch_size, bench.seq_len, threads
            )
        size = {**size_stats(model), "disk_bytes": disk_bytes(folders[name])}
        measured[name] = {"size": size, "speed": speed}
    return measured


def _compress_and_measure(config: Config, output_dir: Path) -> dict:
    started = time.perf_counter()
    quiet_libraries()
    threads = config.threads or default_threads()
    torch.set_num_threads(threads)
    torch.manual_seed(config.seed)
    environment = _environment(threads)
    task = build_task(config.task)
    baseline = ensure_baseline(config.model, task, Path(config.paths.cache_dir).expanduser())
    tokenizer = baseline.load_tokenizer()
    reference, model = baseline.load_model(), baseline.load_model()
    overhead_s = time.perf_counter() - started

    artifact_dir = output_dir / "artifact"
    context = PruneContext(calibration=partial(task.calibration_batches, tokenizer))
    compression = _compress(config, model, context, artifact_dir)
    tokenizer.save_pretrained(str(artifact_dir / TOKENIZER_DIR))
    quality, _ = task.evaluate(model, tokenizer, reference=baseline.info["outputs"])
    folders = {"baseline": baseline.model_dir, "compressed": artifact_dir}
    models = {"baseline": reference, "compressed": model}
    measured = _measure(config, task, models, folders, tokenizer, threads)
    measured["baseline"].update(
        quality=baseline.info["quality"], training=baseline.info["training"]
    )
    measured["compressed"]["quality"] = quality
    if not config.keep_artifact:
        shutil.rmtree(artifact_dir)
    load_average = environment["hardware"]["load_average_1m"]
    return {
        "environment": environment,
        "compression": compression,
        **measured,
        "ratios": _ratios(measured["baseline"], measured["compressed"]),
        "notes": _notes(config, compression, load_average, threads),
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
