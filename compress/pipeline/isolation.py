"""Run a job in a child process, so that a job which dies cannot take the sweep with it.

The parent watches the child: its resident memory (including any processes it starts) against
a limit, and its running time against ``job.timeout_s``. A child killed by the watch, by a
signal (the kernel's out-of-memory killer sends SIGKILL), or by a crash in a native kernel
(SIGSEGV) writes no record; the parent then writes the ``failed`` record with the cause in
words, and the sweep goes on with its next job. A child that fails with an exception writes
its own ``failed`` record, as an in-process job does.

The child inherits the cores the parent was pinned to (``compress.infra.placement``) and
logs to the same files; it is started with ``spawn``, so no thread pool or lock of the parent
is copied into it. Its measurements are taken inside it, exactly as in-process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psutil
from omegaconf import DictConfig, OmegaConf

from compress.infra.atomic import write_json_atomic
from compress.record import RECORD_NAME, JobRecord, RecordError, read_record, timestamp

log = logging.getLogger(__name__)

POLL_S = 0.1
GIB = 2**30


class JobFailed(RuntimeError):
    """A job that ended ``failed``; the message is the record's ``error``."""


@dataclass(frozen=True)
class Limits:
    memory_bytes: int
    timeout_s: float  # 0: none

    @classmethod
    def of(cls, job: DictConfig) -> Limits:
        """``job.memory_limit_gb`` (0: 90% of the memory available now) and ``job.timeout_s``."""
        memory = job.memory_limit_gb * GIB or 0.9 * psutil.virtual_memory().available
        return cls(int(memory), float(job.timeout_s))


@dataclass
class Watch:
    """What the parent saw of the child: its peak memory, and why it stopped it (if it did)."""

    peak_rss: int = 0
    stopped: str | None = None

    def cause(self, exitcode: int | None, limits: Limits) -> str:
        """Why a child that left no record died, in words."""
        if self.stopped:
            return self.stopped
        peak = f"peak RSS {self.peak_rss / GIB:.2f} GiB of {limits.memory_bytes / GIB:.2f}"
        if exitcode is not None and exitcode < 0:
            name = signal.Signals(-exitcode).name
            why = {
                signal.SIGKILL: "the kernel's out-of-memory killer sends it",
                signal.SIGSEGV: "a native kernel crashed",
            }.get(signal.Signals(-exitcode), "")
            return f"killed by signal {-exitcode} ({name}{': ' + why if why else ''}; {peak})"
        return f"the job's process exited with status {exitcode} without a record ({peak})"


def _rss(process: psutil.Process) -> int:
    """Resident memory of ``process`` and its children (a cold-load subprocess, for one)."""
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def _stop(child: multiprocessing.Process) -> None:
    """SIGTERM, then SIGKILL if the child is still there after 5 s; its children too."""
    try:
        family = psutil.Process(child.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    child.terminate()
    child.join(5)
    if child.is_alive():
        child.kill()
    for process in family:
        with suppress(psutil.NoSuchProcess):
            process.kill()
    child.join()


def watch(child: multiprocessing.Process, limits: Limits) -> Watch:
    """Poll ``child`` until it exits; stop it past the memory or time limit."""
    seen, start = Watch(), time.monotonic()
    process = psutil.Process(child.pid)
    while child.is_alive():
        seen.peak_rss = max(seen.peak_rss, _rss(process))
        if seen.peak_rss > limits.memory_bytes:
            seen.stopped = (
                f"out of memory (peak RSS {seen.peak_rss / GIB:.2f} GiB of "
                f"{limits.memory_bytes / GIB:.2f}; job.memory_limit_gb raises the limit)"
            )
        elif limits.timeout_s and time.monotonic() - start > limits.timeout_s:
            seen.stopped = f"timed out after {limits.timeout_s:g} s (job.timeout_s)"
        if seen.stopped:
            _stop(child)
            break
        child.join(POLL_S)
    return seen


def _log_files() -> list[str]:
    handlers = logging.getLogger().handlers
    return [h.baseFilename for h in handlers if isinstance(h, logging.FileHandler)]


def _exit_with(parent: int) -> None:
    """End this process once ``parent`` is gone (a killed sweep): an orphaned job would hold
    the cores and memory the next sweep measures with."""
    while os.getppid() == parent:
        time.sleep(POLL_S * 10)
    os._exit(1)


def _child(
    execute: Callable, cfg: DictConfig, record: JobRecord, folder: Path, logs: list, parent: int
) -> None:
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    handlers = [logging.StreamHandler(), *(logging.FileHandler(path) for path in logs)]
    fmt = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
    logging.basicConfig(level=logging.INFO, format=fmt, handlers=handlers, force=True)
    execute(cfg, record, folder)  # an exception ends the child with status 1: record written


@contextmanager
def _stdlib_start_method() -> Iterator[None]:
    """Start the child under a start method the child itself can resolve.

    A spawned child re-applies the parent's process-wide start method. Inside a worker of
    Hydra's joblib launcher that method is loky's own, which a plain child cannot look up, so it
    dies before the job starts; for the start only, the process-wide method is ``spawn``.
    """
    current = multiprocessing.get_start_method(allow_none=True)
    if current in (None, *multiprocessing.get_all_start_methods()):
        yield
        return
    multiprocessing.set_start_method("spawn", force=True)
    try:
        yield
    finally:
        multiprocessing.set_start_method(current, force=True)


def run_isolated(
    execute: Callable[[DictConfig, JobRecord, Path], dict],
    cfg: DictConfig,
    record: JobRecord,
    folder: Path,
) -> dict:
    """``execute(cfg, record, folder)`` in a child process; its record, or :class:`JobFailed`."""
    job_cfg = cfg.copy()
    OmegaConf.resolve(job_cfg)  # ${hydra:...} resolves here: the child has no Hydra context
    limits = Limits.of(cfg.job)
    context = multiprocessing.get_context("spawn")
    child = context.Process(
        target=_child,
        args=(execute, job_cfg, record, folder, _log_files(), os.getpid()),
        name="compress-job",
    )
    with _stdlib_start_method():
        child.start()
    seen = watch(child, limits)
    written = _written_record(folder, record.started_at)
    if written is None or seen.stopped:
        record.error = seen.cause(child.exitcode, limits)
        record.finished_at = timestamp()
        record.timing["peak_rss_bytes"] = seen.peak_rss
        write_json_atomic(folder / RECORD_NAME, record.to_dict())
        log.error("job failed: %s", record.error)
        raise JobFailed(record.error)
    if written.get("status") != "ok":
        raise JobFailed(written.get("error") or "the job failed")
    return written


def _written_record(folder: Path, started_at: str) -> dict | None:
    """The record the child wrote for this run (not one left by an earlier run)."""
    try:
        written = read_record(folder / RECORD_NAME)
    except (FileNotFoundError, RecordError):
        return None
    return written if written.get("started_at") == started_at else None
