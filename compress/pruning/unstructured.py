"""Unstructured pruning: individual weights set to zero (magnitude, random, N:M patterns)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from compress.config.prune import (
    MagnitudePruningConfig,
    NoPruningConfig,
    RandomPruningConfig,
    SemiStructuredPruningConfig,
)
from compress.infra.context import CompressionContext
from compress.models.layers import block_linears, linears_in_scope, weight_rows
from compress.pruning.base import PruneReport, parameter_count, prune_model, zeros_in


@prune_model.register(NoPruningConfig)
def _no_pruning(
    config: NoPruningConfig, model: nn.Module, amount: float, context: CompressionContext
) -> PruneReport:
    params = parameter_count(model)
    return PruneReport(config.name, 0.0, "weights", 0, 0, params, params,
                       *zeros_in(block_linears(model)), structured=False)  # fmt: skip


def _unstructured(
    config, model: nn.Module, amount: float, method: type[torch_prune.BasePruningMethod]
) -> PruneReport:
    layers = linears_in_scope(model, config.scope)
    params = parameter_count(model)
    if amount > 0:
        if config.per_layer:
            for layer in layers.values():
                method.apply(layer, "weight", amount=amount)
        else:
            targets = [(layer, "weight") for layer in layers.values()]
            torch_prune.global_unstructured(targets, pruning_method=method, amount=amount)
        for layer in layers.values():
            torch_prune.remove(layer, "weight")
    in_scope, zeros = zeros_in(layers)
    return PruneReport(config.name, amount, "weights", in_scope, zeros, params, params,
                       in_scope, zeros, structured=False)  # fmt: skip


@prune_model.register(MagnitudePruningConfig)
@torch.no_grad()
def _magnitude(config, model: nn.Module, amount: float, context: CompressionContext) -> PruneReport:
    return _unstructured(config, model, amount, torch_prune.L1Unstructured)


@prune_model.register(RandomPruningConfig)
@torch.no_grad()
def _random(config, model: nn.Module, amount: float, context: CompressionContext) -> PruneReport:
    torch.manual_seed(config.seed)
    return _unstructured(config, model, amount, torch_prune.RandomUnstructured)


@prune_model.register(SemiStructuredPruningConfig)
@torch.no_grad()
def _semi_structured(
    config: SemiStructuredPruningConfig,
    model: nn.Module,
    amount: float,
    context: CompressionContext,
) -> PruneReport:
    layers = linears_in_scope(model, config.scope)
    for name, layer in layers.items():
        weight = weight_rows(layer)
        out_features, in_features = weight.shape
        if in_features % config.group:
            raise ValueError(f"{name}: {in_features} inputs are not a multiple of {config.group}")
        groups = weight.reshape(out_features, in_features // config.group, config.group)
        smallest = groups.abs().topk(config.zeros, dim=-1, largest=False).indices
        weight.copy_(groups.scatter(-1, smallest, 0.0).reshape(weight.shape))
    in_scope, zeros = zeros_in(layers)
    params = parameter_count(model)
    note = (
        f"{config.zeros}:{config.group} sparsity runs faster only on GPU sparse tensor cores "
        "(NVIDIA Ampere or later); on CPU it is stored compactly but computed densely"
    )
    return PruneReport(config.name, amount, "weights", in_scope, zeros, params, params,
                       in_scope, zeros, structured=False, notes=[note])  # fmt: skip
