"""Which modules a quantization level converts: ``quant.skip`` keeps some of them float
(mixed precision), by glob or regular expression on their qualified names."""

from __future__ import annotations

import fnmatch
import re

from torch import nn


def _matches(name: str, pattern: str) -> bool:
    """A glob (``*.down_proj``) or a regular expression matching the whole name; a pattern
    that is no valid expression is a glob only."""
    if fnmatch.fnmatchcase(name, pattern):
        return True
    try:
        return re.fullmatch(pattern, name) is not None
    except re.error:
        return False


def is_skipped(name: str, patterns: list[str]) -> bool:
    """Whether the module ``name`` or a module containing it matches one of ``patterns``
    (a name itself first: the sensitivity scan skips every Linear but one by name)."""
    parts = name.split(".")
    prefixes = [".".join(parts[: i + 1]) for i in range(len(parts))]
    if not set(prefixes).isdisjoint(patterns):
        return True
    return any(_matches(prefix, p) for prefix in prefixes for p in patterns)


def check_patterns(model: nn.Module, patterns: list[str]) -> None:
    """Refuse a pattern that names no module: a misspelt name would otherwise quantize the
    very module it was meant to keep float, silently."""
    names = [name for name, _ in model.named_modules() if name]
    known = set(names)
    for pattern in patterns:
        if pattern not in known and not any(_matches(name, pattern) for name in names):
            examples = ", ".join(n for n in names if isinstance(model.get_submodule(n), nn.Linear))
            raise ValueError(
                f"quant.skip pattern {pattern!r} matches no module of {type(model).__name__}; "
                f"its Linears: {examples[:300]}"
            )


def select(modules: dict[str, nn.Module], patterns: list[str]) -> dict[str, nn.Module]:
    """``modules`` without those ``patterns`` keep float."""
    return {name: m for name, m in modules.items() if not is_skipped(name, patterns)}


def skip_note(total: int, kept: int, patterns: list[str]) -> list[str]:
    """The note a report carries when ``quant.skip`` kept modules float."""
    if not patterns:
        return []
    return [f"quant.skip={patterns} kept {total - kept} of {total} modules float"]
