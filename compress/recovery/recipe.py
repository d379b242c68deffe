"""Pruning with recovery: the schedule that reaches the target sparsity, and the training
(fine-tuning or distillation from the uncompressed teacher) that wins back quality.

Pruned weights are held at zero during training: after every optimizer step each pruned
Linear's weight is multiplied by the mask of the weights that were non-zero after pruning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from compress.config.job import Config
from compress.config.training import FinetuneRecoveryConfig, NoRecoveryConfig
from compress.infra.context import CompressionContext
from compress.pruning import PruneReport, prune_model
from compress.pruning.schedules import schedule_amounts
from compress.quantization.qat import prepare_for_training
from compress.recovery.losses import recovery_loss
from compress.recovery.training import LossFn, train_steps


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
