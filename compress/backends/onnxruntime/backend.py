"""ONNX Runtime: export the pruned float model with ``torch.onnx.export(dynamo=True)``,
quantize it with ONNX Runtime's own tools, and run it with every graph optimization on.

This backend is also the peer our torch paths are measured against.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from torch import nn

from compress.backends.inputs import accepted_inputs, refuse_family
from compress.backends.onnxruntime.export import export_onnx, fuse_transformer_ops, onnx_size
from compress.backends.onnxruntime.quantize import ort_quantize
from compress.backends.onnxruntime.runtime import OrtModel
from compress.backends.registry import (
    ArtifactFormat,
    CompressedModel,
    compress_on,
    register_artifact_format,
)
from compress.config.backend import OnnxRuntimeBackendConfig
from compress.config.quant import QuantConfig
from compress.infra.context import CompressionContext
from compress.storage.artifact import write_manifest

ONNX_FILE = "model.onnx"


@compress_on.register(OnnxRuntimeBackendConfig)
def _onnxruntime(
    backend: OnnxRuntimeBackendConfig,
    model: nn.Module,
    quant: QuantConfig,
    context: CompressionContext,
    folder: Path,
) -> CompressedModel:
    refuse_family(model, backend.name)
    folder.mkdir(parents=True, exist_ok=True)
    sample = accepted_inputs(model, context.sample_inputs("ONNX export"))
    exported = folder / "exported.onnx"
    export_onnx(model, sample, exported, backend.opset)
    notes = fuse_transformer_ops(exported, model.config) if backend.fuse else []
    report = ort_quantize(quant, exported, folder / ONNX_FILE, context)
    report = dataclasses.replace(report, notes=[*report.notes, *notes])
    exported.unlink(missing_ok=True)
    model.config.to_json_file(str(folder / "config.json"))
    manifest = {"backend": "onnxruntime", "architecture": type(model).__name__, "onnx": ONNX_FILE}
    artifact = write_manifest(folder, manifest)
    runner = OrtModel(folder / ONNX_FILE, model.config)
    return CompressedModel(runner, report, artifact, onnx_size(folder / ONNX_FILE))


def load_onnx_artifact(folder: Path, manifest: dict, zero_copy: bool) -> OrtModel:
    """An ONNX Runtime session on the saved graph (ONNX Runtime reads the file itself:
    ``zero_copy`` does not apply)."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(str(folder))
    return OrtModel(Path(folder) / manifest["onnx"], config)


def _import_onnxruntime(folder: Path) -> None:
    import onnxruntime  # noqa: F401
    import transformers  # noqa: F401


register_artifact_format("onnxruntime", ArtifactFormat(load_onnx_artifact, _import_onnxruntime))
