"""Eager PyTorch: quantize the module in place and save it as a compress artifact."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from compress.artifact import save_artifact
from compress.backends import compress_on
from compress.backends.base import CompressedModel
from compress.context import CompressionContext
from compress.measure.size import size_stats
from compress.quantization import quantize_
from compress.schema import QuantConfig, TorchBackendConfig


@compress_on.register(TorchBackendConfig)
def _torch(
    backend: TorchBackendConfig,
    model: nn.Module,
    quant: QuantConfig,
    context: CompressionContext,
    folder: Path,
) -> CompressedModel:
    report = quantize_(quant, model, context)
    artifact = save_artifact(model, folder)
    return CompressedModel(model, report, artifact, size_stats(model))
