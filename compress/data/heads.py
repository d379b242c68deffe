"""Whether a model already has a trained head for the data's classes, decided before any
training: ``model.finetuned=true`` says so (its label names must then be the data's),
``false`` asks for a fresh head, and ``null`` decides by the model's ``id2label``: a head
whose label names are exactly the data's classes is used as it is."""

from __future__ import annotations

import re
from dataclasses import dataclass

from compress.data.tables import DataError

# transformers' names for a head nobody named: LABEL_0, LABEL_1, ...
_GENERIC = re.compile(r"LABEL_\d+")


@dataclass(frozen=True)
class HeadChoice:
    finetuned: bool
    labels: list[str]  # class names in the id order the model (or the fresh head) uses
    reason: str


def model_labels(model_config: dict) -> list[str] | None:
    """The model's class names in id order, or None for an untrained or unnamed head."""
    id2label = model_config.get("id2label") or {}
    names = [str(id2label[k]) for k in sorted(id2label, key=int)]
    if not names or all(_GENERIC.fullmatch(name) for name in names):
        return None
    return names


def _listed(names: list[str]) -> str:
    return "{" + ", ".join(sorted(names)) + "}"


def _in_data_names(names: list[str] | None, data_labels: list[str]) -> list[str] | None:
    """The model's classes (in its id order) under the data's names, matched without regard
    to case (a head saying POSITIVE serves data saying positive); None if they differ."""
    by_key = {label.casefold(): label for label in data_labels}
    if names is None or sorted(n.casefold() for n in names) != sorted(by_key):
        return None
    return [by_key[name.casefold()] for name in names]


def choose_head(model_config: dict, data_labels: list[str], finetuned: bool | None) -> HeadChoice:
    names = model_labels(model_config)
    ordered = _in_data_names(names, data_labels)
    matches = ordered is not None
    if finetuned is True and not matches:
        raise DataError(
            f"model.finetuned=true but the model's labels {_listed(names or [])} are not the "
            f"data's {_listed(data_labels)}",
            "a model whose id2label names the data's classes, or model.finetuned=false",
        )
    if finetuned is False or not matches:
        reason = (
            "model.finetuned=false" if finetuned is False else "no trained head for these labels"
        )
        return HeadChoice(False, data_labels, f"fresh head fine-tuned ({reason})")
    how = (
        "model.finetuned=true"
        if finetuned
        else "detected: the model's id2label names the data's classes"
    )
    return HeadChoice(True, ordered, f"the model's own head, not fine-tuned ({how})")
