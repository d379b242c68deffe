"""Hydra callback: refuse a bad job before Hydra makes its output folder, and a bad sweep
before its first job starts (listing every bad job at once).

Registered in ``conf/config.yaml`` under ``hydra.callbacks``. It expands a sweep as Hydra's
basic sweeper does; the DoE sweeper plans its own design and checks its jobs itself.
"""

from __future__ import annotations

from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from compress.config.refusal import refuse
from compress.pipeline.preflight import config_problems, sweep_problems

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def basic_sweep_jobs(config: DictConfig) -> list[list[str]]:
    """The override list of every job the basic sweeper would launch, in job order."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = config.hydra.sweeper.get("params") or {}
    declared = [f"{key}={value}" for key, value in params.items()]
    declared += OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
    overrides = OverridesParser.create().parse_overrides(declared)
    batches = BasicSweeper.split_arguments(overrides, None)
    return [job for batch in batches for job in batch]


class ValidateJobs(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        problems = config_problems(config)
        if problems:
            refuse(problems)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.sweeper.get("_target_") != BASIC_SWEEPER:
            return  # the DoE sweeper checks its designed jobs itself
        loader = GlobalHydra.instance().config_loader()
        problems = sweep_problems(
            lambda overrides: loader.load_sweep_config(config, overrides),
            basic_sweep_jobs(config),
        )
        if problems:
            refuse(problems)
