"""The whole job: one point of the factorial design, composed from every config group."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from compress.config import rules
from compress.config.backend import BackendConfig
from compress.config.bench import BenchConfig
from compress.config.errors import ConfigError, check_fraction, check_positive
from compress.config.model import ModelConfig
from compress.config.prune import PruneMethodConfig, ScheduleConfig
from compress.config.quant import QuantConfig
from compress.config.task import TaskConfig
from compress.config.training import RecoveryConfig


@dataclass
class PathsConfig:
    output_dir: str = MISSING
    cache_dir: str = MISSING


@dataclass
class JobConfig:
    """How a job runs. ``isolate`` runs it in a child process: a job killed there (out of
    memory, a signal, a crash in a native kernel) or running past ``timeout_s`` leaves a
    ``failed`` record that says why, and the sweep goes on. The child is killed once its
    resident memory passes ``memory_limit_gb`` (0: 90% of the memory available when the job
    starts), before the kernel's out-of-memory killer picks a process itself."""

    isolate: bool = True
    timeout_s: float = 0.0  # 0: no limit
    memory_limit_gb: float = 0.0

    def __post_init__(self) -> None:
        for key in ("timeout_s", "memory_limit_gb"):
            if getattr(self, key) < 0:
                raise ConfigError(f"job.{key}={getattr(self, key)} is negative", "0 (none) or more")


@dataclass
class Config:
    """The whole job: one point of the factorial design. Turning the composed config into
    this object checks every value's range and the rules that tie groups together
    (:mod:`compress.config.rules`), before any model is loaded."""

    model: ModelConfig = MISSING
    task: TaskConfig = MISSING
    prune_method: PruneMethodConfig = MISSING
    quant: QuantConfig = MISSING
    backend: BackendConfig = MISSING
    recovery: RecoveryConfig = MISSING
    schedule: ScheduleConfig = MISSING
    # Fraction of the weights in scope that the prune method removes (0 <= prune < 1).
    prune: float = 0.5
    # Inference batch size of the latency measurement.
    batch_size: int = 8
    # Intra-op threads; 0 = one per physical core. Recorded in every record.
    threads: int = 0
    seed: int = 0
    # Keep the saved compressed model in the job dir (serving, reloading); false saves disk.
    keep_artifact: bool = True
    bench: BenchConfig = field(default_factory=BenchConfig)
    job: JobConfig = field(default_factory=JobConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)

    def __post_init__(self) -> None:
        check_fraction("prune", self.prune)
        check_positive("batch_size", self.batch_size)
        if self.threads < 0:
            raise ConfigError(
                f"threads={self.threads} is negative", "0 (one per physical core), 1, 2, ..."
            )
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed={self.seed} is not a seed", "an integer in 0 ... 2**32 - 1")
        rules.check_combinations(self)
