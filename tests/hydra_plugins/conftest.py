"""Real ``-m`` sweeps on the tiny random BERT, each into its own sweep dir."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import TINY_JOB
from tests.fixtures.sweep_server import SweepServer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_job(tiny_pretrained_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Overrides that make one job take seconds; the tiny baseline is trained once."""
    cache = tmp_path_factory.mktemp("sweeper-cache")
    return [
        f"model.name_or_path={tiny_pretrained_dir}", f"paths.cache_dir={cache}", *TINY_JOB,
        "keep_artifact=false",
    ]  # fmt: skip


def sweep_command(sweep_dir: Path, *arguments: str) -> list[str]:
    return [sys.executable, "-m", "compress.main", "-m", *arguments, f"hydra.sweep.dir={sweep_dir}"]


@pytest.fixture
def run_sweep(
    tiny_job: list[str], sweep_server: SweepServer
) -> Callable[..., subprocess.CompletedProcess]:
    """A sweep on the shared sweep server, or (``fresh=True``: launchers whose workers outlive
    a sweep) in an interpreter of its own."""

    def _run(
        sweep_dir: Path, *arguments: str, check: bool = True, env: dict | None = None, cwd=REPO,
        fresh: bool = False,
    ):  # fmt: skip
        command = sweep_command(sweep_dir, *tiny_job, *arguments)  # the test's own settings win
        if fresh:
            result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                                    timeout=300)  # fmt: skip
        else:
            result = sweep_server.run(command[3:], cwd=cwd, env=env, timeout=300)
        if check and result.returncode != 0:
            raise AssertionError(f"sweep failed:\n{result.stdout}\n{result.stderr}")
        return result

    return _run


def records(sweep_dir: Path) -> dict[int, dict]:
    """Each job's record by job number."""
    return {
        int(path.parent.name): json.loads(path.read_text())
        for path in sweep_dir.glob("*/metrics.json")
    }


def job_overrides(sweep_dir: Path, job: int) -> list[str]:
    text = (sweep_dir / str(job) / ".hydra" / "overrides.yaml").read_text()
    return [line.removeprefix("- ") for line in text.splitlines()]
