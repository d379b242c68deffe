"""Quantization levels on the torch backend: ``quantize_(config, model, context)`` changes
the model in place.

One registered handler per level dataclass of :mod:`compress.config.quant`; each returns a
:class:`QuantReport` saying what was converted and any caveat a reader of the record must
know (such as a dtype this CPU has no arithmetic units for).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn
from torch.ao.nn import quantized
from torch.ao.quantization import get_default_qconfig

import compress.backends.torch.modules as modules
from compress.backends.torch.codecs import stored_bits_per_weight
from compress.backends.torch.modules import (
    DynamicInt8Linear,
    Int4Linear,
    Int8Embedding,
    Int8WeightOnlyLinear,
    PackedLinear,
    StaticInt8Linear,
    TiedEmbedding,
    embedding_scale,
)
from compress.config.quant import (
    BFloat16Config,
    ConfigError,
    Float16Config,
    Float32Config,
    Int4GPTQConfig,
    Int4WeightOnlyConfig,
    Int8DynamicConfig,
    Int8QATConfig,
    Int8SmoothQuantConfig,
    Int8StaticConfig,
    Int8WeightOnlyConfig,
    QuantConfig,
)
from compress.infra.context import CompressionContext
from compress.infra.environment import NATIVE_BF16, NATIVE_FP16, cpu_flags
from compress.infra.registry import Registry
from compress.models.families import family_of
from compress.quantization.calibration import run_batches
from compress.quantization.gptq import gptq_model
from compress.quantization.grid import int4_rtn, int8_per_channel, pack_nibbles
from compress.quantization.qat import remove_fake_quantization
from compress.quantization.report import QuantReport
from compress.quantization.selection import check_patterns, is_skipped, select, skip_note
from compress.quantization.smoothquant import smooth

quantize_ = Registry("quantization level")

_NATIVE = {torch.float16: NATIVE_FP16, torch.bfloat16: NATIVE_BF16}


@quantize_.register(Float32Config)
def _float32(config: Float32Config, model: nn.Module, context: CompressionContext) -> QuantReport:
    return QuantReport(config.name, "float32", 0, bits_per_weight=32.0, kernel="aten.linear")


def _computed_buffers(model: nn.Module) -> list[tuple[nn.Module, str, torch.Tensor]]:
    """Float buffers the model computes at construction and never saves (rotary
    frequencies): a reloaded model has them in float32, whatever its weights' dtype."""
    return [
        (module, name, buffer)
        for module in model.modules()
        for name, buffer in module._buffers.items()
        if name in module._non_persistent_buffers_set
        and buffer is not None
        and buffer.is_floating_point()
    ]


def _cast(model: nn.Module, level: str, dtype: torch.dtype) -> QuantReport:
    """Cast weights and saved buffers to ``dtype``; computed buffers stay as a reload has
    them (:func:`_computed_buffers`), so the saved model runs as the one measured."""
    computed = _computed_buffers(model)
    model.to(dtype)
    for module, name, buffer in computed:
        module._buffers[name] = buffer
    floating = sum(1 for p in model.parameters() if p.is_floating_point())
    notes = []
    if not set(_NATIVE[dtype]) & set(cpu_flags()):
        note = (
            f"{level} halves the weights, but this CPU has no {' or '.join(_NATIVE[dtype])}: "
            "matrix products convert on the fly, expect latency several times that of fp32"
        )
        warnings.warn(note, stacklevel=3)
        notes.append(note)
    bits = float(8 * dtype.itemsize)
    return QuantReport(
        level, str(dtype).removeprefix("torch."), floating, notes, bits, "aten.linear"
    )


@quantize_.register(Float16Config)
def _float16(config: Float16Config, model: nn.Module, context: CompressionContext) -> QuantReport:
    return _cast(model, config.name, torch.float16)


@quantize_.register(BFloat16Config)
def _bfloat16(config: BFloat16Config, model: nn.Module, context: CompressionContext) -> QuantReport:
    return _cast(model, config.name, torch.bfloat16)


def _linears(model: nn.Module) -> dict[str, nn.Linear]:
    return {name: m for name, m in model.named_modules() if type(m) is nn.Linear}


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, module)


def _report(
    config: QuantConfig, dtype: str, layers: int, notes: list[str], model: nn.Module, kernel: str
) -> QuantReport:
    """The report of a level that converted ``layers`` modules of ``model``, with the bits its
    artifact stores per quantized Linear weight."""
    bits = stored_bits_per_weight(model)
    return QuantReport(config.name, dtype, layers, notes, bits, kernel)


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
        _set_module(model, name, linear)
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
    return QuantReport(config.name, report.weight_dtype, report.layers_quantized, [note],
                       report.bits_per_weight, report.kernel)  # fmt: skip


