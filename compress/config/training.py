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
    """How the baseline's task head is trained once before any compression: until the
    validation macro-F1 stops improving for ``patience`` evaluations (or a cap is reached),
    keeping the best weights. The validation rows are a stratified ``validation_fraction`` of
    the train split (at most ``validation_max`` rows; on small data at least 50, up to a
    quarter of the rows), never eval or calibration rows; they are
    scored every epoch, or every ``eval_every_steps`` steps when an epoch is longer. Warm-up
    covers ``warmup_ratio`` of the first epoch; the rate then decays linearly to zero at the
    cap (``max_epochs`` or ``max_steps``, whichever comes first)."""

    batch_size: int = 16
    learning_rate: float = 1e-4
    max_epochs: int = 20
    max_steps: int = 3000
    patience: int = 2
    eval_every_steps: int = 100
    validation_fraction: float = 0.1
    validation_max: int = 1000

    def __post_init__(self) -> None:
        for key in ("max_epochs", "max_steps", "patience", "eval_every_steps", "batch_size",
                    "validation_max"):  # fmt: skip
            check_positive(f"task.finetune.{key}", getattr(self, key))
        if not 0 < self.validation_fraction <= 0.5:
            raise ConfigError(
                f"task.finetune.validation_fraction={self.validation_fraction} is outside (0, 0.5]",
                "a share of the train rows to validate on, e.g. 0.1",
            )


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
