"""``model``: where the pretrained weights come from."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING


@dataclass
class ModelConfig:
    """Where the pretrained weights come from.

    ``name_or_path`` is anything ``from_pretrained`` accepts (a hub name such as
    ``bert-base-uncased`` for users with hub access, or a folder), or ``pkg:<package>/<dir>``
    for weights shipped inside an installed Python package (the offline defaults).
    """

    name: str = MISSING
    name_or_path: str = MISSING
    # The model already has a trained head for the task's labels: use it as it is, no
    # fine-tuning (true), train a fresh head (false), or decide by its id2label (null).
    finetuned: bool | None = None