@quantize_.register(Int8DynamicConfig)
def _int8_dynamic(
    config: Int8DynamicConfig, model: nn.Module, context: CompressionContext
) -> QuantReport:
    qconfigs = torch.ao.quantization
    scheme = qconfigs.per_channel_dynamic_qconfig if config.per_channel else None
    linears, notes = _targets(config, model)
    with warnings.catch_warnings():
        # torch 2.13 deprecates torch.ao eager quantization, still its fastest CPU int8 path
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        spec = dict.fromkeys(linears, scheme or qconfigs.default_dynamic_qconfig)
        torch.ao.quantization.quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)
    tables = _quantize_embeddings(model, config.skip) if config.embeddings else 0
    granularity = "per-channel" if config.per_channel else "per-tensor"
    note = f"dynamic int8 ({granularity} weights) on every nn.Linear; " + (
        f"{tables} embedding tables as int8 rows" if tables else "embeddings stay float32"
    )
    kernel = f"quantized.linear_dynamic ({torch.backends.quantized.engine})"
    return _report(config, "int8", len(linears) + tables, [note, *notes], model, kernel)


def _targets(config: QuantConfig, model: nn.Module) -> tuple[dict[str, nn.Linear], list[str]]:
    """The Linears a level converts (GPT-2's Conv1D made Linears first; ``quant.skip``'s
    left out), and the notes that say so."""
    converted = conv1d_to_linear(model)
    check_patterns(model, config.skip)
    linears = _linears(model)
    chosen = select(linears, config.skip)
    return chosen, _conv1d_notes(converted) + skip_note(len(linears), len(chosen), config.skip)


@torch.no_grad()
def _quantize_embeddings(model: nn.Module, skip: list[str]) -> int:
    """Store every ``nn.Embedding`` (outside ``skip``) as uint8 rows, each with its own float
    scale and offset (torch's weight-only quantized lookup); returns how many tables were
    converted. Tables the family reads whole (DeBERTa's relative positions) stay float."""
    family = family_of(getattr(model.config, "model_type", None))
    whole = family.whole_tables if family else ()
    embeddings = [
        (n, m)
        for n, m in model.named_modules()
        if type(m) is nn.Embedding and not is_skipped(n, skip) and n.rpartition(".")[2] not in whole
    ]
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
            _set_module(model, name, table)
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
        run_batches(model, batches)
    finally:
        for handle in handles:
            handle.remove()
    return observers


@quantize_.register(Int8StaticConfig)
def _int8_static(
    config: Int8StaticConfig, model: nn.Module, context: CompressionContext
) -> QuantReport:
    linears, notes = _targets(config, model)
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
            _set_module(model, name, StaticInt8Linear(module, float(in_scale), int(in_zero)))
    note = (
        f"static int8 on every nn.Linear, activation ranges from {config.calibration_batches} "
        "calibration batches; activations are quantized and dequantized around each Linear"
    )
    kernel = f"quantized.linear ({torch.backends.quantized.engine})"
    return _report(config, "int8", len(linears), [note, *notes], model, kernel)


def _bias(linear: nn.Linear) -> torch.Tensor | None:
    return None if linear.bias is None else linear.bias.detach()


def _tied_embedding(model: nn.Module, linears: dict[str, nn.Linear], skip: list[str]) -> str | None:
    """The input embedding (outside ``skip``) whose weight is that of an LM head about to be
    converted; found before any method replaces the head's weight."""
    head = getattr(model, "get_output_embeddings", lambda: None)()
    embedding = getattr(model, "get_input_embeddings", lambda: None)()
    if head is None or embedding is None or head not in linears.values():
        return None
    if getattr(head, "weight", None) is not getattr(embedding, "weight", False):
        return None
    name = next(name for name, module in model.named_modules() if module is embedding)
    return None if is_skipped(name, skip) else name


def _convert(
    model: nn.Module,
    linears: dict[str, nn.Linear],
    build: Callable[[str, nn.Linear], PackedLinear],
    tied: str | None,
) -> list[str]:
    """Replace each Linear by ``build(name, linear)``; an input embedding ``tied`` to the LM
    head then reads the quantized head's rows instead of keeping a float copy."""
    for name, linear in linears.items():
        _set_module(model, name, build(name, linear))
    if tied is None:
        return []
    embedding = model.get_submodule(tied)
    lookup = TiedEmbedding(getattr(embedding, "padding_idx", None), embedding_scale(embedding))
    _set_module(model, tied, lookup.bind(model.get_output_embeddings()))
    return [f"{tied} is tied to the LM head: it looks up rows of the quantized head"]


@quantize_.register(Int8WeightOnlyConfig)
@torch.no_grad()
def _int8_weight_only(
    config: Int8WeightOnlyConfig, model: nn.Module, context: CompressionContext
) -> QuantReport:
    linears, notes = _targets(config, model)

    def build(name: str, linear: nn.Linear) -> PackedLinear:
        weight, scale = int8_per_channel(linear.weight, torch.bfloat16)
        return Int8WeightOnlyLinear(weight, scale, _bias(linear))

    notes += _convert(model, linears, build, _tied_embedding(model, linears, config.skip))
    note = "int8 weights (symmetric, per output channel, bfloat16 scales) on every nn.Linear, "
    kernel, rows = Int8WeightOnlyLinear.KERNEL, modules.FLOAT_MATMUL_FROM_ROWS
    if rows is None:
        note += "activations cast to bfloat16 for the kernel (this CPU has bf16 units)"
    else:
        note += (
            f"run by this CPU's flags (no {' or '.join(NATIVE_BF16)}): inputs of fewer than "
            f"{rows} rows (a decoding step) on the int8 kernel, activations "
            "cast to bfloat16; more rows (prefill, batched evaluation) as a float32 matmul on "
            "the weights dequantized for the call, where software bfloat16 would be slower"
        )
        kernel += f" (< {rows} rows), aten.linear on dequantized weights"
    return _report(config, "int8", len(linears), [note, *notes], model, kernel)


