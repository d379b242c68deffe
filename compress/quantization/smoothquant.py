"""SmoothQuant's smoothing (Xiao et al. 2023): move activation outliers into the weights.

A few input channels of an LLM's Linears carry activations 10-100x larger than the rest, so
one int8 scale per token wastes most of its levels on them. With s_j = max|X_j|^alpha /
max|W_j|^(1 - alpha) per input channel, X diag(s)^-1 is flat enough for int8 and
diag(s) W^T is still easy for per-channel int8. Where a norm's output feeds only Linears
(pre-norm blocks), dividing the norm's output by s (its weight and bias; Gemma's ``1 +
weight``) and multiplying the Linears' input columns by s leaves the float model's outputs
unchanged: the smoothing costs nothing at run time. Which norm feeds which Linears is family
data (:mod:`compress.models.families`); a fused projection (Phi-3's ``qkv_proj``) is one
Linear like any other.
"""

from __future__ import annotations

import torch
from torch import nn

from compress.models.families import family_of
from compress.models.layers import transformer_blocks
from compress.quantization.calibration import Batch, run_batches, watching_inputs

Fold = tuple[str, list[str]]  # norm, the projections it feeds (qualified names)


def foldable(model: nn.Module) -> list[Fold]:
    """Every norm of the model's blocks whose output only projections read, with those
    projections: the family's folds (:mod:`compress.models.families`), where the block has
    the norm (ModernBERT's first block has none, an ``nn.Identity``)."""
    family = family_of(getattr(getattr(model, "config", None), "model_type", None))
    blocks = transformer_blocks(model)
    prefix = next(name for name, module in model.named_modules() if module is blocks)
    folds = []
    for index, block in enumerate(blocks):
        for norm, linears in family.folds if family else ():
            if getattr(block.get_submodule(norm), "weight", None) is None:
                continue
            names = [f"{prefix}.{index}.{path}" for path in linears]
            folds.append((f"{prefix}.{index}.{norm}", names))
    return folds


def channel_maxima(
    model: nn.Module, linears: dict[str, nn.Linear], batches: list[Batch]
) -> dict[str, torch.Tensor]:
    """max |X_j| per input channel j of each Linear over the calibration batches."""
    maxima = {n: torch.zeros(m.in_features) for n, m in linears.items()}

    def observe(name: str, inputs: torch.Tensor) -> None:
        torch.maximum(maxima[name], inputs.abs().amax(dim=0), out=maxima[name])

    with watching_inputs(linears, observe):
        run_batches(model, batches)
    return maxima


def smoothing_factors(
    activation_max: torch.Tensor, weights: list[torch.Tensor], alpha: float
) -> torch.Tensor:
    """s_j = max|X_j|^alpha / max|W_j|^(1 - alpha), the weight maximum taken over every Linear
    that shares the input (they are all scaled by the same s)."""
    weight_max = torch.cat([w.detach().abs() for w in weights]).amax(dim=0).float()
    factors = activation_max.clamp(min=1e-5).pow(alpha) / weight_max.clamp(min=1e-5).pow(1 - alpha)
    return factors.clamp(min=1e-5)


# How a norm's weight can enter its output, and the weight that divides the output by s:
# y = w * x (LayerNorm, Llama's RMSNorm), or y = (1 + w) * x (Gemma's RMSNorm).
_RESCALINGS = (
    lambda weight, factors: weight / factors,
    lambda weight, factors: (1 + weight) / factors - 1,
)


@torch.no_grad()
def scales_its_output(norm: nn.Module, factors: torch.Tensor) -> bool:
    """Rescale ``norm`` so that its output is divided by ``factors``, in whichever of the
    known forms its weight takes (:data:`_RESCALINGS`), checked on a probe: true when one
    form holds (the norm is left rescaled), false when none does (the norm is unchanged)."""
    probe = torch.randn(4, factors.numel(), generator=torch.Generator().manual_seed(0))
    before = norm(probe)
    weight, bias = norm.weight.clone(), getattr(norm, "bias", None)
    bias = None if bias is None else bias.clone()
    for rescale in _RESCALINGS:
        norm.weight.copy_(rescale(weight, factors))
        if bias is not None:
            norm.bias.copy_(bias / factors)
        if torch.allclose(norm(probe) * factors, before, rtol=1e-4, atol=1e-5):
            return True
    norm.weight.copy_(weight)
    if bias is not None:
        norm.bias.copy_(bias)
    return False


@torch.no_grad()
def smooth(model: nn.Module, batches: list[Batch], alpha: float) -> list[str]:
    """Fold smoothing factors into every foldable norm and the Linears it feeds; returns the
    names of the smoothed Linears. The float model computes the same function after it."""
    folds = foldable(model)
    first = {linears[0]: model.get_submodule(linears[0]) for _, linears in folds}
    maxima = channel_maxima(model, first, batches)
    smoothed = []
    for norm_name, names in folds:
        linears = [model.get_submodule(name) for name in names]
        factors = smoothing_factors(maxima[names[0]], [m.weight for m in linears], alpha)
        if not scales_its_output(model.get_submodule(norm_name), factors):
            continue
        for linear in linears:
            linear.weight.mul_(factors)
        smoothed += names
    return smoothed
