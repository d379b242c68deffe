"""What a model weighs: parameters, non-zero parameters and bytes of weights in memory."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.ao.nn.quantized import dynamic as quantized_dynamic


def weight_tensors(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """Every learned tensor once, including the int8 weights packed inside quantized Linears."""
    for name, module in model.named_modules():
        if isinstance(module, quantized_dynamic.Linear):
            weight, bias = module._weight_bias()
            yield f"{name}.weight", weight
            if bias is not None:
                yield f"{name}.bias", bias
    yield from model.named_parameters()


def _nonzero(tensor: torch.Tensor) -> int:
    if tensor.is_quantized:
        return int((tensor.int_repr() != tensor.q_zero_point()).sum())
    return int(torch.count_nonzero(tensor))


def size_stats(model: nn.Module) -> dict[str, int]:
    params = nonzero = weight_bytes = 0
    for _, tensor in weight_tensors(model):
        params += tensor.numel()
        nonzero += _nonzero(tensor.detach())
        weight_bytes += tensor.numel() * tensor.element_size()
    return {"params": params, "nonzero_params": nonzero, "weight_bytes": weight_bytes}
