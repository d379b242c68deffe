"""Quantization levels on the torch backend: ``quantize_(config, model, context)`` changes
the model in place.

One registered handler per config dataclass of :mod:`compress.schema`; each returns a
:class:`QuantReport` saying what was converted and any caveat a reader of the record must
know (such as a dtype this CPU has no arithmetic units for).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.ao.nn import quantized
from torch.ao.quantization import get_default_qconfig

from compress.backends.torch.modules import Int8Embedding, StaticInt8Linear
from compress.infra.context import CompressionContext
from compress.infra.environment import cpu_flags
from compress.infra.registry import Registry
from compress.quantization.qat import remove_fake_quantization
from compress.quantization.report import QuantReport
from compress.schema import (
    BFloat16Config,
    Float16Config,
    Float32Config,
    Int8DynamicConfig,
    Int8QATConfig,
    Int8StaticConfig,
)

quantize_ = Registry("quantization level")

# CPU features that give a dtype native arithmetic; without them torch converts on the fly.
_NATIVE = {
    torch.float16: ("avx512_fp16", "amx_fp16"),
    torch.bfloat16: ("avx512_bf16", "amx_bf16"),
}


@quantize_.register(Float32Config)
def _float32(config: Float32Config, model: nn.Module, context: CompressionContext) -> QuantReport:
    return QuantReport(config.name, "float32", 0)


def _cast(model: nn.Module, level: str, dtype: torch.dtype) -> QuantReport:
    model.to(dtype)
    floating = sum(1 for p in model.parameters() if p.is_floating_point())
    notes = []
    if not set(_NATIVE[dtype]) & set(cpu_flags()):
        note = (
            f"{level} halves the weights, but this CPU has no {' or '.join(_NATIVE[dtype])}: "
            "matrix products convert on the fly, expect latency several times that of fp32"
        )
        warnings.warn(note, stacklevel=3)
        notes.append(note)
    return QuantReport(level, str(dtype).removeprefix("torch."), floating, notes)


@quantize_.register(Float16Config)
def _float16(config: Float16Config, model: nn.Module, context: CompressionContext) -> QuantReport:
    return _cast(model, config.name, torch.float16)


@quantize_.register(BFloat16Config)
def _bfloat16(config: BFloat16Config, model: nn.Module, context: CompressionContext) -> QuantReport:
    return _cast(model, config.name, torch.bfloat16)


def _linears(model: nn.Module) -> dict[str, nn.Linear]:
    return {name: m for name, m in model.named_modules() if type(m) is nn.Linear}


@torch.no_grad()
def conv1d_to_linear(model: nn.Module) -> int:
    """Replace each transformers ``Conv1D`` (GPT-2's projections: a Linear whose weight is
    stored transposed) by the equal ``nn.Linear``, so that int8 methods, which act on
    ``nn.Linear``, reach them; returns how many were replaced."""
    from transformers.pytorch_utils import Conv1D

    replaced = [(name, m) for name, m in model.named_modules() if isinstance(m, Conv1D)]
    for name, conv in replaced:
        linear = nn.Linear(conv.nx, conv.nf, dtype=conv.weight.dtype)
        linear.weight.copy_(conv.weight.t())
        linear.bias.copy_(conv.bias)
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, linear)
    return len(replaced)


def _conv1d_notes(converted: int) -> list[str]:
    return [f"{converted} Conv1D layers converted to nn.Linear first"] if converted else []


@quantize_.register(Int8QATConfig)
def _int8_qat(config: Int8QATConfig, model: nn.Module, context: CompressionContext) -> QuantReport:
    """Conversion after quantization-aware training (:mod:`compress.quantization.qat`): real
    dynamic int8."""
    remove_fake_quantization(model)
    report = _int8_dynamic(Int8DynamicConfig(), model, context)
    note = "int8 weights trained under fake quantization (QAT), then converted to dynamic int8"
    return QuantReport(config.name, report.weight_dtype, report.layers_quantized, [note])


@quantize_.register(Int8DynamicConfig)
def _int8_dynamic(
    config: Int8DynamicConfig, model: nn.Module, context: CompressionContext
) -> QuantReport:
    scheme = torch.ao.quantization.per_channel_dynamic_qconfig if config.per_channel else None
    converted = conv1d_to_linear(model)
    linears = len(_linears(model))
    with warnings.catch_warnings():
        # torch 2.13 deprecates torch.ao eager quantization, still its fastest CPU int8 path
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        spec = {nn.Linear: scheme} if scheme else {nn.Linear}
        torch.ao.quantization.quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)
    tables = _quantize_embeddings(model) if config.embeddings else 0
    granularity = "per-channel" if config.per_channel else "per-tensor"
    note = f"dynamic int8 ({granularity} weights) on every nn.Linear; " + (
        f"{tables} embedding tables as int8 rows" if tables else "embeddings stay float32"
    )
    return QuantReport(config.name, "int8", linears + tables, [note, *_conv1d_notes(converted)])


@torch.no_grad()
def _quantize_embeddings(model: nn.Module) -> int:
    """Store every ``nn.Embedding`` as uint8 rows, each with its own float scale and offset
    (torch's weight-only quantized lookup); returns how many tables were converted."""
    embeddings = [(n, m) for n, m in model.named_modules() if type(m) is nn.Embedding]
    observer = torch.ao.quantization.float_qparams_weight_only_qconfig.weight
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        for name, embedding in embeddings:
            observe = observer()
            observe(embedding.weight)
            scales, offsets = observe.calculate_qparams()
            rows = torch.quantize_per_channel(
                embedding.weight.detach().float(), scales, offsets, 0, torch.quint8
            )
            table = Int8Embedding(
                embedding.num_embeddings, embedding.embedding_dim, embedding.padding_idx,
                dtype=torch.quint8,
            )  # fmt: skip
            table.set_weight(rows)
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, attr, table)
    return len(embeddings)


