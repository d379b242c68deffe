"""Fake int8 quantization for quantization-aware training.

Each Linear's weight is rounded to a symmetric per-tensor int8 grid and each input to an
asymmetric per-batch uint8 grid, exactly what dynamic int8 inference will do, with
straight-through gradients (``torch.fake_quantize_per_tensor_affine``). Training then learns
weights that survive the rounding; :func:`remove_fake_quantization` leaves those weights in
plain float Linears, ready for real int8 conversion.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from compress.config.quant import Int8QATConfig, QuantConfig
from compress.infra.registry import Registry


class _FakeQuantWeight(nn.Module):
    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        scale = float(weight.detach().abs().max().clamp_min(1e-8)) / 127.0
        return torch.fake_quantize_per_tensor_affine(weight, scale, 0, -128, 127)


def _fake_quant_input(module: nn.Module, args: tuple) -> tuple:
    x = args[0]
    low = float(x.detach().min().clamp(max=0.0))
    high = float(x.detach().max().clamp(min=0.0))
    scale = max(high - low, 1e-8) / 255.0
    zero_point = int(round(-low / scale))
    return (torch.fake_quantize_per_tensor_affine(x, scale, zero_point, 0, 255), *args[1:])


def add_fake_quantization(model: nn.Module) -> int:
    """Fake-quantize every Linear of ``model``; returns how many."""
    linears = [m for m in model.modules() if type(m) is nn.Linear]
    for linear in linears:
        parametrize.register_parametrization(linear, "weight", _FakeQuantWeight())
        linear._compress_fake_quant = linear.register_forward_pre_hook(_fake_quant_input)
    return len(linears)


def remove_fake_quantization(model: nn.Module) -> None:
    for module in model.modules():
        handle = getattr(module, "_compress_fake_quant", None)
        if handle is not None:
            handle.remove()
            del module._compress_fake_quant
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)


# What a level does to the float model before recovery training (only QAT does anything).
prepare_for_training = Registry("quantization level")


prepare_for_training.register(QuantConfig)(lambda config, model: None)  # every other level


@prepare_for_training.register(Int8QATConfig)
def _fake_quantize(config: Int8QATConfig, model: nn.Module) -> None:
    add_fake_quantization(model)
