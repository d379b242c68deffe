"""What a task is to the rest of the tool, and the registry that builds one from its config.

A task owns its data: it fine-tunes the baseline (or takes the pretrained model as it is),
feeds calibration and training batches to compression methods, evaluates quality on its
held-out split, and times the models the way its use is timed (a forward pass, or decoding).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from compress.config.bench import BenchConfig
from compress.config.task import TaskConfig
from compress.infra.registry import Registry
from compress.record import QualityMetric

if TYPE_CHECKING:
    import pandas as pd
    import torch
    from torch import nn
    from transformers import PreTrainedTokenizerBase

    Batch = dict[str, torch.Tensor]

build_task = Registry("task")
# What ``measure_speed`` takes and returns: models (anything called like a transformers model)
# by name, how to time them, and the speed figures of each by the same name.
Runners = dict[str, Any]
Bench = BenchConfig
Speeds = dict[str, dict]


class Task(Protocol):
    """The members that the job and the baseline cache use."""

    config: TaskConfig

    def key_material(self) -> dict:
        """Everything that changes the baseline (its cache key covers it)."""

    def train_baseline(
        self, pretrained: str, finetuned: bool | None = None
    ) -> tuple[nn.Module, PreTrainedTokenizerBase, dict]:
        """The uncompressed model, its tokenizer, and what training it cost (``finetuned``:
        ``model.finetuned``, for tasks that train a head)."""

    def adopt_baseline(self, training: dict) -> None:
        """Take what the cached baseline was built with (a classifier's class order)."""

    def baseline_gate(
        self, outputs: dict, training: dict, tokenizer: PreTrainedTokenizerBase
    ) -> dict:
        """Whether the baseline (its held-out ``outputs``) beats a reference predictor that
        learned nothing: ``learned`` true, false (with ``reason`` and ``fix``) or None (not
        tested), the test and its figures (``compress.measure.gate``)."""

    def evaluate(
        self,
        model: Any,
        tokenizer: PreTrainedTokenizerBase,
        reference: dict | None = None,
        baseline_model: Any = None,
    ) -> tuple[dict, dict]:
        """Quality on the held-out split, and the raw outputs (a later model's reference).
        ``reference``: the baseline's outputs, as this returned them for it; ``baseline_model``:
        the baseline itself, for tasks that compare the two models' outputs where storing the
        baseline's would be too big (a causal LM's next-token distributions)."""

    def calibration_batches(
        self, tokenizer: PreTrainedTokenizerBase, count: int
    ) -> Iterator[Batch]:
        """Up to ``count`` labelled batches that are never scored."""

    def train_batches(
        self, tokenizer: PreTrainedTokenizerBase, batch_size: int, seed: int
    ) -> Iterator[Batch]:
        """Endless labelled batches for recovery training, reshuffled every epoch."""

    def item_outcomes(self, outputs: dict, reference: dict) -> pd.DataFrame:
        """One row per held-out item: the baseline's (``reference``) and the compressed
        model's (``outputs``) outcome on it, as ``evaluate`` returned them."""

    def paired_quality(self, items: pd.DataFrame) -> tuple[dict, dict]:
        """Quality differences with paired intervals (by ratio key), and tests (by name)."""

    def measure_speed(
        self, models: Runners, tokenizer: PreTrainedTokenizerBase, batch_size: int, bench: Bench
    ) -> Speeds:
        """Speed of every model, timed interleaved, by the name it was given."""


def quality_metrics(task: Task) -> tuple[QualityMetric, ...]:
    """What ``task`` reports, headline first, declared on its config."""
    return type(task.config).QUALITY_METRICS