def _int4_targets(
    config: Int4WeightOnlyConfig | Int4GPTQConfig, model: nn.Module
) -> tuple[dict[str, nn.Linear], list[str]]:
    """The Linears the int4 kernel can take; those it cannot stay float, named in a note."""
    linears, notes = _targets(config, model)
    misfits = [n for n, m in linears.items() if not Int4Linear.fits(m, config.group_size)]
    if misfits:
        notes.append(
            f"{len(misfits)} Linears stay float32, the int4 kernel needs outputs a multiple of "
            f"16 and inputs a multiple of quant.group_size={config.group_size}: "
            + ", ".join(misfits[:5]) + (", ..." if len(misfits) > 5 else "")
        )  # fmt: skip
    return {n: m for n, m in linears.items() if n not in misfits}, notes


def _to_int4(
    model: nn.Module, linears: dict[str, nn.Linear], chosen: dict, tied: str | None
) -> list[str]:
    def build(name: str, linear: nn.Linear) -> PackedLinear:
        levels, scale, zero = chosen[name]
        return Int4Linear(pack_nibbles(levels), scale, zero, _bias(linear))

    return _convert(model, linears, build, tied)


@quantize_.register(Int4WeightOnlyConfig)
@torch.no_grad()
def _int4(
    config: Int4WeightOnlyConfig, model: nn.Module, context: CompressionContext
) -> QuantReport:
    linears, notes = _int4_targets(config, model)
    chosen = {name: int4_rtn(m.weight, config.group_size) for name, m in linears.items()}
    notes += _to_int4(model, linears, chosen, _tied_embedding(model, linears, config.skip))
    note = (
        f"int4 weights rounded to nearest, asymmetric, groups of {config.group_size} inputs "
        "(bfloat16 scale and zero per group), activations cast to bfloat16 for the kernel"
    )
    return _report(config, "int4", len(linears), [note, *notes], model, Int4Linear.KERNEL)


@quantize_.register(Int4GPTQConfig)
def _int4_gptq(
    config: Int4GPTQConfig, model: nn.Module, context: CompressionContext
) -> QuantReport:
    linears, notes = _int4_targets(config, model)
    tied = _tied_embedding(model, linears, config.skip)
    batches = list(context.calibration_batches(config.calibration_batches, "GPTQ"))
    with torch.no_grad():
        chosen = gptq_model(model.eval(), linears, batches, config)
        notes += _to_int4(model, linears, chosen, tied)
    order = "largest Hessian diagonal first" if config.act_order else "in order"
    note = (
        f"int4 weights chosen by GPTQ on {len(batches)} calibration batches (columns {order}, "
        f"damping {config.percdamp}, blocks calibrated in sequence), asymmetric, groups of "
        f"{config.group_size} inputs; stored and run like quant=int4"
    )
    return _report(config, "int4", len(linears), [note, *notes], model, Int4Linear.KERNEL)


@quantize_.register(Int8SmoothQuantConfig)
@torch.no_grad()
def _int8_smoothquant(
    config: Int8SmoothQuantConfig, model: nn.Module, context: CompressionContext
) -> QuantReport:
    linears, notes = _targets(config, model)
    batches = list(context.calibration_batches(config.calibration_batches, "SmoothQuant"))
    tied = _tied_embedding(model, linears, config.skip)
    smoothed = set(smooth(model.eval(), batches, config.alpha))
    if not smoothed & set(linears):
        raise ConfigError(
            f"quant={config.name} smoothed no Linear of {type(model).__name__} (no norm of its "
            "blocks feeds only Linears that it converts), so it would be plain W8A8",
            "quant=int8_weight_only or int8 for this model, or a family that "
            "compress.models.families lists with folds",
        )

    def build(name: str, linear: nn.Linear) -> PackedLinear:
        return DynamicInt8Linear(*int8_per_channel(linear.weight), _bias(linear))

    notes += _convert(model, linears, build, tied)
    plain = [name for name in linears if name not in smoothed]
    note = (
        f"SmoothQuant (alpha={config.alpha}, {len(batches)} calibration batches): "
        f"{len(smoothed & set(linears))} Linears smoothed through the norm before them, then "
        f"W8A8 (int8 weights per output channel, int8 activations per token) on every "
        f"nn.Linear; {len(plain)} with no norm before them (attention output, MLP down "
        "projection, LM head) are W8A8 unsmoothed"
    )
    return _report(config, "int8", len(linears), [note, *notes], model, DynamicInt8Linear.KERNEL)
