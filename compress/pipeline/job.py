"""One job of a sweep: compress the cached baseline one way, measure both, write the record.

``run_job(cfg)`` is what ``@hydra.main`` calls; tests call it directly on a composed config.
Whatever happens, the job's folder ends with a ``metrics.json``: ``status: ok`` with the
measurements, or ``status: failed`` with the error; a failure is then re-raised so Hydra
reports it after the other jobs of the sweep have run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
import traceback
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from compress.backends import compress_on
from compress.backends.registry import CompressedModel
from compress.config.job import Config
from compress.config.prune import NoPruningConfig
from compress.infra.atomic import write_json_atomic
from compress.infra.environment import default_threads, git_revision, hardware, library_versions
from compress.infra.placement import own_cores
from compress.infra.quiet import quiet_libraries
from compress.measure.size import size_stats
from compress.pipeline.baseline import baseline_notes
from compress.pipeline.coldload import measure_cold_load
from compress.pipeline.isolation import run_isolated
from compress.pipeline.mixed_precision import keep_most_sensitive
from compress.pipeline.outcomes import paired_outcomes
from compress.pipeline.prepare import Prepared, prepare
from compress.record import (
    RECORD_NAME,
    Compression,
    JobRecord,
    Side,
    factor_levels,
    ratios,
    timestamp,
)
from compress.storage.artifact import TOKENIZER_DIR, disk_bytes
from compress.tasks.base import quality_metrics

log = logging.getLogger(__name__)


def _hydra_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _notes(
    config: Config, compression: Compression, baseline: dict, load_average: float, threads: int
) -> list[str]:
    prune, artifact = compression.prune, compression.artifact
    notes = list(prune["notes"]) + list(compression.quant["notes"])
    if baseline["training"].get("weights_note"):
        notes.append(baseline["training"]["weights_note"])
    notes += baseline_notes(baseline)
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


def _compress(prepared: Prepared, artifact_dir: Path) -> tuple[CompressedModel, Compression]:
    """Prune (and recover), choose the Linears kept float, then quantize for the backend,
    then save: the order every recipe follows."""
    config = prepared.config
    start = time.perf_counter()
    model, prune_report, training = prepared.pruned_model()
    kept = keep_most_sensitive(config, prepared.baseline, model, prepared.context,
                               prepared.cache_dir)  # fmt: skip
    compressed = compress_on(config.backend, model, kept.quant, prepared.context, artifact_dir)
    quant = dataclasses.replace(
        compressed.quant, notes=[*kept.notes, *compressed.quant.notes], kept_float=kept.names
    )
    artifact = {
        key: len(value) if isinstance(value, list | dict) else value
        for key, value in compressed.artifact.items()
    }
    report = Compression(prune_report, training, quant.to_dict(), artifact,
                         time.perf_counter() - start)  # fmt: skip
    return compressed, report


def _measure(prepared: Prepared, models: dict, threads: int) -> dict[str, Side]:
    """Size and speed of each ``(model, folder, size)``; timed with the models interleaved."""
    config = prepared.config
    runners = {name: model for name, (model, _, _) in models.items()}
    speeds = prepared.task.measure_speed(
        runners, prepared.tokenizer, config.batch_size, config.bench
    )
    measured = {}
    for name, (_, folder, size) in models.items():
        speed = speeds[name]
        if config.bench.cold_load:
            speed["cold_load"] = measure_cold_load(
                folder, config.batch_size, config.bench.seq_len, threads
            )
        measured[name] = Side({**size, "disk_bytes": disk_bytes(folder)}, speed)
    return measured


def _set_up_process(config: Config) -> int:
    """Threads, seed and quiet logs for this job; returns the thread count."""
    quiet_libraries()
    threads = config.threads or default_threads()
    torch.set_num_threads(threads)
    torch.manual_seed(config.seed)
    # Compiled backends keep Inductor's graph cache beside the baselines: a recipe compiled by
    # one job (or its cold-load process) is loaded, not compiled, by the next.
    cache = Path(config.paths.cache_dir).expanduser()
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache / "inductor"))
    return threads


def _pairing(baseline_key: str, fingerprint: str, seed: int) -> dict:
    """What makes two records pairable: the same baseline, the same evaluation items."""
    return {"baseline_key": baseline_key, "eval_fingerprint": fingerprint, "seed": seed}


def _compress_and_measure(config: Config, record: JobRecord, output_dir: Path) -> None:
    """Fill ``record``'s measurement sections; ``timing.overhead_s`` is what preparing took
    (the baseline trained or loaded)."""
    started = time.perf_counter()
    threads = _set_up_process(config)
    record.environment = _environment(threads)
    prepared = prepare(config)
    record.timing["overhead_s"] = time.perf_counter() - started

    artifact_dir = output_dir / "artifact"
    compressed, record.compression = _compress(prepared, artifact_dir)
    prepared.tokenizer.save_pretrained(str(artifact_dir / TOKENIZER_DIR))
    info = prepared.baseline.info
    reference = prepared.reference
    quality, outputs = prepared.task.evaluate(
        compressed.model, prepared.tokenizer, reference=info["outputs"], baseline_model=reference
    )
    models = {
        "baseline": (reference, prepared.baseline.model_dir, size_stats(reference)),
        "compressed": (compressed.model, artifact_dir, compressed.size),
    }
    measured = _measure(prepared, models, threads)
    record.baseline, record.compressed = measured["baseline"], measured["compressed"]
    record.baseline.quality, record.baseline.training = info["quality"], info["training"]
    gate = info.get("gate") or {}
    record.baseline.data, record.baseline.gate = info.get("data"), gate
    record.baseline.learned = gate.get("learned")
    record.compressed.quality = quality
    if not config.keep_artifact:
        shutil.rmtree(artifact_dir)
    record.ratios = ratios(record.baseline, record.compressed, quality_metrics(prepared.task))
    comparison, fingerprint = paired_outcomes(
        prepared.task, outputs, info["outputs"], measured, output_dir, config.seed,
        quality=gate.get("learned") is not False,
    )  # fmt: skip
    record.ratios |= comparison
    record.pairing = _pairing(prepared.baseline.folder.name, fingerprint, config.seed)
    load_average = record.environment["hardware"]["load_average_1m"]
    record.notes = _notes(config, record.compression, info, load_average, threads)


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


def execute(cfg: DictConfig, record: JobRecord, output_dir: Path) -> dict:
    """Run the job here, in this process, and write ``record`` whatever happens."""
    start = time.perf_counter()
    try:
        config: Config = OmegaConf.to_object(cfg)
        _compress_and_measure(config, record, output_dir)
        record.status = "ok"
    except Exception as error:
        record.error = f"{type(error).__name__}: {error}"
        record.traceback = traceback.format_exc()
        log.error("job failed: %s", record.error)
        raise
    finally:
        record.finished_at = timestamp()
        record.timing["wall_s"] = time.perf_counter() - start
        write_json_atomic(output_dir / RECORD_NAME, record.to_dict())
    return record.to_dict()


def run_job(cfg: DictConfig) -> dict:
    """Run one design point and write its record into ``cfg.paths.output_dir``: in a child
    process (``job.isolate``, the default) or in this one."""
    output_dir = Path(cfg.paths.output_dir)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    finished = _finished_record(output_dir, resolved)
    if finished is not None:
        log.info("skipping: %s already holds an ok record of this job", output_dir)
        return finished
    record = JobRecord(factor_levels(cfg), _hydra_overrides(), resolved, timestamp())
    with own_cores() as placement:  # parallel launchers: pin this job to its own cores
        record.placement = placement
        if cfg.job.isolate:
            return run_isolated(execute, cfg, record, output_dir)
        return execute(cfg, record, output_dir)
