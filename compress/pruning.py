"""Pruning methods: one registered handler per config dataclass of :mod:`compress.schema`.

Every handler makes its change permanent (no mask re-parametrisation stays behind) and
reports what it really removed, measured on the weights afterwards.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from compress.layers import block_linears
from compress.registry import Registry
from compress.schema import MagnitudePruningConfig, NoPruningConfig


@dataclass(frozen=True)
class PruneReport:
    method: str
    target: float
    layers: int
    weights_in_scope: int
    zeros_in_scope: int
    structured: bool = False

    @property
    def zero_fraction(self) -> float:
        return self.zeros_in_scope / self.weights_in_scope if self.weights_in_scope else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "zero_fraction": self.zero_fraction}


prune_model = Registry("pruning method")


def _report(method: str, target: float, layers: dict[str, nn.Linear]) -> PruneReport:
    weights = [layer.weight for layer in layers.values()]
    return PruneReport(
        method=method,
        target=target,
        layers=len(weights),
        weights_in_scope=sum(w.numel() for w in weights),
        zeros_in_scope=sum(int((w == 0).sum()) for w in weights),
    )


@prune_model.register(NoPruningConfig)
def _no_pruning(config: NoPruningConfig, model: nn.Module, amount: float) -> PruneReport:
    return _report(config.name, 0.0, block_linears(model))


@prune_model.register(MagnitudePruningConfig)
@torch.no_grad()
def _l1_unstructured(
    config: MagnitudePruningConfig, model: nn.Module, amount: float
) -> PruneReport:
    layers = block_linears(model)
    if amount > 0:
        if config.per_layer:
            for layer in layers.values():
                torch_prune.l1_unstructured(layer, "weight", amount=amount)
        else:
            torch_prune.global_unstructured(
                [(layer, "weight") for layer in layers.values()],
                pruning_method=torch_prune.L1Unstructured,
                amount=amount,
            )
        for layer in layers.values():
            torch_prune.remove(layer, "weight")
    return _report(config.name, amount, layers)
