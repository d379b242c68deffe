"""What data-driven compression methods may use besides the model itself."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

Batch = dict[str, torch.Tensor]


def model_inputs(batch: Batch) -> Batch:
    """The batch without its labels: what the model's forward takes."""
    return {name: value for name, value in batch.items() if name != "labels"}


@dataclass(frozen=True)
class CompressionContext:
    """``calibration(n)`` yields up to ``n`` labelled batches of calibration data (never the
    held-out split): gradient head importance and static quantization calibrate on it.
    ``cache_dir``: where work shared by jobs is kept (compiled models). ``tokenizer``: the
    model's tokenizer, for formats that carry their own vocabulary (GGUF)."""

    calibration: Callable[[int], Iterable[Batch]] | None = None
    cache_dir: Path | None = None
    tokenizer: Any = None

    def calibration_batches(self, count: int, method: str) -> Iterable[Batch]:
        if self.calibration is None:
            raise ValueError(f"{method} needs calibration batches, and this task provides none")
        return self.calibration(count)

    def sample_inputs(self, method: str) -> Batch:
        """The model inputs of one calibration batch: what an exporter traces the model on."""
        return model_inputs(next(iter(self.calibration_batches(1, method))))
