"""Keeps jobs that a launcher runs side by side from timing each other.

With the joblib launcher (``n_jobs`` > 1) or the Ray launcher (``num_cpus`` per job), each job
claims cores of its own (one lock file per core in the node's temp dir, so every sweep on the
node takes part) and pins every thread of its process to them while it runs. What happened
goes into the job's record as ``placement``:

- ``serial``: the launcher runs one job at a time here (basic launcher, ``n_jobs=1``);
- ``pinned``: jobs run side by side and this one ran alone on ``cores``;
- ``shared``: jobs run side by side but too few cores were free to pin: timings are inflated;
- ``unmanaged``: another launcher (submitit on SLURM: the scheduler's cgroup) placed the job,
  ``cores`` is the affinity it was given.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

LOCK_DIR = Path(tempfile.gettempdir()) / "compress-cores"


def _joblib_cores(launcher: Mapping[str, Any], available: int) -> int | None:
    n_jobs = int(launcher.get("n_jobs") or 1)
    parallel = n_jobs if n_jobs > 0 else max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return available // parallel if parallel > 1 else None


def _ray_cores(launcher: Mapping[str, Any], available: int) -> int | None:
    remote = launcher.get("ray", {}).get("remote") or {}
    cores = max(1, int(remote.get("num_cpus") or 1))  # Ray reserves one CPU per task by default
    return cores if available // cores > 1 else None


def _serial(launcher: Mapping[str, Any], available: int) -> int | None:
    return None


# Cores per job when a launcher runs jobs side by side on this node; None: one job at a time.
PARALLELISM: dict[str, Callable[[Mapping[str, Any], int], int | None]] = {
    "hydra._internal.core_plugins.basic_launcher.BasicLauncher": _serial,
    "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher": _joblib_cores,
    "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher": _ray_cores,
}


def _hydra_launcher() -> Mapping[str, Any] | None:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().launcher if HydraConfig.initialized() else None


def _claim(cores: list[int], count: int, lock_dir: Path, stack: ExitStack) -> list[int] | None:
    """Lock ``count`` free cores for as long as ``stack`` is open; None if too few are free."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    claimed: list[int] = []
    with ExitStack() as attempt:
        for core in cores:
            handle = attempt.enter_context(open(lock_dir / f"core-{core}.lock", "a"))
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            claimed.append(core)
            if len(claimed) == count:
                stack.enter_context(attempt.pop_all())  # the locks live as long as the job
                return claimed
    return None


def _pin_threads(cores: set[int]) -> None:
    """Every thread of this process, not just the calling one: a reused worker process keeps
    the thread pools of earlier jobs."""
    for thread in os.listdir("/proc/self/task"):
        with suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(thread), cores)


def _affinity() -> set[int]:
    if hasattr(os, "sched_getaffinity"):
        return os.sched_getaffinity(0)
    return set(range(os.cpu_count() or 1))


@contextmanager
def own_cores(
    launcher: Mapping[str, Any] | None = None, lock_dir: Path = LOCK_DIR
) -> Iterator[dict]:
    """Pin this job to cores of its own while it runs if its launcher runs jobs side by side;
    yields the ``placement`` to record. ``launcher`` defaults to Hydra's launcher config."""
    launcher = launcher if launcher is not None else _hydra_launcher()
    original = _affinity()
    target = str(launcher.get("_target_", "")) if launcher is not None else ""
    placement = {"mode": "serial", "cores": sorted(original), "launcher": target.split(".")[-1]}
    if launcher is None:
        yield placement | {"launcher": None}
        return
    if target not in PARALLELISM:
        yield placement | {"mode": "unmanaged"}
        return
    per_job = PARALLELISM[target](launcher, len(original))
    if per_job is None:
        yield placement
        return
    with ExitStack() as stack:
        can_pin = per_job > 0 and hasattr(os, "sched_setaffinity")
        cores = _claim(sorted(original), per_job, lock_dir, stack) if can_pin else None
        if cores is None:
            yield placement | {"mode": "shared"}
            return
        _pin_threads(set(cores))
        try:
            yield placement | {"mode": "pinned", "cores": cores}
        finally:
            _pin_threads(original)
