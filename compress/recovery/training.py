"""Training: the baseline's fine-tuning until its validation metric stops improving
(transformers' ``Trainer`` with early stopping), and the fixed-step loop of recovery training
(which holds pruned weights at zero after every step)."""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm
from transformers import TrainerCallback, get_linear_schedule_with_warmup

from compress.config.training import FinetuneConfig, OptimizerConfig

log = logging.getLogger(__name__)

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


# What early stopping watches on the validation rows, and what it is called in the record.
WATCHED = "f1_macro"
WATCHED_NAME = "macro-F1"


def validation_scores(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Macro-F1 (over the classes present in ``labels`` or predicted) and accuracy."""
    from sklearn.metrics import f1_score

    predictions = logits.argmax(-1)
    return {"f1_macro": float(f1_score(labels, predictions, average="macro", zero_division=0)),
            "accuracy": float((predictions == labels).mean())}  # fmt: skip


class _Curve(TrainerCallback):
    """A Trainer callback that keeps every validation score, the training loss since the
    previous one, and a copy of the weights at the best score (in memory: no checkpoints on
    disk). Improvement is strict, as in ``EarlyStoppingCallback``."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.points, self.best, self.best_state = model, [], None, None
        self.loss = None

    def on_log(self, args, state, control, logs=None, **kwargs) -> None:
        if logs and "loss" in logs:
            self.loss = float(logs["loss"])

    def on_step_end(self, args, state, control, **kwargs) -> None:
        if state.global_step >= state.max_steps:  # the cap: score the last weights too
            control.should_evaluate = True

    def on_evaluate(self, args, state, control, metrics=None, **kwargs) -> None:
        value = metrics[f"eval_{WATCHED}"]
        point = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 3),
                 "train_loss": self.loss, "validation_loss": metrics.get("eval_loss"),
                 "validation_f1_macro": value,
                 "validation_accuracy": metrics.get("eval_accuracy")}  # fmt: skip
        self.points.append(point)
        improved = self.best is None or value > self.best["validation_f1_macro"]
        if improved:
            self.best = point
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        log.info("step %d (epoch %.2f): validation %s %.3f%s", point["step"], point["epoch"],
                 WATCHED_NAME, value, " (best)" if improved else "")  # fmt: skip


def _schedule(rows: int, config: FinetuneConfig) -> dict:
    """Steps per epoch, between validations, in all (the cap), and of warm-up."""
    per_epoch = -(-rows // config.batch_size)
    total = min(config.max_steps, config.max_epochs * per_epoch)
    return {"per_epoch": per_epoch, "every": min(per_epoch, config.eval_every_steps),
            "total": total, "warmup": math.ceil(config.warmup_ratio * per_epoch),
            "cap": "max_steps" if total == config.max_steps else "max_epochs"}  # fmt: skip


def _stopped(curve: _Curve, plan: dict, steps: int, config: FinetuneConfig) -> dict:
    best = curve.best
    if steps < plan["total"]:
        reason = "early_stopping"
        detail = (f"validation {WATCHED_NAME} did not improve for {config.patience} "
                  f"evaluations after its best, {best['validation_f1_macro']:.3f} at epoch "
                  f"{best['epoch']:g}")  # fmt: skip
    else:
        reason = plan["cap"]
        cap = config.max_steps if reason == "max_steps" else config.max_epochs
        still = " while it still improved" if best is curve.points[-1] else ""
        detail = f"task.finetune.{reason}={cap} reached{still}"
    return {"reason": reason, "detail": detail, "improving_at_stop": best is curve.points[-1]}


def train_until_plateau(
    model: nn.Module,
    train: Sequence[dict],
    validation: Sequence[dict],
    tokenizer,
    config: FinetuneConfig,
    eval_batch_size: int = 64,
) -> dict:
    """Fine-tune ``model`` on ``train`` (tokenized examples with ``labels``) with
    transformers' ``Trainer``: AdamW, linear warm-up and decay, batches of similar lengths
    padded to their longest; every epoch (or ``eval_every_steps``) score the ``validation``
    examples and stop after ``patience`` scores without a better macro-F1, or at the cap.
    The best weights are loaded back. Returns what training cost, the curve and why it
    stopped. Long because every ``TrainingArguments`` setting sits in one call, where each can
    be read against ``FinetuneConfig``."""
    from transformers import (
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        PrinterCallback,
        Trainer,
        TrainingArguments,
    )

    plan = _schedule(len(train), config)
    curve = _Curve(model)
    with tempfile.TemporaryDirectory(prefix="compress-baseline-") as scratch:
        args = TrainingArguments(
            output_dir=scratch, max_steps=plan["total"],
            per_device_train_batch_size=config.batch_size,
            per_device_eval_batch_size=eval_batch_size, learning_rate=config.learning_rate,
            weight_decay=config.weight_decay, warmup_steps=plan["warmup"],
            lr_scheduler_type="linear", eval_strategy="steps", eval_steps=plan["every"],
            logging_strategy="steps", logging_steps=plan["every"], save_strategy="no",
            metric_for_best_model=WATCHED, greater_is_better=True, report_to="none",
            disable_tqdm=True, seed=config.seed, data_seed=config.seed,
            train_sampling_strategy="group_by_length", remove_unused_columns=False,
            dataloader_num_workers=0, dataloader_pin_memory=False, log_level="error",
        )  # fmt: skip
        trainer = Trainer(
            model=model, args=args, train_dataset=list(train), eval_dataset=list(validation),
            processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=lambda p: validation_scores(p.predictions, p.label_ids),
            callbacks=[curve, EarlyStoppingCallback(config.patience)],
        )  # fmt: skip
        trainer.remove_callback(PrinterCallback)  # the curve is logged and recorded instead
        start, cpu = time.perf_counter(), time.process_time()
        state = trainer.train()
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    model.load_state_dict(curve.best_state)
    model.cpu().eval()
    steps = state.global_step
    epochs, rest = divmod(steps, plan["per_epoch"])
    return {
        "trainer": "transformers.Trainer + EarlyStoppingCallback",
        "steps": steps,
        "samples_seen": epochs * len(train) + min(rest * config.batch_size, len(train)),
        "epochs": round(steps / plan["per_epoch"], 3),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "final_loss": curve.loss,
        "learning_rate": config.learning_rate,
        "batch_size": config.batch_size,
        "steps_per_epoch": plan["per_epoch"],
        "eval_every_steps": plan["every"],
        "warmup_steps": plan["warmup"],
        "cap_steps": plan["total"],
        "watched": f"validation {WATCHED_NAME}",
        "best": curve.best,
        "stopped": _stopped(curve, plan, steps, config),
        "curve": curve.points,
    }
