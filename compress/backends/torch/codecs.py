"""Quantized torch modules stored as plain integer tensors with their scales and zero points,
and rebuilt from them: torch's packed parameters hold a ``torch.dtype`` and cannot go through
safetensors. One :class:`QuantizedCodec` per kind of quantized module."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.ao.nn import quantized
from torch.ao.nn.quantized import dynamic as quantized_dynamic

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

Tensors = dict[str, torch.Tensor]


def _quantized_weight(weight: torch.Tensor) -> Tensors:
    if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        return {
            "weight": weight.int_repr(),
            "weight_scale": weight.q_per_channel_scales().double(),
            "weight_zero_point": weight.q_per_channel_zero_points(),
        }
    return {
        "weight": weight.int_repr(),
        "weight_scale": torch.tensor(weight.q_scale(), dtype=torch.float64),
        "weight_zero_point": torch.tensor(weight.q_zero_point()),
    }


def _dequantizable(stored: Tensors) -> torch.Tensor:
    scale, zero = stored["weight_scale"], stored["weight_zero_point"]
    with warnings.catch_warnings():  # torch 2.13 deprecates quantized tensors; no successor yet
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        if scale.dim() == 1:
            return torch._make_per_channel_quantized_tensor(stored["weight"], scale, zero, 0)
        return torch._make_per_tensor_quantized_tensor(stored["weight"], float(scale), int(zero))


def _encode_dynamic(module: quantized_dynamic.Linear) -> Tensors:
    weight, bias = module._weight_bias()
    return _quantized_weight(weight) | ({} if bias is None else {"bias": bias.detach()})


def _decode_dynamic(stored: Tensors, skeleton: nn.Module) -> nn.Module:
    out_features, in_features = stored["weight"].shape
    module = quantized_dynamic.Linear(in_features, out_features, dtype=torch.qint8)
    module.set_weight_bias(_dequantizable(stored), stored.get("bias"))
    return module


def _encode_static(module: StaticInt8Linear) -> Tensors:
    weight, bias = module.linear._weight_bias()
    ranges = [module.input_scale, module.input_zero_point, module.linear.scale,
              module.linear.zero_point]  # fmt: skip
    encoded = _quantized_weight(weight) | {"ranges": torch.tensor(ranges, dtype=torch.float64)}
    return encoded | ({} if bias is None else {"bias": bias.detach()})


def _decode_static(stored: Tensors, skeleton: nn.Module) -> nn.Module:
    out_features, in_features = stored["weight"].shape
    module = quantized.Linear(in_features, out_features, dtype=torch.qint8)
    module.set_weight_bias(_dequantizable(stored), stored.get("bias"))
    input_scale, input_zero, output_scale, output_zero = stored["ranges"].tolist()
    module.scale, module.zero_point = output_scale, int(output_zero)
    return StaticInt8Linear(module, input_scale, int(input_zero))


def _encode_embedding(module: Int8Embedding) -> Tensors:
    rows = module.weight()
    return {
        "weight": rows.int_repr(),
        "weight_scale": rows.q_per_channel_scales(),
        "weight_offset": rows.q_per_channel_zero_points(),
    }


def _decode_embedding(stored: Tensors, skeleton: nn.Module) -> nn.Module:
    count, dim = stored["weight"].shape
    module = Int8Embedding(count, dim, skeleton.padding_idx, dtype=torch.quint8)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        rows = torch._make_per_channel_quantized_tensor(
            stored["weight"], stored["weight_scale"], stored["weight_offset"], 0
        )
        module.set_weight(rows)
    return module


@dataclass(frozen=True)
class QuantizedCodec:
    """How one kind of quantized module is stored as plain tensors and rebuilt from them, in
    place of the float module the skeleton built from the config has there (a Linear, or
    GPT-2's Conv1D: shapes come from the stored weight, not from the skeleton). ``linear``:
    the module is a Linear (what ``QuantReport.bits_per_weight`` counts)."""

    module_type: type
    encode: Callable[[nn.Module], Tensors]
    decode: Callable[[Tensors, nn.Module], nn.Module]
    linear: bool = True


def _packed(kind: type[PackedLinear]) -> QuantizedCodec:
    """Modules that hold their stored tensors as they are: encoding lists them, decoding
    hands them (memory-mapped or not) to the constructor."""
    return QuantizedCodec(kind, kind.stored, lambda stored, skeleton: kind.from_stored(stored))


CODECS = {
    "int8_dynamic": QuantizedCodec(quantized_dynamic.Linear, _encode_dynamic, _decode_dynamic),
    "int8_static": QuantizedCodec(StaticInt8Linear, _encode_static, _decode_static),
    "int8_embedding": QuantizedCodec(
        Int8Embedding, _encode_embedding, _decode_embedding, linear=False
    ),
    "int8_weight_only": _packed(Int8WeightOnlyLinear),
    "int8_w8a8": _packed(DynamicInt8Linear),
    "int4": _packed(Int4Linear),
    # nothing of its own to store: it is bound to the model's LM head once that is rebuilt
    "tied_embedding": QuantizedCodec(
        TiedEmbedding,
        lambda module: {},
        lambda stored, skeleton: TiedEmbedding(
            getattr(skeleton, "padding_idx", None), embedding_scale(skeleton)
        ),
        linear=False,
    ),
}


def quantized_modules(model: nn.Module) -> dict[str, str]:
    """Quantized modules by qualified name, with the name of their codec."""
    kinds = {codec.module_type: name for name, codec in CODECS.items()}
    return {n: kinds[type(m)] for n, m in model.named_modules() if type(m) in kinds}


def swap_in_quantized(model: nn.Module, stored: dict[str, tuple[str, Tensors]]) -> None:
    """Replace each named module by the quantized one its codec rebuilds from its tensors."""
    for name, (codec, tensors) in stored.items():
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, CODECS[codec].decode(tensors, getattr(parent, attr)))
    for module in model.modules():
        if isinstance(module, TiedEmbedding):
            module.bind(model.get_output_embeddings())


def stored_bits_per_weight(model: nn.Module) -> float | None:
    """Bits the artifact stores per weight of the quantized Linears, scales and zero points
    included (biases not); ``None`` when no Linear is quantized."""
    bits = weights = 0
    for name, codec in quantized_modules(model).items():
        if not CODECS[codec].linear:
            continue
        module = model.get_submodule(name)
        stored = CODECS[codec].encode(module)
        bits += 8 * sum(t.nbytes for key, t in stored.items() if key != "bias")
        weights += module.in_features * module.out_features
    return bits / weights if weights else None
