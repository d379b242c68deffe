"""The sweeper and launcher options compose; a dry run previews the design and runs nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import CompactHydraException, ConfigCompositionException

from compress.config.store import register_configs
from hydra_plugins.doe_sweeper.doe_sweeper import _record_design
from tests.conftest import CONF_DIR
from tests.hydra_plugins.conftest import REPO

FIVE_FACTORS = [
    "model=minilm,mpnet",
    "prune=0.3,0.7",
    "prune_method=global_l1,l1",
    "quant=fp32,int8",
    "batch_size=1,8",
]


def hydra_config(*overrides: str):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True).hydra


def test_doe_sweeper_composes_with_its_design_settings():
    sweeper = hydra_config(
        "hydra/sweeper=doe", "hydra.sweeper.design=fracfact", "hydra.sweeper.resolution=4"
    ).sweeper
    assert sweeper._target_ == "hydra_plugins.doe_sweeper.doe_sweeper.DoeSweeper"
    assert (sweeper.design.value, sweeper.resolution, sweeper.replicates) == ("fracfact", 4, 1)
    assert (sweeper.seed, sweeper.randomize, sweeper.fail_fast) == (0, True, False)


def test_unknown_design_fails_at_composition_naming_the_designs():
    with pytest.raises(ConfigCompositionException) as error:
        hydra_config("hydra/sweeper=doe", "hydra.sweeper.design=taguchi")
    assert "fullfact, fracfact, pbdesign, bbdesign, ccdesign, lhs" in str(error.value.__cause__)


def test_basic_fail_fast_hands_out_one_job_at_a_time():
    sweeper = hydra_config("hydra/sweeper=basic_fail_fast").sweeper
    assert sweeper._target_.endswith("BasicSweeper") and sweeper.max_batch_size == 1


def test_slurm_preset_keeps_submitit_logs_in_the_sweep_dir():
    hydra = hydra_config("hydra/launcher=slurm", "hydra.sweep.dir=/shared/study")
    assert hydra.launcher._target_.endswith("SlurmLauncher")
    assert (hydra.launcher.cpus_per_task, hydra.launcher.tasks_per_node) == (4, 1)
    assert hydra.launcher.submitit_folder == "/shared/study/.submitit/%j"


def test_ray_preset_joins_an_existing_cluster_with_a_cpu_per_job():
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="pip install -e '.[ray]'")
    launcher = hydra_config("hydra/launcher=ray_cluster").launcher
    assert launcher.ray.init.address == "auto"
    assert launcher.ray.init.object_store_memory is None
    assert (launcher.ray.remote.num_cpus, launcher.ray.remote.num_gpus) == (1, 0)


def test_dry_run_prints_the_design_and_launches_nothing(tmp_path: Path, sweep_server):
    def dry_run(*arguments: str) -> subprocess.CompletedProcess:
        command = ["-m", "hydra/sweeper=doe", "hydra.sweeper.dry_run=true", *arguments,
                   f"hydra.sweep.dir={tmp_path / 'preview'}"]  # fmt: skip
        return sweep_server.run(command, cwd=REPO, timeout=120)

    design = ["hydra.sweeper.design=fracfact", "hydra.sweeper.resolution=4"]
    result = dry_run(*design, *FIVE_FACTORS, "quant=fp32,int3")
    assert result.returncode == 2  # every job's config is composed and checked first
    assert "quant=int3 is not an option of quant, accepted: bf16" in result.stderr

    result = dry_run(*design, *FIVE_FACTORS)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("fracfact, resolution IV")
    assert "16 design points x 1 replicate(s) = 16 jobs" in lines[0]
    assert "(full factorial of the declared levels: 32)" in lines[0]
    header = lines.index(next(line for line in lines if line.startswith("job")))
    assert lines[header].split() == ["job", "row", "model", "prune", "prune_method", "quant",
                                     "batch_size"]  # fmt: skip
    assert len(lines) - header - 1 == 16
    assert not (tmp_path / "preview").exists()


def test_a_sweep_dir_keeps_one_design(tmp_path: Path):
    path, first = tmp_path / "design.json", {"design": "fullfact", "run_order": [1, 0]}
    _record_design(path, first)
    _record_design(path, first)  # the same sweep, resumed
    with pytest.raises(CompactHydraException, match="holds a different design"):
        _record_design(path, {"design": "fullfact", "run_order": [0, 1]})
    assert json.loads(path.read_text()) == first
