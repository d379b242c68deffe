"""Quantization levels on ONNX Runtime: ``ort_quantize(config, source, target, context)``
writes the quantized graph of ``source`` to ``target`` with ONNX Runtime's own tools."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from compress.config.quant import (
    Float32Config,
    Int4WeightOnlyConfig,
    Int8DynamicConfig,
    Int8StaticConfig,
)
from compress.infra.context import Batch, CompressionContext
from compress.infra.registry import Registry
from compress.quantization.report import QuantReport

ort_quantize = Registry("ONNX Runtime quantization level")


@ort_quantize.register(Float32Config)
def _float32(config, source: Path, target: Path, context: CompressionContext) -> QuantReport:
    source.rename(target)
    return QuantReport(config.name, "float32", 0, bits_per_weight=32.0, kernel="onnxruntime MatMul")


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
    kernel = "onnxruntime DynamicQuantizeLinear + MatMulInteger"
    return _report(config, "int8", target, [note], kernel)


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
    kernel = "onnxruntime QDQ MatMul (QLinearMatMul once optimized)"
    return _report(config, "int8", target, [note], kernel)


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
    return _report(config, "int4", target, [note], "onnxruntime MatMulNBits")


def _report(config, dtype: str, target: Path, notes: list[str], kernel: str) -> QuantReport:
    count, bits = _integer_weights(target), _bits_per_weight(target)
    return QuantReport(config.name, dtype, count, notes, bits, kernel)


def _stored_weight(node, shapes: dict, consumers: dict) -> tuple[list[str], int]:
    """The initializers that store a quantized MatMul/Gemm weight read by ``node`` (integers,
    scales, zero points) and how many weights they stand for; none for other nodes."""
    import numpy as np

    if node.op_type == "MatMulNBits":
        sizes = {a.name: a.i for a in node.attribute}
        return list(node.input[1:]), sizes["N"] * sizes["K"]
    weight = node.input[1] if node.op_type == "MatMulInteger" else node.input[0]
    linear = node.op_type == "MatMulInteger" or consumers[node.output[0]] <= {"MatMul", "Gemm"}
    if node.op_type not in ("MatMulInteger", "DequantizeLinear") or not linear:
        return [], 0
    if weight not in shapes or len(shapes[weight]) < 2:
        return [], 0
    stem = weight.removesuffix("_quantized")
    return [weight, f"{stem}_scale", f"{stem}_zero_point"], int(np.prod(shapes[weight]))


def _bits_per_weight(path: Path) -> float | None:
    """Bits stored per weight of the quantized MatMul/Gemm weights (embedding tables, read by
    Gather, not counted); None when no such weight is quantized."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    shapes = {t.name: list(t.dims) for t in graph.initializer}
    nbytes = {t.name: numpy_helper.to_array(t).nbytes for t in graph.initializer}
    consumers = defaultdict(set)
    for node in graph.node:
        for name in node.input:
            consumers[name].add(node.op_type)
    bits = weights = 0
    for node in graph.node:
        stored, count = _stored_weight(node, shapes, consumers)
        bits += 8 * sum(nbytes.get(name, 0) for name in stored)
        weights += count
    return bits / weights if weights else None


def _integer_weights(path: Path) -> int:
    """How many weight matrices the graph stores as integers (int8, or int4 packed in uint8)."""
    import onnx

    integer = {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}
    graph = onnx.load(str(path)).graph
    return sum(t.data_type in integer and len(t.dims) >= 2 for t in graph.initializer)
