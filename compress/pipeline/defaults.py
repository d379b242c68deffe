"""The project's own defaults outside a Hydra run: the composed ``conf/config.yaml`` and the
cached baseline it names (for benchmarks, serving and scripts)."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict

from compress.pipeline.baseline import Baseline, ensure_baseline
from compress.schema import CONF_DIR, register_configs
from compress.tasks import build_task


def compose_config(overrides: list[str] = ()) -> DictConfig:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(Path.cwd())
    return cfg


def default_baseline(overrides: list[str] = ()) -> tuple[Baseline, object]:
    """The cached baseline of the configured model and task (trained first if missing)."""
    cfg = compose_config(overrides)
    task = build_task(OmegaConf.to_object(cfg.task))
    cache = Path(cfg.paths.cache_dir).expanduser()
    return ensure_baseline(OmegaConf.to_object(cfg.model), task, cache), task
