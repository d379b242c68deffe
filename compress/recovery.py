"""Pruning with recovery: the schedule that reaches the target sparsity, and the training
(fine-tuning or distillation from the uncompressed teacher) that wins back quality.

Pruned weights are held at zero during training: after every optimizer step each pruned
Linear's weight is multiplied by the mask of the weights that were non-zero after pruning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from compress.context import CompressionContext
from compress.pruning import PruneReport, prune_model
from compress.quantization import prepare_for_training
from compress.registry import Registry
from compress.schema import (
    Config,
    DistillRecoveryConfig,
    FinetuneRecoveryConfig,
    IterativeScheduleConfig,
    NoRecoveryConfig,
    OneShotScheduleConfig,
)
from compress.training import Batch, LossFn, model_loss, train_steps


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    alpha: float,
    temperature: float,
) -> torch.Tensor:
    """alpha * CE(student, labels) + (1 - alpha) * T^2 * KL(teacher_T || student_T)
    (Hinton et al. 2015; T^2 keeps the soft term's gradients at the scale of the hard one).

    Language-model logits (batch, sequence, vocabulary) are scored as next-token predictions:
    position t predicts label t + 1, every position counts as one example."""
    if student_logits.dim() == 3:
        student_logits = student_logits[:, :-1].flatten(0, 1)
        teacher_logits = teacher_logits[:, :-1].flatten(0, 1)
        labels = labels[:, 1:].flatten()
    hard = F.cross_entropy(student_logits, labels)
    soft = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=-1),
        F.softmax(teacher_logits / temperature, dim=-1),
        reduction="batchmean",
    )
    return alpha * hard + (1 - alpha) * temperature**2 * soft


recovery_loss = Registry("recovery method")


@recovery_loss.register(FinetuneRecoveryConfig)
def _finetune(config: FinetuneRecoveryConfig, teacher: nn.Module) -> LossFn:
    return model_loss


@recovery_loss.register(DistillRecoveryConfig)
def _distill(config: DistillRecoveryConfig, teacher: nn.Module) -> LossFn:
    def loss(student: nn.Module, batch: Batch) -> torch.Tensor:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        with torch.no_grad():
            teacher_logits = teacher(**inputs).logits
        student_logits = student(**inputs).logits
        return distillation_loss(student_logits, teacher_logits, batch["labels"],
                                 config.alpha, config.temperature)  # fmt: skip

    return loss


# The cumulative pruned fraction reached after a share ``f`` of the steps, as a share of the
# target.
CURVES: dict[str, Callable[[float], float]] = {
    "cubic": lambda f: 1 - (1 - f) ** 3,
    "linear": lambda f: f,
}

# ``schedule_amounts(schedule, target)``: the cumulative fraction pruned after each step.
schedule_amounts = Registry("pruning schedule")


@schedule_amounts.register(OneShotScheduleConfig)
def _oneshot(schedule: OneShotScheduleConfig, target: float) -> list[float]:
    return [target]


@schedule_amounts.register(IterativeScheduleConfig)
def _iterative(schedule: IterativeScheduleConfig, target: float) -> list[float]:
    curve = CURVES[schedule.curve]
    return [target * curve(i / schedule.steps) for i in range(1, schedule.steps + 1)]


def _stored_weight(module: nn.Linear) -> torch.Tensor:
    """The weight tensor training updates (under QAT, the one behind the fake quantization)."""
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return module.weight


class _PrunedMasks:
    """Masks of the non-zero weights of every Linear that has zeros; re-applied after steps."""

    def __init__(self, model: nn.Module) -> None:
        weights = [_stored_weight(m) for m in model.modules() if isinstance(m, nn.Linear)]
        self.masks = [(w, w.detach() != 0) for w in weights if bool((w == 0).any())]

    @torch.no_grad()
    def __call__(self) -> None:
        for weight, mask in self.masks:
            weight.mul_(mask)


@dataclass(frozen=True)
class Trainer:
    """Recovery training on the task's train batches with the recovery method's loss."""

    config: FinetuneRecoveryConfig
    loss: LossFn
    batches: Callable[[int, int], object]

    def __call__(self, model: nn.Module, steps: int, description: str) -> dict:
        masks = _PrunedMasks(model)
        masks()
        batches = self.batches(self.config.batch_size, self.config.seed)
        return train_steps(model, batches, steps, self.config, self.loss, masks, description)


def _add_costs(costs: list[dict]) -> dict:
    return {
        "steps": sum(c["steps"] for c in costs),
        "samples_seen": sum(c["samples_seen"] for c in costs),
        "seconds": sum(c["seconds"] for c in costs),
        "final_loss": costs[-1]["final_loss"] if costs else None,
    }


def prune_and_recover(
    config: Config,
    model: nn.Module,
    teacher: nn.Module,
    train_batches: Callable[[int, int], object] | None,
    context: CompressionContext,
) -> tuple[PruneReport, dict]:
    """Prune ``model`` to ``config.prune`` along the schedule, training between and after the
    pruning steps when a recovery method is set. Returns the last pruning report and the
    training cost."""
    trainer = None
    if not isinstance(config.recovery, NoRecoveryConfig):
        if train_batches is None:
            raise ValueError(f"task={config.task.name} has no training data for recovery")
        loss = recovery_loss(config.recovery, teacher.eval())
        trainer = Trainer(config.recovery, loss, train_batches)
    amounts = schedule_amounts(config.schedule, config.prune)
    costs = []
    for step, amount in enumerate(amounts, start=1):
        report = prune_model(config.prune_method, model, amount, context)
        if trainer is not None and step < len(amounts):
            steps = config.schedule.finetune_steps
            costs.append(trainer(model, steps, f"recover {step}/{len(amounts)}"))
    if trainer is not None:
        prepare_for_training(config.quant, model)
        costs.append(trainer(model, config.recovery.steps, "recover"))
    training = {"method": config.recovery.name, "schedule": config.schedule.name,
                "pruning_steps": len(amounts), **_add_costs(costs)}  # fmt: skip
    return report, training