@torch.no_grad()
def _calibrate(model: nn.Module, linears: dict[str, nn.Linear], batches) -> dict[str, tuple]:
    """Run the calibration batches and observe every Linear's input and output ranges with
    the x86 default observers (histogram, reduced range for fbgemm's AVX2 kernels)."""
    qconfig = get_default_qconfig("x86")
    observers = {name: (qconfig.activation(), qconfig.activation()) for name in linears}
    handles = [
        linear.register_forward_hook(
            lambda module, args, output, pair=observers[name]: (
                (pair[0](args[0]), pair[1](output)) and None
            )
        )
        for name, linear in linears.items()
    ]
    try:
        for batch in batches:
            model(**{k: v for k, v in batch.items() if k != "labels"})
    finally:
        for handle in handles:
            handle.remove()
    return observers


@quantize_.register(Int8StaticConfig)
def _int8_static(
    config: Int8StaticConfig, model: nn.Module, context: CompressionContext
) -> QuantReport:
    converted = conv1d_to_linear(model)
    linears = _linears(model)
    batches = context.calibration_batches(config.calibration_batches, "static int8")
    observers = _calibrate(model.eval(), linears, batches)
    weight_observer = get_default_qconfig("x86").weight
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        warnings.simplefilter("ignore", DeprecationWarning)
        for name, linear in linears.items():
            observe_weight = weight_observer()
            observe_weight(linear.weight)
            scales, zero_points = observe_weight.calculate_qparams()
            weight = torch.quantize_per_channel(
                linear.weight.detach(), scales.double(), zero_points, 0, torch.qint8
            )
            module = quantized.Linear(linear.in_features, linear.out_features, dtype=torch.qint8)
            module.set_weight_bias(weight, None if linear.bias is None else linear.bias.detach())
            input_observer, output_observer = observers[name]
            out_scale, out_zero = output_observer.calculate_qparams()
            module.scale, module.zero_point = float(out_scale), int(out_zero)
            in_scale, in_zero = input_observer.calculate_qparams()
            parent, _, attr = name.rpartition(".")
            replacement = StaticInt8Linear(module, float(in_scale), int(in_zero))
            setattr(model.get_submodule(parent) if parent else model, attr, replacement)
    note = (
        f"static int8 on every nn.Linear, activation ranges from {config.calibration_batches} "
        "calibration batches; activations are quantized and dequantized around each Linear"
    )
    return QuantReport(config.name, "int8", len(linears), [note, *_conv1d_notes(converted)])
