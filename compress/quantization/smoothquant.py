"""SmoothQuant's smoothing (Xiao et al. 2023): move activation outliers into the weights.

A few input channels of an LLM's Linears carry activations 10-100x larger than the rest, so
one int8 scale per token wastes most of its levels on them. With s_j = max|X_j|^alpha /
max|W_j|^(1 - alpha) per input channel, X diag(s)^-1 is flat enough for int8 and
diag(s) W^T is still easy for per-channel int8. Where a norm's output feeds only Linears
(pre-norm blocks), dividing the norm's weight and bias by s and multiplying the Linears'
input columns by s leaves the float model's outputs unchanged: the smoothing costs nothing
at run time.
"""

from __future__ import annotations

import torch
from torch import nn

from compress.models.layers import transformer_blocks
from compress.quantization.calibration import Batch, run_batches, watching_inputs

# Per transformer block: a norm, and every Linear that reads its output (nothing else does,
# in these pre-norm families). Llama, Mistral, Qwen2, SmolLM2: attention and SwiGLU inputs;
# GPT-2: the fused q/k/v and the first MLP projection (after Conv1D -> Linear).
FOLDS = (
    ("input_layernorm", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
    ("post_attention_layernorm", ("mlp.gate_proj", "mlp.up_proj")),
    ("ln_1", ("attn.c_attn",)),
    ("ln_2", ("mlp.c_fc",)),
)
Fold = tuple[str, list[str]]  # norm, the Linears it feeds (qualified names)


def _has(module: nn.Module, path: str) -> bool:
    try:
        module.get_submodule(path)
    except AttributeError:
        return False
    return True


def foldable(model: nn.Module) -> list[Fold]:
    """Every norm of the model's blocks whose output only Linears read, with those Linears."""
    blocks = transformer_blocks(model)
    prefix = next(name for name, module in model.named_modules() if module is blocks)
    folds = []
    for index, block in enumerate(blocks):
        for norm, linears in FOLDS:
            if all(_has(block, path) for path in (norm, *linears)):
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


@torch.no_grad()
def _rescale_norm(norm: nn.Module, factors: torch.Tensor) -> None:
    norm.weight.div_(factors)
    if getattr(norm, "bias", None) is not None:
        norm.bias.div_(factors)


@torch.no_grad()
def scales_its_output(norm: nn.Module, factors: torch.Tensor) -> bool:
    """Whether dividing the norm's weight (and bias) by ``factors`` divides its output by them:
    true of LayerNorm and Llama's RMSNorm, not of a norm that multiplies by (1 + weight), such
    as Gemma's. The norm is left rescaled only when true."""
    probe = torch.randn(4, factors.numel(), generator=torch.Generator().manual_seed(0))
    before = norm(probe)
    _rescale_norm(norm, factors)
    if torch.allclose(norm(probe) * factors, before, rtol=1e-4, atol=1e-5):
        return True
    _rescale_norm(norm, 1 / factors)
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
