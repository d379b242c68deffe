"""Quantized module kinds that torch does not ship ready to drop into a float model."""

from __future__ import annotations

import torch
from torch import nn
from torch.ao.nn import quantized


class StaticInt8Linear(nn.Module):
    """A Linear with int8 weights (per output channel) and int8 activations whose ranges were
    fixed by calibration: float in, float out, so it replaces ``nn.Linear`` anywhere.

    The input is quantized with the calibrated scale, multiplied by fbgemm's int8 kernel,
    requantized to the calibrated output range and dequantized.
    """

    def __init__(self, linear: quantized.Linear, input_scale: float, input_zero_point: int):
        super().__init__()
        self.linear = linear
        self.input_scale = input_scale
        self.input_zero_point = input_zero_point
        self.in_features = linear.in_features
        self.out_features = linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1]).float()
        q = torch.quantize_per_tensor(flat, self.input_scale, self.input_zero_point, torch.quint8)
        return self.linear(q).dequantize().reshape(*shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class Int8Embedding(quantized.Embedding):
    """torch's weight-only int8 embedding lookup (uint8 rows, a float scale and offset per
    row) made a drop-in for ``nn.Embedding``: its kernel rejects non-contiguous index views,
    which transformers passes (sliced position ids, expanded token type ids)."""

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return super().forward(indices.contiguous())
