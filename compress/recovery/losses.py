"""The losses recovery training minimises: the task's own loss (fine-tuning) or
distillation from the uncompressed teacher."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from compress.config.training import DistillRecoveryConfig, FinetuneRecoveryConfig
from compress.infra.context import model_inputs
from compress.infra.registry import Registry
from compress.recovery.training import Batch, LossFn, model_loss


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
        inputs = model_inputs(batch)
        with torch.no_grad():
            teacher_logits = teacher(**inputs).logits
        student_logits = student(**inputs).logits
        return distillation_loss(student_logits, teacher_logits, batch["labels"],
                                 config.alpha, config.temperature)  # fmt: skip

    return loss
