"""Structured pruning: whole attention heads, feed-forward neurons or blocks cut out of the
tensors (:mod:`compress.pruning.surgery`), ranked by weight norm or by data."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from compress.config.prune import (
    DroppedBlocks,
    HeadAndNeuronPruningConfig,
    HeadImportance,
    HeadPruningConfig,
    LayerPruningConfig,
    NeuronPruningConfig,
)
from compress.config.rules import units_to_remove
from compress.infra.context import CompressionContext
from compress.models.layers import block_linears, transformer_blocks, weight_rows
from compress.pruning.base import (
    PruneReport,
    parameter_count,
    prune_model,
    zeros_in,
)
from compress.pruning.surgery import (
    describe_ffn_in_config,
    describe_heads_in_config,
    ffn_width,
    head_count,
    head_size,
    keep_blocks,
    keep_heads,
    keep_neurons,
    kv_head_count,
    layout_of,
    query_key_value,
    up_weights,
)


def _head_norms(block: nn.Module) -> torch.Tensor:
    """L2 norm of each query head's weights; a grouped key/value head's weights count in
    equal shares for the query heads that read it."""
    size, heads, kv_heads = head_size(block), head_count(block), kv_head_count(block)
    group = heads // kv_heads
    query, key, value = query_key_value(block)
    squares = query.reshape(heads, size, -1).pow(2).sum((1, 2))
    for weights in (key, value):
        kv_squares = weights.reshape(kv_heads, size, -1).pow(2)
        squares += kv_squares.sum((1, 2)).repeat_interleave(group) / group
    output = weight_rows(block.get_submodule(layout_of(block).output)).detach()
    squares += output.reshape(output.shape[0], heads, size).pow(2).sum((0, 2))
    return squares.sqrt()


def _head_gradients(
    model: nn.Module, context: CompressionContext, batches: int
) -> list[torch.Tensor]:
    """Michel et al. 2019: importance of head h = E|dL/dg_h| for a gate g_h = 1 on its output,
    normalised to unit L2 norm within each layer."""
    blocks = list(transformer_blocks(model))
    gates = [torch.ones(head_count(b), requires_grad=True) for b in blocks]
    handles = []
    for block, gate in zip(blocks, gates, strict=True):
        size = head_size(block)

        def gate_heads(module, args, gate=gate, size=size):
            return (args[0] * gate.repeat_interleave(size), *args[1:])

        output = block.get_submodule(layout_of(block).output)
        handles.append(output.register_forward_pre_hook(gate_heads))
    trainable = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    importance = [torch.zeros_like(g) for g in gates]
    try:
        model.eval()
        for batch in context.calibration_batches(batches, "gradient head importance"):
            model(**batch).loss.backward()
            for total, gate in zip(importance, gates, strict=True):
                total += gate.grad.abs()
                gate.grad = None
    finally:
        for handle in handles:
            handle.remove()
        for p in trainable:
            p.requires_grad_(True)
    return [scores / scores.norm().clamp_min(1e-12) for scores in importance]


def _keep_top(scores: torch.Tensor, removed: int) -> list[int]:
    return sorted(scores.argsort(descending=True)[: len(scores) - removed].tolist())


def _grouped_keep(scores: torch.Tensor, groups: int, removed: int) -> list[int]:
    """Query heads to keep when ``groups`` key/value heads each serve an equal share of the
    heads: every kept group keeps as many query heads. The block keeps ``k`` groups of ``m``
    heads, ``k * m`` closest to the heads wanted (ties keep more groups, so that the KV cache
    shrinks only when the count demands it, then fewer heads): the ``k`` groups whose ``m``
    best heads score highest, and in each its ``m`` best heads."""
    heads = len(scores)
    size = heads // groups
    wanted = heads - removed
    shapes = [(k, m) for k in range(1, groups + 1) for m in range(1, size + 1)]
    k, m = min(shapes, key=lambda km: (abs(km[0] * km[1] - wanted), -km[0], km[1]))
    best = scores.view(groups, size).topk(m, dim=1)
    chosen = best.values.sum(1).topk(k).indices
    return sorted(int(g) * size + int(h) for g in chosen for h in best.indices[g])


def _heads_to_keep(block: nn.Module, scores: torch.Tensor, removed: int) -> list[int]:
    groups = kv_head_count(block)
    if groups == len(scores):
        return _keep_top(scores, removed)
    return _grouped_keep(scores, groups, removed)


def _prune_heads(
    config: HeadPruningConfig, model: nn.Module, amount: float, context: CompressionContext
) -> tuple[int, int]:
    """Remove the same number of heads from every block; with grouped key/value heads the
    number is rounded to one the groups allow (see :func:`_grouped_keep`)."""
    blocks = list(transformer_blocks(model))
    heads = head_count(blocks[0])
    removed = units_to_remove(amount, heads, "attention heads per block")
    if removed:
        if config.importance == HeadImportance.gradient:
            scores = _head_gradients(model, context, config.calibration_batches)
        else:
            scores = [_head_norms(block) for block in blocks]
        with torch.no_grad():
            for block, block_scores in zip(blocks, scores, strict=True):
                keep_heads(block, _heads_to_keep(block, block_scores, removed))
        describe_heads_in_config(model)
    return heads * len(blocks), sum(heads - head_count(block) for block in blocks)


def _prune_neurons(
    config: NeuronPruningConfig, model: nn.Module, amount: float, context: CompressionContext
) -> tuple[int, int]:
    """Remove the same number of neurons from every block, ranked by the L2 norm of their
    rows in the up projections (gate and up alike)."""
    blocks = list(transformer_blocks(model))
    width = ffn_width(blocks[0])
    removed = units_to_remove(amount, width, "feed-forward neurons per block")
    if removed:
        with torch.no_grad():
            for block in blocks:
                rows = sum(weights.pow(2).sum(1) for weights in up_weights(block))
                keep_neurons(block, _keep_top(rows, removed))
        describe_ffn_in_config(model)
    return width * len(blocks), removed * len(blocks)


def _prune_blocks(
    config: LayerPruningConfig, model: nn.Module, amount: float, context: CompressionContext
) -> tuple[int, int]:
    total = len(transformer_blocks(model))
    removed = units_to_remove(amount, total, "blocks") if amount else 0
    keep = range(total - removed) if config.drop == DroppedBlocks.top else range(removed, total)
    keep_blocks(model, list(keep))
    return total, removed


def _prune_heads_and_neurons(
    config: HeadAndNeuronPruningConfig, model: nn.Module, amount: float, context: CompressionContext
) -> tuple[int, int]:
    heads_total, heads_removed = _prune_heads(config, model, amount, context)
    neurons_total, neurons_removed = _prune_neurons(config, model, amount, context)
    return heads_total + neurons_total, heads_removed + neurons_removed


def _structured_handler(unit: str, prune_units: Callable[..., tuple[int, int]]):
    """A handler that runs ``prune_units`` and reports parameters before and after."""

    def handler(
        config, model: nn.Module, amount: float, context: CompressionContext
    ) -> PruneReport:
        params = parameter_count(model)
        total, removed = prune_units(config, model, amount, context)
        in_scope, zeros = zeros_in(block_linears(model))
        after = parameter_count(model)
        return PruneReport(config.name, amount, unit, total, removed, params, after,
                           in_scope, zeros, structured=True)  # fmt: skip

    return handler


for _config_type, _unit, _pruner in (
    (HeadPruningConfig, "heads", _prune_heads),
    (NeuronPruningConfig, "neurons", _prune_neurons),
    (LayerPruningConfig, "blocks", _prune_blocks),
    (HeadAndNeuronPruningConfig, "heads+neurons", _prune_heads_and_neurons),
):
    prune_model.register(_config_type)(_structured_handler(_unit, _pruner))
