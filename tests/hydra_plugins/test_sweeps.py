"""Real multiruns on the tiny model through the DoE sweeper, a kill and a resume, fail-fast,
and the joblib launcher with its pinned jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from itertools import combinations
from pathlib import Path

import pytest

from tests.hydra_plugins.conftest import REPO, job_overrides, records, sweep_command

pytestmark = pytest.mark.slow

FRACTION = [
    "hydra/sweeper=doe",
    "hydra.sweeper.design=fracfact",
    "hydra.sweeper.generators='a b ab'",
    "prune=0.3,0.7",
    "quant=fp32,int8",
    "batch_size=1,2",
]


def test_fractional_sweep_runs_each_design_point_with_plain_overrides(run_sweep, tmp_path):
    sweep_dir = tmp_path / "fraction"
    run_sweep(sweep_dir, *FRACTION, "hydra.sweeper.replicates=2", "hydra.sweeper.seed=7")
    design = json.loads((sweep_dir / "design.json").read_text())
    assert design["design"] == "fracfact" and design["generators"] == "a b ab"
    assert (design["resolution"], design["seed"], design["replicates"]) == (3, 7, 2)
    assert sorted(design["run_order"]) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert ["prune", "quant:batch_size"] in design["aliases"]
    done = records(sweep_dir)
    assert sorted(done) == list(range(8))
    for job, row in enumerate(design["run_order"]):
        point = design["points"][row]
        assert done[job]["status"] == "ok"
        assert {k: done[job]["factors"][k] for k in point} == point
        assert job_overrides(sweep_dir, job)[-3:] == [f"{k}={v}" for k, v in point.items()]


def test_killed_sweep_resumes_without_losing_or_repeating_a_job(run_sweep, tiny_job, tmp_path):
    sweep_dir = tmp_path / "killed"
    arguments = ["hydra/sweeper=doe", "prune=0.3,0.7", "quant=fp32,int8"]
    command = sweep_command(sweep_dir, *arguments, *tiny_job)
    process = subprocess.Popen(
        command, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    victim = sweep_dir / "2"
    deadline = time.monotonic() + 240
    while not ((victim / ".hydra").exists() and len(records(sweep_dir)) == 2):
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "job 2 never started"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # mid-job: job 2 has started, its record is not there
    process.wait()
    before = records(sweep_dir)
    assert sorted(before) == [0, 1]
    stamps = {job: (sweep_dir / str(job) / "metrics.json").stat().st_mtime_ns for job in before}

    run_sweep(sweep_dir, *arguments)
    after = records(sweep_dir)
    assert sorted(after) == [0, 1, 2, 3]
    assert all(record["status"] == "ok" for record in after.values())
    for job, stamp in stamps.items():  # the finished jobs were skipped, not run again
        assert (sweep_dir / str(job) / "metrics.json").stat().st_mtime_ns == stamp
        assert after[job]["started_at"] == before[job]["started_at"]
    levels = sorted((r["factors"]["prune"], r["factors"]["quant"]) for r in after.values())
    assert levels == [(0.3, "fp32"), (0.3, "int8"), (0.7, "fp32"), (0.7, "int8")]
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1", "2", "3"]


# A job that passes every check before it starts and fails while it runs: 50 MB cannot hold
# the job's process, so the watch stops job 0; job 1 has the default limit.
FAILS_WHILE_RUNNING = "job.memory_limit_gb=0.05,0"


@pytest.mark.parametrize(
    "sweeper",
    [
        ["hydra/sweeper=doe", "hydra.sweeper.fail_fast=true", "hydra.sweeper.randomize=false"],
        ["hydra/sweeper=basic_fail_fast"],
    ],
)
def test_fail_fast_stops_at_the_first_failed_job(run_sweep, sweeper, tmp_path):
    sweep_dir = tmp_path / "fail-fast"
    result = run_sweep(sweep_dir, *sweeper, FAILS_WHILE_RUNNING, check=False)
    assert result.returncode != 0
    done = records(sweep_dir)
    assert list(done) == [0]
    assert done[0]["status"] == "failed" and done[0]["error"]
    assert not (sweep_dir / "1").exists()


def test_without_fail_fast_the_other_jobs_still_run(run_sweep, tmp_path):
    sweep_dir = tmp_path / "keep-going"
    sweeper = ["hydra/sweeper=doe", "hydra.sweeper.randomize=false"]
    result = run_sweep(sweep_dir, *sweeper, FAILS_WHILE_RUNNING, check=False)
    assert result.returncode != 0
    stderr = result.stderr.replace("\n", " ")
    assert "1 of 2 jobs failed: job 0 (job.memory_limit_gb=0.05): out of memory" in stderr
    assert [r["status"] for _, r in sorted(records(sweep_dir).items())] == ["failed", "ok"]


def test_joblib_jobs_run_in_parallel_on_their_own_cores(tmp_path):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("pinning parallel jobs needs at least 2 cores")
    sweep_dir = tmp_path / "placement"
    command = [
        sys.executable, str(Path(__file__).with_name("placement_app.py")), "-m",
        "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "job=0,1,2,3",
        f"hydra.sweep.dir={sweep_dir}",
    ]  # fmt: skip
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, timeout=300)
    jobs = [json.loads((sweep_dir / str(n) / "placement.json").read_text()) for n in range(4)]
    for job in jobs:
        assert job["placement"]["mode"] == "pinned"
        assert job["affinity"] == job["placement"]["cores"]
    overlapping = [
        (a, b) for a, b in combinations(jobs, 2) if a["start"] < b["end"] and b["start"] < a["end"]
    ]
    assert overlapping, "the two joblib workers never ran at the same time"
    for a, b in overlapping:
        assert set(a["placement"]["cores"]).isdisjoint(b["placement"]["cores"])


def test_joblib_sweep_records_where_each_job_ran(run_sweep, tmp_path):
    sweep_dir = tmp_path / "joblib"
    launcher = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    run_sweep(
        sweep_dir, "hydra/sweeper=doe", *launcher, "prune=0.3,0.7", "quant=fp32,int8", fresh=True
    )
    done = records(sweep_dir)
    assert sorted(done) == [0, 1, 2, 3]
    expected = "pinned" if len(os.sched_getaffinity(0)) >= 2 else "shared"
    for record in done.values():
        assert record["status"] == "ok"
        assert record["placement"]["mode"] == expected
        assert record["placement"]["launcher"] == "JoblibLauncher"
