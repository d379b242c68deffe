"""What a model weighs: parameters, non-zero parameters and bytes of weights in memory."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.ao.nn import quantized


def weight_tensors(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """Every learned tensor once, including the integer weights packed inside quantized
    Linears (dynamic and static) and quantized embedding tables."""
    for name, module in model.named_modules():
        if isinstance(module, quantized.Linear):
            weight, bias = module._weight_bias()
            yield f"{name}.weight", weight
            if bias is not None:
                yield f"{name}.bias", bias
        elif isinstance(module, quantized.Embedding):
            yield f"{name}.weight", module.weight()
    yield from model.named_parameters()


def _nonzero(tensor: torch.Tensor) -> int:
    # a quantized weight is zero where its integer equals its (per-tensor or per-row) zero point
    return int(torch.count_nonzero(tensor.dequantize() if tensor.is_quantized else tensor))


def _packed_linears(model: nn.Module) -> Iterator[nn.Module]:
    """Linears that hold integer weights in their kernel's layout as buffers
    (``compress.backends.torch.modules.PackedLinear``, known by its interface: importing the
    backend from here would be circular)."""
    return (m for m in model.modules() if callable(getattr(m, "dequantized_weight", None)))


def size_stats(model: nn.Module) -> dict[str, int]:
    """Parameters, non-zeros and bytes in memory; a packed Linear counts every buffer it
    holds (the stored layout and the kernel's own, where they differ)."""
    params = nonzero = weight_bytes = 0
    for _, tensor in weight_tensors(model):
        params += tensor.numel()
        nonzero += _nonzero(tensor.detach())
        weight_bytes += tensor.numel() * tensor.element_size()
    for module in _packed_linears(model):
        weight, bias = module.dequantized_weight(), module.bias
        params += weight.numel() + (0 if bias is None else bias.numel())
        nonzero += _nonzero(weight) + (0 if bias is None else _nonzero(bias))
        weight_bytes += sum(buffer.nbytes for buffer in module.buffers())
    return {"params": params, "nonzero_params": nonzero, "weight_bytes": weight_bytes}
