"""``task.finetune`` (how the baseline is trained) and ``recovery`` (training after pruning)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from compress.config.errors import ConfigError, check_positive


@dataclass
class OptimizerConfig:
    """AdamW with linear warm-up over ``warmup_ratio`` of the steps, then linear decay."""

    batch_size: int = 32
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    seed: int = 0


@dataclass
class FinetuneConfig(OptimizerConfig):
    """How the baseline's task head is trained once before any compression."""

    epochs: int = 1

    def __post_init__(self) -> None:
        check_positive("task.finetune.epochs", self.epochs)
        check_positive("task.finetune.batch_size", self.batch_size)


@dataclass
class RecoveryConfig:
    """Training after pruning that wins back quality."""

    name: str = MISSING


@dataclass
class NoRecoveryConfig(RecoveryConfig):
    """No training after pruning: what one-shot compression gives."""

    name: str = "none"


@dataclass
class FinetuneRecoveryConfig(OptimizerConfig, RecoveryConfig):
    """After pruning, ``steps`` steps of training on the task's train split, with pruned
    weights held at zero."""

    name: str = "finetune"
    steps: int = 150
    learning_rate: float = 1e-4

    def __post_init__(self) -> None:
        check_positive("recovery.steps", self.steps)
        check_positive("recovery.batch_size", self.batch_size)


@dataclass
class DistillRecoveryConfig(FinetuneRecoveryConfig):
    """Knowledge distillation from the uncompressed baseline (the teacher):
    loss = alpha * CE(student, labels) + (1 - alpha) * T^2 * KL(teacher_T || student_T),
    where ``_T`` are the softmax of logits divided by the temperature T."""

    name: str = "distill"
    alpha: float = 0.5
    temperature: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"recovery.alpha={self.alpha} is outside [0, 1]", "0 <= alpha <= 1")
        if self.temperature <= 0:
            raise ConfigError(
                f"recovery.temperature={self.temperature} is not positive", "a temperature > 0"
            )
