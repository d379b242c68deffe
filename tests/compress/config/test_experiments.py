"""The studies of the docs as ``+experiment=<name>``: each composes, and every job its sweep
would launch composes into a valid config."""

from __future__ import annotations

import itertools

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from compress.config.store import CONF_DIR, register_configs

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
JOBS = {"recovery": 9, "screening_doe": 32, "lm_int8": 2}  # DoE: the full product it samples


def _compose(overrides: list[str]):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=True)


def test_every_experiment_is_listed_here():
    assert sorted(JOBS) == EXPERIMENTS


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_job_of_the_experiment_is_a_valid_config(compose_config, experiment):
    cfg = _compose([f"+experiment={experiment}"])
    params = cfg.hydra.sweeper.params
    assert str(cfg.hydra.sweep.dir).startswith("multirun/")
    levels = [
        [f"{key}={value}" for value in str(values).split(",")] for key, values in params.items()
    ]
    points = list(itertools.product(*levels))
    assert len(points) == JOBS[experiment]
    for point in points:
        config = OmegaConf.to_object(compose_config([f"+experiment={experiment}", *point]))
        for override in point:
            key, value = override.split("=")
            node = getattr(config, key)
            assert str(getattr(node, "name", node)) == value
