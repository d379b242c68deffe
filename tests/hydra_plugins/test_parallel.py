"""Jobs that run side by side pin themselves to cores of their own; the record says so."""

from __future__ import annotations

import os
import threading
from contextlib import ExitStack
from pathlib import Path

import pytest

from compress.infra.placement import _claim, own_cores

BASIC = {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}
JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
RAY = "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"
CORES = sorted(os.sched_getaffinity(0))
two_cores = pytest.mark.skipif(len(CORES) < 2, reason="pinning needs at least 2 cores")


def joblib(n_jobs: int) -> dict:
    return {"_target_": JOBLIB, "n_jobs": n_jobs}


def ray(num_cpus: int) -> dict:
    return {"_target_": RAY, "ray": {"init": {"address": None}, "remote": {"num_cpus": num_cpus}}}


@pytest.mark.parametrize("launcher", [None, BASIC, joblib(1), ray(len(CORES))])
def test_one_job_at_a_time_keeps_every_core(launcher, tmp_path: Path):
    with own_cores(launcher, lock_dir=tmp_path) as placement:
        assert placement["mode"] == "serial"
        assert placement["cores"] == CORES
        assert sorted(os.sched_getaffinity(0)) == CORES


@two_cores
@pytest.mark.parametrize(("launcher", "per_job"), [(joblib(2), len(CORES) // 2), (ray(1), 1)])
def test_parallel_job_pins_all_its_threads_then_lets_go(launcher, per_job, tmp_path: Path):
    started, release = threading.Event(), threading.Event()
    worker = threading.Thread(target=lambda: (started.set(), release.wait()))
    worker.start()
    started.wait()
    try:
        with own_cores(launcher, lock_dir=tmp_path) as placement:
            assert placement["mode"] == "pinned"
            assert len(placement["cores"]) == per_job
            assert sorted(os.sched_getaffinity(0)) == placement["cores"]
            assert sorted(os.sched_getaffinity(worker.native_id)) == placement["cores"]
    finally:
        release.set()
        worker.join()
    assert sorted(os.sched_getaffinity(0)) == CORES


def test_concurrent_jobs_claim_different_cores(tmp_path: Path):
    holders = [ExitStack() for _ in CORES]
    claims = [_claim(CORES, 1, tmp_path, holder) for holder in holders]
    assert sorted(core for claim in claims for core in claim) == CORES
    with ExitStack() as late:
        assert _claim(CORES, 1, tmp_path, late) is None
    holders[0].close()
    with ExitStack() as late:
        assert _claim(CORES, 2, tmp_path, late) is None  # one free core is not enough ...
        assert _claim(CORES, 1, tmp_path, late) == claims[0]  # ... and was not kept
    for holder in holders:
        holder.close()


def test_more_parallel_jobs_than_cores_is_recorded_as_shared(tmp_path: Path):
    with own_cores(joblib(4 * len(CORES)), lock_dir=tmp_path) as placement:
        assert placement == {"mode": "shared", "cores": CORES, "launcher": "JoblibLauncher"}


def test_other_launchers_are_recorded_as_unmanaged(tmp_path: Path):
    slurm = {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"}
    with own_cores(slurm, lock_dir=tmp_path) as placement:
        assert placement == {"mode": "unmanaged", "cores": CORES, "launcher": "SlurmLauncher"}
