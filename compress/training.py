"""Supervised fine-tuning loop shared by the baseline and recovery training."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

import torch
from torch import nn
from tqdm import tqdm
from transformers import get_linear_schedule_with_warmup

from compress.schema import FinetuneConfig

Batch = dict[str, torch.Tensor]


def train_steps(
    model: nn.Module,
    batches: Callable[[int], Iterable[Batch]],
    steps_per_epoch: int,
    config: FinetuneConfig,
    loss_fn: Callable[[nn.Module, Batch], torch.Tensor] | None = None,
) -> dict:
    """Train ``model`` for ``config.epochs`` epochs of ``batches(epoch)``.

    ``loss_fn`` defaults to the model's own loss (batches carry ``labels``). Returns the cost
    of training: steps, samples seen, seconds and the last smoothed loss.
    """
    loss_fn = loss_fn or (lambda m, batch: m(**batch).loss)
    total_steps = config.epochs * steps_per_epoch
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    schedule = get_linear_schedule_with_warmup(
        optimizer, math.ceil(config.warmup_ratio * total_steps), total_steps
    )
    torch.manual_seed(config.seed)
    model.train()
    start = time.perf_counter()
    steps = samples = 0
    smoothed = float("nan")
    with tqdm(total=total_steps, desc="fine-tune", leave=False, mininterval=2) as progress:
        for epoch in range(config.epochs):
            for batch in batches(epoch):
                loss = loss_fn(model, batch)
                loss.backward()
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                steps += 1
                samples += len(next(iter(batch.values())))
                value = float(loss.detach())
                smoothed = value if math.isnan(smoothed) else 0.9 * smoothed + 0.1 * value
                progress.update(1)
                progress.set_postfix(loss=f"{smoothed:.3f}")
    model.eval()
    return {
        "steps": steps,
        "samples_seen": samples,
        "seconds": time.perf_counter() - start,
        "final_loss": smoothed,
    }
