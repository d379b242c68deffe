"""Jobs in a child process: a job that dies (memory, time, a signal, a native crash) leaves a
``failed`` record that says why in words, and the caller goes on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from omegaconf import OmegaConf

from compress.infra.atomic import write_json_atomic
from compress.pipeline.isolation import JobFailed, Limits, Watch, run_isolated
from compress.pipeline.job import run_job
from compress.record import RECORD_NAME, JobRecord, read_record, timestamp
from tests.conftest import TINY_JOB

REPO = Path(__file__).resolve().parents[3]


def _die_by(number: int) -> None:
    os.kill(os.getpid(), number)


def _segfault(cfg, record, folder) -> None:
    _die_by(signal.SIGSEGV)


def _raise(cfg, record, folder) -> None:
    raise AssertionError("never reached: the child is killed first")


@pytest.fixture
def job(compose_config, tiny_pretrained_dir):
    def _job(*overrides: str):
        return compose_config(
            [f"model.name_or_path={tiny_pretrained_dir}", *TINY_JOB, "job.isolate=true",
             *overrides]
        )  # fmt: skip

    return _job


def test_an_isolated_job_writes_the_same_record_as_in_process(job):
    cfg = job()
    record = run_job(cfg)
    assert record["status"] == "ok" and record["ratios"]["latency_p50"] > 0
    assert read_record(Path(cfg.paths.output_dir) / RECORD_NAME) == record


@pytest.mark.parametrize(
    ("override", "cause"),
    [
        ("job.memory_limit_gb=0.05", "out of memory (peak RSS "),
        ("job.timeout_s=0.5", "timed out after 0.5 s (job.timeout_s)"),
    ],
)
def test_a_job_past_its_limit_is_stopped_and_says_why(job, override, cause):
    cfg = job(override)
    with pytest.raises(JobFailed, match=cause.replace("(", r"\(").replace(")", r"\)")):
        run_job(cfg)
    record = read_record(Path(cfg.paths.output_dir) / RECORD_NAME)
    assert record["status"] == "failed" and record["error"].startswith(cause)
    assert "baseline" not in record and record["timing"]["peak_rss_bytes"] > 0


def test_a_native_crash_leaves_a_failed_record(tmp_path):
    cfg = OmegaConf.create({"job": {"memory_limit_gb": 4, "timeout_s": 60}})
    record = JobRecord({}, [], {}, timestamp())
    with pytest.raises(JobFailed, match=r"killed by signal 11 \(SIGSEGV: a native kernel crashed"):
        run_isolated(_segfault, cfg, record, tmp_path)
    assert read_record(tmp_path / RECORD_NAME)["error"].startswith("killed by signal 11")


def _record_where(cfg, record, folder) -> None:
    """Writes an ok record that says the child's folder and one variable of its environment."""
    record.status, record.finished_at = "ok", timestamp()
    record.notes = [os.getcwd(), os.environ.get("COMPRESS_PROBE", "")]
    write_json_atomic(folder / RECORD_NAME, record.to_dict())


def test_the_child_has_the_sweeps_folder_and_environment_as_the_job_starts(tmp_path, monkeypatch):
    """Not the fork server's (started earlier, elsewhere, with another environment): a
    sweep process that serves several sweeps, or that ``hydra.job.chdir`` moved, has its
    jobs run where and with what it has at their start."""
    cfg = OmegaConf.create({"job": {"memory_limit_gb": 4, "timeout_s": 60}})
    for folder, probe in ((tmp_path / "a", "1"), (tmp_path / "b", "2")):
        folder.mkdir()
        monkeypatch.chdir(folder)
        monkeypatch.setenv("COMPRESS_PROBE", probe)
        written = run_isolated(_record_where, cfg, JobRecord({}, [], {}, timestamp()), folder)
        assert written["notes"] == [str(folder), probe]


def _sleep(cfg, record, folder) -> None:
    time.sleep(600)


_PARENT = """
import sys
from pathlib import Path
from omegaconf import OmegaConf
from compress.infra.atomic import write_json_atomic
from compress.pipeline.isolation import run_isolated
from compress.record import JobRecord, timestamp
from tests.compress.pipeline.test_isolation import _sleep
cfg = OmegaConf.create({"job": {"memory_limit_gb": 4, "timeout_s": 0}})
run_isolated(_sleep, cfg, JobRecord({}, [], {}, timestamp()), Path(sys.argv[1]))
"""


def test_a_killed_parent_takes_its_job_with_it(tmp_path):
    """A sweep killed mid-job (SIGKILL: no clean-up runs) leaves no job holding the cores."""
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(tmp_path)], cwd=REPO)
    deadline = time.monotonic() + 120
    # the job is a child of the fork server, which is the sweep's child: wait for the job
    while not any(c.children() for c in psutil.Process(parent.pid).children()):
        assert time.monotonic() < deadline and parent.poll() is None, "no job started"
        time.sleep(0.1)
    time.sleep(2)  # the job is running, its watch on the parent started
    children = psutil.Process(parent.pid).children(recursive=True)
    parent.kill()
    parent.wait()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, "the job outlived the sweep that started it"


def test_causes_name_the_signal_and_the_memory():
    limits = Limits(memory_bytes=8 * 2**30, timeout_s=0)
    killed = Watch(peak_rss=2**30).cause(-signal.SIGKILL, limits)
    assert killed == (
        "killed by signal 9 (SIGKILL: the kernel's out-of-memory killer sends it; "
        "peak RSS 1.00 GiB of 8.00)"
    )
    assert Watch(stopped="timed out").cause(-9, limits) == "timed out"


@pytest.mark.slow
def test_a_sweep_goes_on_past_a_job_that_died_and_says_how_it_went(
    tmp_path, tiny_pretrained_dir, sweep_server
):
    """The done-when of the issue, with a job that outgrows its memory in the middle."""
    sweep = tmp_path / "sweep"
    command = ["-m", "job.memory_limit_gb=0,0.05,0", f"model.name_or_path={tiny_pretrained_dir}",
               *TINY_JOB, f"hydra.sweep.dir={sweep}"]  # fmt: skip
    env = {**os.environ, "COMPRESS_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    result = sweep_server.run(command, env=env, timeout=1200)
    statuses = [read_record(sweep / str(n) / RECORD_NAME)["status"] for n in range(3)]
    assert statuses == ["ok", "failed", "ok"]
    assert read_record(sweep / "1" / RECORD_NAME)["error"].startswith("out of memory (peak RSS")
    assert result.returncode == 1
    assert f"sweep {sweep}: 3 jobs: 2 ok, 1 failed, 0 skipped (finished earlier)" in result.stdout
    assert "  1 (job.memory_limit_gb=0.05): out of memory (peak RSS" in result.stdout
    assert f"next: python -m analysis {sweep}" in result.stdout
