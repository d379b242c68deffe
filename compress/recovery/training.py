"""The supervised training loop shared by baseline fine-tuning and recovery training."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import torch
from torch import nn
from tqdm import tqdm
from transformers import get_linear_schedule_with_warmup

from compress.config.training import OptimizerConfig

Batch = dict[str, torch.Tensor]
LossFn = Callable[[nn.Module, Batch], torch.Tensor]


def model_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """The model's own loss (cross-entropy against the batch's ``labels``)."""
    return model(**batch).loss


def _optimizer(model: nn.Module, config: OptimizerConfig, steps: int) -> tuple:
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
    )
    warmup = math.ceil(config.warmup_ratio * steps)
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, steps)


def _step(model: nn.Module, batch: Batch, loss_fn: LossFn, optimizer, schedule) -> float:
    loss = loss_fn(model, batch)
    loss.backward()
    optimizer.step()
    schedule.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


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
    optimizer, schedule = _optimizer(model, optimizer_config, steps)
    torch.manual_seed(optimizer_config.seed)
    model.train()
    start = time.perf_counter()
    samples = 0
    smoothed = float("nan")
    with tqdm(total=steps, desc=description, leave=False, mininterval=2) as progress:
        for _, batch in zip(range(steps), batches, strict=False):
            value = _step(model, batch, loss_fn, optimizer, schedule)
            if after_step is not None:
                after_step()
            samples += len(next(iter(batch.values())))
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
