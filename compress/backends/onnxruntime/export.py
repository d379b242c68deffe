"""Export a pruned float model to ONNX, apply ONNX Runtime's transformer fusions, and count
the graph's weights."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import torch
from torch import nn

from compress.models.families import family_of


def export_onnx(model: nn.Module, sample: dict[str, torch.Tensor], path: Path, opset: int) -> None:
    """Export with batch and sequence length left dynamic."""
    batch, length = torch.export.Dim("batch"), torch.export.Dim("sequence")
    dynamic = {name: {0: batch, 1: length} for name in sample}
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints progress lines
        program = torch.onnx.export(
            model.eval(), (), kwargs=sample, dynamo=True, dynamic_shapes=dynamic,
            output_names=["logits"], opset_version=opset, verbose=False,
        )  # fmt: skip
        program.save(str(path))


def fuse_transformer_ops(path: Path, config) -> list[str]:
    """Rewrite the graph in place with ONNX Runtime's transformer fusions, as its own
    quantization guide does before quantizing (here: SkipLayerNormalization, BiasGelu), where
    they apply to the model's family (``Family.onnx_fusion``; BERT's fusions misread
    ModernBERT's bias-free norms); returns the notes a record needs."""
    from onnxruntime.transformers.optimizer import optimize_model

    family = family_of(getattr(config, "model_type", None))
    if family is not None and not family.onnx_fusion:
        return [f"ONNX Runtime's BERT fusions do not apply to {family.name}: graph left unfused"]
    heads = getattr(config, "num_attention_heads", 0)
    fused = optimize_model(str(path), model_type="bert", num_heads=heads,
                           hidden_size=getattr(config, "hidden_size", 0), opt_level=1)  # fmt: skip
    fused.save_model_to_file(str(path))
    return []


def onnx_size(path: Path) -> dict[str, int]:
    """Stored elements, non-zeros and bytes of the graph's initializers (its weights)."""
    import onnx
    from onnx import numpy_helper

    params = nonzero = weight_bytes = 0
    for initializer in onnx.load(str(path)).graph.initializer:
        array = numpy_helper.to_array(initializer)
        params += array.size
        nonzero += int(np.count_nonzero(array))
        weight_bytes += array.nbytes
    return {"params": params, "nonzero_params": nonzero, "weight_bytes": weight_bytes}
