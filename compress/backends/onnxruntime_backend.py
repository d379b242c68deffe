"""ONNX Runtime: export the pruned float model with ``torch.onnx.export(dynamo=True)``,
quantize it with ONNX Runtime's own tools, and run it with every graph optimization on.

This backend is also the peer our torch paths are measured against.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from compress.artifact import MANIFEST, disk_bytes
from compress.backends import compress_on
from compress.backends.base import CompressedModel
from compress.context import Batch, CompressionContext
from compress.quantization import QuantReport
from compress.registry import Registry
from compress.schema import (
    Float32Config,
    Int4WeightOnlyConfig,
    Int8DynamicConfig,
    Int8StaticConfig,
    OnnxRuntimeBackendConfig,
    QuantConfig,
)

ONNX_FILE = "model.onnx"
ort_quantize = Registry("ONNX Runtime quantization level")


class OrtModel:
    """An ONNX Runtime session that answers ``model(**inputs).logits`` like transformers."""

    def __init__(self, path: Path, config, threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        # Idle workers would otherwise busy-wait after each run and take the cores from what
        # runs next: the caller's own code, a co-located job, the next model of an
        # interleaved measurement (whose latency doubled in our benchmark).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.config = config

    def __call__(self, **inputs: torch.Tensor) -> SimpleNamespace:
        if "token_type_ids" in self.input_names and "token_type_ids" not in inputs:
            # transformers' default for a single segment, made explicit for the graph
            inputs = {**inputs, "token_type_ids": torch.zeros_like(inputs["input_ids"])}
        feed = {name: inputs[name].numpy() for name in self.input_names}
        return SimpleNamespace(logits=torch.from_numpy(self.session.run(None, feed)[0]))

    def eval(self) -> OrtModel:
        return self


def _model_inputs(batch: Batch) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if k != "labels"}


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


def fuse_transformer_ops(path: Path, config) -> None:
    """Rewrite the graph in place with ONNX Runtime's transformer fusions, as its own
    quantization guide does before quantizing (here: SkipLayerNormalization, BiasGelu)."""
    from onnxruntime.transformers.optimizer import optimize_model

    heads = getattr(config, "num_attention_heads", 0)
    fused = optimize_model(str(path), model_type="bert", num_heads=heads,
                           hidden_size=getattr(config, "hidden_size", 0), opt_level=1)  # fmt: skip
    fused.save_model_to_file(str(path))


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


@ort_quantize.register(Float32Config)
def _float32(config, source: Path, target: Path, context: CompressionContext) -> QuantReport:
    source.rename(target)
    return QuantReport(config.name, "float32", 0)


@ort_quantize.register(Int8DynamicConfig)
def _int8_dynamic(config, source: Path, target: Path, context: CompressionContext) -> QuantReport:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    # ONNX Runtime's default also quantizes Gather (the embedding lookups)
    op_types = [op for op in IntegerOpsRegistry if config.embeddings or op != "Gather"]
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8,
                     per_channel=config.per_channel, op_types_to_quantize=op_types)  # fmt: skip
    tables = "and embedding (Gather) tables" if config.embeddings else "embeddings stay float32"
    note = f"ONNX Runtime dynamic int8 on MatMul/Gemm weights; {tables}"
    return QuantReport(config.name, "int8", _integer_weights(target), [note])


class _CalibrationReader:
    """ONNX Runtime's CalibrationDataReader protocol over the task's calibration batches."""

    def __init__(self, batches: Iterator[Batch], input_names: list[str]) -> None:
        self._feeds = ({name: batch[name].numpy() for name in input_names} for batch in batches)

    def get_next(self) -> dict | None:
        return next(self._feeds, None)


@ort_quantize.register(Int8StaticConfig)
def _int8_static(config, source: Path, target: Path, context: CompressionContext) -> QuantReport:
    import onnxruntime as ort
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    names = [i.name for i in ort.InferenceSession(str(source)).get_inputs()]
    batches = context.calibration_batches(config.calibration_batches, "static int8")
    quantize_static(
        str(source), str(target), _CalibrationReader(iter(batches), names),
        quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
    )  # fmt: skip
    note = f"ONNX Runtime static int8 (QDQ), ranges from {config.calibration_batches} batches"
    return QuantReport(config.name, "int8", _integer_weights(target), [note])


@ort_quantize.register(Int4WeightOnlyConfig)
def _int4(config, source: Path, target: Path, context: CompressionContext) -> QuantReport:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    quantizer = MatMulNBitsQuantizer(onnx.load(str(source)), block_size=config.group_size,
                                     is_symmetric=True)  # fmt: skip
    quantizer.process()
    quantizer.model.save_model_to_file(str(target))
    note = (
        f"int4 weights in blocks of {config.group_size} on MatMul nodes (MatMulNBits); Gemm "
        "nodes (pooler, task head) stay float"
    )
    return QuantReport(config.name, "int4", _integer_weights(target), [note])


def _integer_weights(path: Path) -> int:
    """How many weight matrices the graph stores as integers (int8, or int4 packed in uint8)."""
    import onnx

    integer = {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}
    graph = onnx.load(str(path)).graph
    return sum(t.data_type in integer and len(t.dims) >= 2 for t in graph.initializer)


@compress_on.register(OnnxRuntimeBackendConfig)
def _onnxruntime(
    backend: OnnxRuntimeBackendConfig,
    model: nn.Module,
    quant: QuantConfig,
    context: CompressionContext,
    folder: Path,
) -> CompressedModel:
    folder.mkdir(parents=True, exist_ok=True)
    sample = _model_inputs(next(iter(context.calibration_batches(1, "ONNX export"))))
    exported = folder / "exported.onnx"
    export_onnx(model, sample, exported, backend.opset)
    if backend.fuse:
        fuse_transformer_ops(exported, model.config)
    report = ort_quantize(quant, exported, folder / ONNX_FILE, context)
    exported.unlink(missing_ok=True)
    model.config.to_json_file(str(folder / "config.json"))
    manifest = {"backend": "onnxruntime", "architecture": type(model).__name__, "onnx": ONNX_FILE}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    artifact = {**manifest, "disk_bytes": disk_bytes(folder)}
    runner = OrtModel(folder / ONNX_FILE, model.config)
    return CompressedModel(runner, report, artifact, onnx_size(folder / ONNX_FILE))


def load_onnx_artifact(folder: Path, manifest: dict) -> OrtModel:
    import transformers

    config = transformers.AutoConfig.from_pretrained(str(folder))
    return OrtModel(Path(folder) / manifest["onnx"], config)
