"""Cache entries are checked on every use: a truncated or changed file is found and the entry
rebuilt; a staging folder left by a killed build is removed."""

from __future__ import annotations

import fcntl
import logging
from pathlib import Path

from compress.infra.cache import cached_entry, entry_problem
from compress.pipeline.job import run_job
from tests.conftest import TINY_JOB


def _builder(calls: list[int]):
    def build(folder: Path) -> None:
        calls.append(1)
        (folder / "weights.bin").write_bytes(b"\x01" * 1000)
        (folder / "info.json").write_text("{}")

    return build


def test_an_entry_is_built_once_and_then_reused(tmp_path: Path):
    calls: list[int] = []
    first = cached_entry(tmp_path, "entry", _builder(calls), "thing")
    again = cached_entry(tmp_path, "entry", _builder(calls), "thing")
    assert first == again and len(calls) == 1 and entry_problem(first) is None


def test_a_truncated_file_is_reported_and_rebuilt(tmp_path: Path, caplog):
    calls: list[int] = []
    folder = cached_entry(tmp_path, "entry", _builder(calls), "thing")
    (folder / "weights.bin").write_bytes(b"\x01" * 10)
    assert entry_problem(folder) == "weights.bin has 10 bytes, 1000 were written"
    with caplog.at_level(logging.WARNING):
        cached_entry(tmp_path, "entry", _builder(calls), "thing")
    assert len(calls) == 2 and entry_problem(folder) is None
    assert "is corrupt (weights.bin has 10 bytes, 1000 were written): rebuilding it" in caplog.text


def test_a_changed_or_missing_file_is_found(tmp_path: Path):
    folder = cached_entry(tmp_path, "entry", _builder([]), "thing")
    (folder / "weights.bin").write_bytes(b"\x02" * 1000)
    assert entry_problem(folder) == "weights.bin changed since it was written (SHA-256 differs)"
    (folder / "info.json").unlink()
    assert entry_problem(folder) == "info.json is missing"


def test_a_stale_staging_folder_is_removed_but_a_running_build_is_not(tmp_path: Path):
    (tmp_path / "killed.partial").mkdir()
    (tmp_path / "running.partial").mkdir()
    with open(tmp_path / "running.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process is building "running"
        cached_entry(tmp_path, "entry", _builder([]), "thing")
    assert not (tmp_path / "killed.partial").exists()
    assert (tmp_path / "running.partial").exists()


def test_a_corrupt_cached_baseline_is_rebuilt_by_the_next_job(compose_config, tiny_pretrained_dir):
    overrides = [f"model.name_or_path={tiny_pretrained_dir}", *TINY_JOB, "quant=fp32",
                 "bench.cold_load=false"]  # fmt: skip
    first = compose_config(overrides)
    run_job(first)
    (baseline,) = [p for p in (Path(first.paths.cache_dir) / "baselines").iterdir() if p.is_dir()]
    weights = baseline / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    second = compose_config(overrides)
    second.paths.output_dir += "-again"
    assert run_job(second)["status"] == "ok"
    assert entry_problem(baseline) is None and weights.stat().st_size > 1000
