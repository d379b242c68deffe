"""Run a job in a child process, so that a job which dies cannot take the sweep with it.

The parent watches the child: its resident memory (including any processes it starts) against
a limit, and its running time against ``job.timeout_s``. A child killed by the watch, by a
signal (the kernel's out-of-memory killer sends SIGKILL), or by a crash in a native kernel
(SIGSEGV) writes no record; the parent then writes the ``failed`` record with the cause in
words, and the sweep goes on with its next job. A child that fails with an exception writes
its own ``failed`` record, as an in-process job does.

The child runs on the cores the parent is pinned to now (``compress.infra.placement``), with
the parent's environment, and logs to the same files. It is forked from a fork server that
imported torch, transformers and the pipeline once per sweep, not from the parent: no thread
pool or lock of the parent is copied into it, and a job starts in well under a second instead
of the ~9 s a ``spawn`` child spends importing them again (measured on 2 AVX2 cores). Where
there is no fork server (Windows), the child is spawned. Its measurements are taken inside it,
exactly as in-process.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.forkserver
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
# What every job imports, loaded once by the fork server (its children start with them loaded).
PRELOAD = ["compress.pipeline.job", "compress.data.shipped", "torchao", "sympy"]


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


def _gone(process: psutil.Process) -> bool:
    """Exited, or a zombie its own parent has not reaped yet (``is_running`` checks the pid
    was not reused)."""
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _exit_with(parent: psutil.Process) -> None:
    """End this process once ``parent`` (the sweep) is gone: an orphaned job would hold the
    cores and memory the next sweep measures with. Watched directly: the fork server outlives
    the sweep while any job it forked is alive."""
    while not _gone(parent):
        time.sleep(POLL_S * 10)
    os._exit(1)


@dataclass(frozen=True)
class _Surroundings:
    """What the child takes from the sweep's process at the job's start: its cores and
    environment (a forked child would otherwise have the fork server's), and its identity."""

    cores: frozenset[int] | None
    environment: dict[str, str]
    parent: int
    parent_born: float

    @classmethod
    def here(cls) -> _Surroundings:
        pinned = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        me = psutil.Process()
        return cls(frozenset(pinned) if pinned else None, dict(os.environ), me.pid,
                   me.create_time())  # fmt: skip

    def apply(self) -> None:
        if self.cores is not None:
            os.sched_setaffinity(0, self.cores)
        os.environ.clear()
        os.environ.update(self.environment)

    def parent_process(self) -> psutil.Process | None:
        """The sweep's process, or None if it is gone already (its pid may be reused)."""
        try:
            process = psutil.Process(self.parent)
        except psutil.NoSuchProcess:
            return None
        return process if process.create_time() == self.parent_born else None


def _child(
    execute: Callable, cfg: DictConfig, record: JobRecord, folder: Path, logs: list,
    surroundings: _Surroundings,
) -> None:  # fmt: skip
    surroundings.apply()
    parent = surroundings.parent_process()
    if parent is None:
        os._exit(1)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    handlers = [logging.StreamHandler(), *(logging.FileHandler(path) for path in logs)]
    fmt = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
    logging.basicConfig(level=logging.INFO, format=fmt, handlers=handlers, force=True)
    execute(cfg, record, folder)  # an exception ends the child with status 1: record written


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def start_fork_server() -> None:
    """Start the fork server now (it is otherwise started by the first job), so that its
    imports run beside those of the sweep's own process instead of after them."""
    if _context().get_start_method() == "forkserver":
        multiprocessing.forkserver.ensure_running()


@contextmanager
def _stdlib_start_method() -> Iterator[None]:
    """Start the child under a start method the child itself can resolve.

    A child (spawned, or forked by the fork server) re-applies the parent's process-wide start
    method. Inside a worker of
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
    child = _context().Process(
        target=_child,
        args=(execute, job_cfg, record, folder, _log_files(), _Surroundings.here()),
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
