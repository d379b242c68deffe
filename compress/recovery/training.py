"""The supervised training loop shared by baseline fine-tuning and recovery training."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import torch
from torch import nn
from tqdm import tqdm
from transformers import get_linear_schedule_with_warmup

from compress.schema import OptimizerConfig

Batch = dict[str, torch.Tensor]
LossFn = Callable[[nn.Module, Batch], torch.Tensor]


def model_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """The model's own loss (cross-entropy against the batch's ``labels``)."""
    return model(**batch).loss


def train_steps(
    model: nn.Module,
    batches: Iterator[Batch],
    steps: int,
    optimizer_config: OptimizerConfig,
    loss_fn: LossFn = model_loss,
    after_step: Callable[[], None] | None = None,
    description: str = "train",
) -> dict:
    """Train ``model`` for ``steps`` steps of AdamW with linear warm-up and decay.

    ``after_step`` runs after every optimizer step (recovery uses it to keep pruned weights at
    zero). Returns what training cost: steps, samples seen, seconds, last smoothed loss.
    """
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=optimizer_config.learning_rate,
        weight_decay=optimizer_config.weight_decay,
    )
    schedule = get_linear_schedule_with_warmup(
        optimizer, math.ceil(optimizer_config.warmup_ratio * steps), steps
    )
    torch.manual_seed(optimizer_config.seed)
    model.train()
    start = time.perf_counter()
    samples = 0
    smoothed = float("nan")
    with tqdm(total=steps, desc=description, leave=False, mininterval=2) as progress:
        for _, batch in zip(range(steps), batches, strict=False):
            loss = loss_fn(model, batch)
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            if after_step is not None:
                after_step()
            samples += len(next(iter(batch.values())))
            value = float(loss.detach())
            smoothed = value if math.isnan(smoothed) else 0.9 * smoothed + 0.1 * value
            progress.update(1)
            progress.set_postfix(loss=f"{smoothed:.3f}")
    model.eval()
    return {
        "steps": progress.n,
        "samples_seen": samples,
        "seconds": time.perf_counter() - start,
        "final_loss": smoothed,
    }
