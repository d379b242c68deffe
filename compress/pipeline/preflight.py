"""Everything about a job's config that can be checked before torch is imported (well under
2 s): ``config_problems(cfg)`` checks one composed job config — unknown keys (except the free
``tag`` namespace), the schema's ranges and the rules between groups, where the model's
weights come from, whether ``prune`` leaves at least one unit of what a structured method
removes, and the data. ``sweep_problems`` does that for every job of a sweep before the first
one starts. How a refusal reaches the user: :mod:`compress.config.refusal`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from compress.config.errors import ConfigError
from compress.config.job import Config
from compress.config.refusal import first_line, refusal_lines
from compress.config.rules import backend_problems, structure_problems, unknown_keys
from compress.config.task import CausalLMTaskConfig
from compress.data.checks import data_problems
from compress.infra.placement import PARALLELISM
from compress.models import sources
from compress.models.families import family_problems
from compress.pipeline.resources import (
    architecture_problems,
    memory_problems,
    position_problems,
    thread_problems,
)


def _job_config(cfg: DictConfig) -> DictConfig:
    """The job's own config: no ``hydra`` node, and an output dir that needs no running job."""
    job = cfg.copy()
    with open_dict(job):
        job.pop("hydra", None)
        job.paths.output_dir = "."
    return job


def _model_config(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None  # the job's own loading reports an unreadable model


def _runs_here(cfg: DictConfig) -> bool:
    """Whether the job runs on this machine (so its cores and memory are this machine's):
    no launcher (a direct call), Hydra's basic launcher or joblib's; not SLURM or Ray."""
    launcher = OmegaConf.select(cfg, "hydra.launcher._target_")
    return launcher is None or launcher in PARALLELISM


def _model_problems(config: Config, model_config: dict, folder: Path, here: bool) -> list[str]:
    problems = (
        architecture_problems(config, model_config)
        or _family_problems(config, model_config)
        or backend_problems(config, model_config)
    )
    problems += structure_problems(config, model_config) + position_problems(config, model_config)
    if here and not problems:
        problems += thread_problems(config) + memory_problems(config, model_config, folder)
    if not problems and config.quant.skip:
        problems += skip_problems(config, folder)
    return problems


def _family_problems(config: Config, model_config: dict) -> list[str]:
    """The methods the model's family cannot take, from its ``model_type`` alone."""
    pruning = config.prune_method.name if config.prune > 0 else "none"
    backend = config.backend.name
    if isinstance(config.task, CausalLMTaskConfig) and backend == "torch_compiled":
        backend = "torch"  # a causal LM is not exported whole: its decode step is compiled
    return family_problems(model_config.get("model_type"), pruning, config.quant.name, backend)


def config_problems(cfg: DictConfig) -> list[str]:
    """One line per problem of a composed job config; empty when the job can start."""
    unknown = unknown_keys(cfg, Config)
    if unknown:
        return unknown
    try:
        config: Config = OmegaConf.to_object(_job_config(cfg))
        folder = sources.locate(config.model.name_or_path, Path(config.paths.cache_dir))
    except ConfigError as error:
        return [str(error)]
    model_config = _model_config(folder) if folder is not None else None
    if model_config is None:
        return (thread_problems(config) if _runs_here(cfg) else []) or data_problems(config, folder)
    return _model_problems(config, model_config, folder, _runs_here(cfg)) or data_problems(
        config, folder
    )


def skip_problems(config: Config, folder: Path) -> list[str]:
    """``quant.skip`` patterns that name no module of the model the task builds, found on a
    model built on the meta device (no weights are read; this imports torch, so it runs only
    for jobs that set ``quant.skip``)."""
    import torch
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
    )

    from compress.quantization.selection import check_patterns

    causal = isinstance(config.task, CausalLMTaskConfig)
    builder = AutoModelForCausalLM if causal else AutoModelForSequenceClassification
    with torch.device("meta"):
        model = builder.from_config(AutoConfig.from_pretrained(str(folder)))
    try:
        check_patterns(model, list(config.quant.skip))
    except ValueError as error:
        return [f"{error}, accepted: a glob or regular expression naming modules of the model"]
    return []


def sweep_problems(compose: Callable[[list[str]], DictConfig], jobs: list[list[str]]) -> list[str]:
    """Compose and check every job of a sweep; one line per problem, naming its job."""
    problems = []
    for number, overrides in enumerate(jobs):
        label = " ".join(o for o in overrides if not o.startswith("hydra.")) or "defaults"
        try:
            lines = config_problems(compose(list(overrides)))
        except Exception as error:  # composition: Hydra and OmegaConf raise many kinds
            lines = refusal_lines(error) or [first_line(error)]
        problems += [f"job {number} ({label}): {line}" for line in lines]
    return problems
