"""Eager PyTorch: quantize the module in place and save it as a compress artifact."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from compress.backends.registry import (
    ArtifactFormat,
    CompressedModel,
    compress_on,
    register_artifact_format,
)
from compress.backends.torch.artifact import load_torch_artifact, save_artifact
from compress.backends.torch.quantize import quantize_
from compress.config.backend import TorchBackendConfig
from compress.config.quant import QuantConfig
from compress.infra.context import CompressionContext
from compress.measure.size import size_stats
from compress.storage.artifact import architecture_class


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


register_artifact_format("torch", ArtifactFormat(load_torch_artifact, architecture_class))
