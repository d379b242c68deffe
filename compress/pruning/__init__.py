"""Pruning methods, one registered handler per config dataclass: ``prune_model(config, model,
amount, context)`` prunes in place and returns a :class:`PruneReport`."""

from compress.pruning import structured, unstructured  # noqa: F401  (each registers handlers)
from compress.pruning.base import PruneReport, prune_model

__all__ = ["PruneReport", "prune_model"]
