"""What every pruning method shares: the registry, the report, and how units are counted.

Unstructured methods zero weights (the tensors keep their shape); structured methods cut
heads, neurons or blocks out of the tensors (the model really shrinks). Every handler makes
its change permanent and reports what it removed, measured on the model afterwards.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from torch import nn

from compress.infra.registry import Registry


@dataclass(frozen=True)
class PruneReport:
    method: str
    target: float
    unit: str
    units_total: int
    units_removed: int
    params_before: int
    params_after: int
    weights_in_scope: int
    zeros_in_scope: int
    structured: bool
    notes: list[str] = field(default_factory=list)

    @property
    def zero_fraction(self) -> float:
        return self.zeros_in_scope / self.weights_in_scope if self.weights_in_scope else 0.0

    @property
    def params_removed_fraction(self) -> float:
        return 1.0 - self.params_after / self.params_before

    def to_dict(self) -> dict:
        extra = {"zero_fraction": self.zero_fraction}
        return asdict(self) | extra | {"params_removed_fraction": self.params_removed_fraction}


prune_model = Registry("pruning method")


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def zeros_in(layers: dict[str, nn.Linear]) -> tuple[int, int]:
    weights = [layer.weight for layer in layers.values()]
    return sum(w.numel() for w in weights), sum(int((w == 0).sum()) for w in weights)
