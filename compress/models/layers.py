"""Find the parts of a transformer that compression methods act on, whatever its family."""

from __future__ import annotations

import re

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from compress.config.prune import Scope

# A projection: nn.Linear, or GPT-2's Conv1D (the same map, its weight stored transposed).
PROJECTIONS = (nn.Linear, Conv1D)


def weight_rows(module: nn.Module) -> torch.Tensor:
    """A projection's weight as ``[out, in]``, a view of the stored tensor (a ``Conv1D``
    stores ``[in, out]``)."""
    return module.weight.t() if isinstance(module, Conv1D) else module.weight


def transformer_blocks(model: nn.Module) -> nn.ModuleList:
    """The repeated blocks (BERT ``encoder.layer``, Llama ``layers``, GPT-2 ``h``): the longest
    ModuleList in the model."""
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) > 0]
    if not lists:
        raise ValueError(f"{type(model).__name__} has no ModuleList of transformer blocks")
    return max(lists, key=len)


def block_linears(model: nn.Module) -> dict[str, nn.Module]:
    """Every projection (Linear, or GPT-2's Conv1D) inside the transformer blocks, by
    qualified name in ``model``.

    Embeddings, LayerNorms, the pooler and the task head are outside the blocks and stay dense.
    """
    blocks = transformer_blocks(model)
    inside = {id(m) for m in blocks.modules()}
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, PROJECTIONS) and id(module) in inside
    }


_ATTENTION = re.compile(r"(^|\.)(\w*attn\w*|\w*attention\w*)(\.|$)")


def is_attention(name: str) -> bool:
    """Whether a block's Linear (by qualified name) belongs to attention rather than the FFN."""
    return bool(_ATTENTION.search(name))


def linears_in_scope(model: nn.Module, scope: Scope) -> dict[str, nn.Module]:
    """The projections an unstructured method may prune (see ``UnstructuredPruningConfig``)."""
    if scope == Scope.all:
        return {n: m for n, m in model.named_modules() if isinstance(m, PROJECTIONS)}
    layers = block_linears(model)
    if scope == Scope.attention:
        return {n: m for n, m in layers.items() if is_attention(n)}
    if scope == Scope.ffn:
        return {n: m for n, m in layers.items() if not is_attention(n)}
    return layers
