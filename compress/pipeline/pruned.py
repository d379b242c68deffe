"""The pruned (and recovered) float model a job quantizes next: the baseline pruned as the job's
prune settings say, then trained back as its recovery settings say.

Recovered models cost minutes of training: cache them by what determines them, so that a
re-run or another sweep with the same prune/recovery settings (but, say, another quant level
or batch size) reuses the trained weights.

Entry ``<cache>/recovered/<key>/``: ``model/`` (artifact of the pruned, trained float model)
and ``recovery.json`` (its pruning report and training cost). One-shot pruning without
training is not cached: it takes seconds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from torch import nn

from compress.backends import load_artifact
from compress.backends.torch.artifact import save_artifact
from compress.config.job import Config
from compress.config.quant import Int8QATConfig
from compress.config.training import NoRecoveryConfig
from compress.infra.atomic import write_json_atomic
from compress.infra.cache import cached_entry
from compress.infra.context import CompressionContext
from compress.pipeline.baseline import Baseline
from compress.quantization.qat import remove_fake_quantization
from compress.recovery.recipe import prune_and_recover


def pruned_model_key(config: Config, baseline: Baseline) -> str:
    material = {
        "baseline": baseline.folder.name,
        "prune": config.prune,
        "prune_method": asdict(config.prune_method),
        "schedule": asdict(config.schedule),
        "recovery": asdict(config.recovery),
        "qat": isinstance(config.quant, Int8QATConfig),
        "seed": config.seed,  # the job seeds torch before pruning: its runs must not share one
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def _train(config: Config, baseline: Baseline, teacher: nn.Module, train_batches,
           context: CompressionContext) -> tuple[nn.Module, dict, dict]:  # fmt: skip
    model = baseline.load_model()
    report, training = prune_and_recover(config, model, teacher, train_batches, context)
    remove_fake_quantization(model)  # QAT: keep the trained float weights, convert later
    return model, report.to_dict(), training


def load_or_prune(
    config: Config,
    baseline: Baseline,
    teacher: nn.Module,
    train_batches,
    context: CompressionContext,
    cache_dir: Path,
) -> tuple[nn.Module, dict, dict]:
    """The pruned (and recovered) float model, its pruning report and training cost."""
    if isinstance(config.recovery, NoRecoveryConfig):
        return _train(config, baseline, teacher, train_batches, context)
    trained: list[tuple[nn.Module, dict, dict]] = []

    def build(staging: Path) -> None:
        model, report, training = _train(config, baseline, teacher, train_batches, context)
        save_artifact(model, staging / "model")
        write_json_atomic(staging / "recovery.json", {"prune": report, "training": training})
        trained.append((model, report, training))

    key = pruned_model_key(config, baseline)
    folder = cached_entry(cache_dir / "recovered", key, build, "recovered model")
    if trained:
        model, report, training = trained[0]
        return model, report, training | {"reused_from_cache": False}
    saved = json.loads((folder / "recovery.json").read_text())
    training = saved["training"] | {"reused_from_cache": True}
    return load_artifact(folder / "model"), saved["prune"], training
