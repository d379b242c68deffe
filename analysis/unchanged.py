"""Recipes that change nothing (nothing pruned, fp32, no recovery, the eager torch backend,
standard decoding): the baseline under another name, labelled so and never recommended."""

from __future__ import annotations

import pandas as pd

from analysis.load import level_label

# The level of each further factor at which it changes nothing; a factor absent from the
# records (a task without decoding) changes nothing either.
IDENTITY = {"quant": "fp32", "recovery": "none", "backend": "torch", "decoding": "standard"}


def _level(ok: pd.DataFrame, key: str) -> pd.Series | None:
    """The factor's level per job: the record's ``factors.<key>``, else its override column."""
    for column in (f"factors.{key}", key):
        if column in ok:
            return ok[column]
    return None


def _is(values: pd.Series, level: str) -> pd.Series:
    return values.map(lambda v: pd.notna(v) and level_label(v) == level)


def unchanged(ok: pd.DataFrame) -> pd.Series:
    """Per job: whether its compressed model is the baseline model run the same way. False
    where the records do not say (no prune or quant level)."""
    prune, method, quant = (_level(ok, key) for key in ("prune", "prune_method", "quant"))
    if quant is None or (prune is None and method is None):
        return pd.Series(False, index=ok.index)
    removed_nothing = pd.Series(False, index=ok.index)
    if prune is not None:
        removed_nothing |= pd.to_numeric(prune, errors="coerce").eq(0)
    if method is not None:
        removed_nothing |= _is(method, "none")
    same = removed_nothing & _is(quant, IDENTITY["quant"])
    for key in ("recovery", "backend", "decoding"):
        values = _level(ok, key)
        if values is not None:
            same &= values.isna() | _is(values, IDENTITY[key])
    return same
