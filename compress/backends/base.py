"""What every backend hands back to the job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from compress.quantization import QuantReport


@dataclass(frozen=True)
class CompressedModel:
    """``model(**inputs)`` returns an object with ``.logits``, like a transformers model."""

    model: Callable
    quant: QuantReport
    artifact: dict
    size: dict
