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
    float_embeddings = _positioned_embeddings(source)
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8,
                     per_channel=config.per_channel, op_types_to_quantize=op_types,
                     nodes_to_exclude=float_embeddings)  # fmt: skip
    tables = "and embedding (Gather) tables" if config.embeddings else "embeddings stay float32"
    notes = [f"ONNX Runtime dynamic int8 on MatMul/Gemm weights; {tables}"]
    if float_embeddings:
        notes.append(
            "the fused embedding layer stays float32: it reads explicit position ids (MPNet's "
            "and RoBERTa's start after the padding id), which its int8 form would drop"
        )
    kernel = "onnxruntime DynamicQuantizeLinear + MatMulInteger"
    return _report(config, "int8", target, notes, kernel)


def _positioned_embeddings(path: Path) -> list[str]:
    """The fused EmbedLayerNormalization nodes given explicit position ids (input 8): ONNX
    Runtime's int8 form of the node has no such input and would count positions from 0."""
    import onnx

    nodes = onnx.load(str(path)).graph.node
    return [
        node.name
        for node in nodes
        if node.op_type == "EmbedLayerNormalization" and len(node.input) > 8 and node.input[8]
    ]


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
    index_nodes = _index_arithmetic(source)
    quantize_static(
        str(source), str(target), _CalibrationReader(iter(batches), names),
        quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        nodes_to_exclude=index_nodes,
    )  # fmt: skip
    notes = [f"ONNX Runtime static int8 (QDQ), ranges from {config.calibration_batches} batches"]
    if index_nodes:
        notes.append(
            f"{len(index_nodes)} nodes of index arithmetic (position ids, relative position "
            "buckets) left out: static int8 observes activations only"
        )
    kernel = "onnxruntime QDQ MatMul (QLinearMatMul once optimized)"
    return _report(config, "int8", target, notes, kernel)


def _index_arithmetic(path: Path) -> list[str]:
    """Nodes that compute integers in float: everything a cast to an integer type reads,
    back to the casts that made floats of integers (MPNet's and T5's relative position
    buckets: log of a distance, cast back to a bucket index). Quantizing them corrupts the
    indices (log 0 is -inf), and they are no activations."""
    import onnx

    graph = onnx.load(str(path)).graph
    producer = {output: node for node in graph.node for output in node.output}
    integer = {onnx.TensorProto.INT64, onnx.TensorProto.INT32, onnx.TensorProto.BOOL}

    def casts_to(node, kinds) -> bool:
        return node.op_type == "Cast" and any(
            a.name == "to" and a.i in kinds for a in node.attribute
        )

    found: dict[str, None] = {}
    frontier = [node for node in graph.node if casts_to(node, integer)]
    while frontier:
        for name in frontier.pop().input:
            node = producer.get(name)
            if node is None or node.name in found or node.op_type == "Cast":
                continue
            found[node.name] = None
            frontier.append(node)
    return list(found)


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
