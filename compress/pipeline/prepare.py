"""What every compression of a configured model starts from: the task, the cached baseline,
its tokenizer and loaded model, and the compression context. The job, the sensitivity scan
and the benchmarks all start here, so they prune and quantize the same model the same way.

``compose_config`` composes the project's own ``conf/config.yaml`` outside a Hydra run (for
benchmarks, serving and scripts).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict
from torch import nn
from transformers import PreTrainedTokenizerBase

from compress.config.job import Config
from compress.config.store import CONF_DIR, register_configs
from compress.infra.context import CompressionContext
from compress.pipeline.baseline import Baseline, ensure_baseline
from compress.pipeline.pruned import load_or_prune
from compress.tasks import build_task
from compress.tasks.base import Task


def compose_config(overrides: list[str] = ()) -> DictConfig:
    """The composed job config with ``overrides``, its output folder the working directory."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(Path.cwd())
    return cfg


@dataclass(frozen=True)
class Prepared:
    """A configured job's starting point (see the module docstring)."""

    config: Config
    task: Task
    baseline: Baseline
    tokenizer: PreTrainedTokenizerBase
    reference: nn.Module  # the baseline model, loaded: the teacher and the speed reference
    context: CompressionContext
    cache_dir: Path

    def pruned_model(self) -> tuple[nn.Module, dict, dict]:
        """The baseline pruned (and recovered) as configured: the float model, its pruning
        report and its training cost (cached when training ran)."""
        train_batches = partial(self.task.train_batches, self.tokenizer)
        return load_or_prune(
            self.config, self.baseline, self.reference, train_batches, self.context, self.cache_dir
        )


def prepare(config: Config) -> Prepared:
    """Build the task, train or load the cached baseline, and load its tokenizer and model."""
    task = build_task(config.task)
    cache_dir = Path(config.paths.cache_dir).expanduser()
    baseline = ensure_baseline(config.model, task, cache_dir)
    task.adopt_baseline(baseline.info["training"])
    tokenizer = baseline.load_tokenizer()
    context = CompressionContext(
        calibration=partial(task.calibration_batches, tokenizer),
        cache_dir=cache_dir,
        tokenizer=tokenizer,
    )
    return Prepared(config, task, baseline, tokenizer, baseline.load_model(), context, cache_dir)
