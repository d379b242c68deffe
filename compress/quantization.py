"""Quantization levels: ``quantize_(model, config)`` changes the model in place.

One registered handler per config dataclass of :mod:`compress.schema`; each returns a
:class:`QuantReport` that says what was converted and any caveat a reader of the record
must know (such as fp16 running without hardware support on most CPUs).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from compress.registry import Registry
from compress.schema import BFloat16Config, Float16Config, Float32Config, Int8DynamicConfig


@dataclass(frozen=True)
class QuantReport:
    level: str
    weight_dtype: str
    layers_quantized: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


quantize_ = Registry("quantization level")


@quantize_.register(Float32Config)
def _float32(config: Float32Config, model: nn.Module) -> QuantReport:
    return QuantReport(config.name, "float32", 0)


def _cast(model: nn.Module, level: str, dtype: torch.dtype, notes: list[str]) -> QuantReport:
    model.to(dtype)
    floating = sum(1 for p in model.parameters() if p.is_floating_point())
    return QuantReport(level, str(dtype).removeprefix("torch."), floating, notes)


@quantize_.register(Float16Config)
def _float16(config: Float16Config, model: nn.Module) -> QuantReport:
    note = (
        "fp16 halves the weights, but CPUs without native fp16 math (no AVX512-FP16/AMX-FP16) "
        "convert on the fly: expect latency several times that of fp32"
    )
    warnings.warn(note, stacklevel=2)
    return _cast(model, config.name, torch.float16, [note])


@quantize_.register(BFloat16Config)
def _bfloat16(config: BFloat16Config, model: nn.Module) -> QuantReport:
    return _cast(model, config.name, torch.bfloat16, [])


@quantize_.register(Int8DynamicConfig)
def _int8_dynamic(config: Int8DynamicConfig, model: nn.Module) -> QuantReport:
    linears = sum(1 for m in model.modules() if type(m) is nn.Linear)
    with warnings.catch_warnings():
        # torch 2.13 deprecates torch.ao eager quantization, which is still its fastest CPU path
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=True)
    return QuantReport(
        config.name,
        "int8",
        linears,
        ["dynamic int8 on every nn.Linear; embeddings and LayerNorm stay float32"],
    )
