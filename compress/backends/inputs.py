"""What an exporting backend traces a model on: the sample inputs its forward names, and a
one-line refusal, before any work, of a family the backend does not export."""

from __future__ import annotations

import inspect

from torch import nn

from compress.config.errors import ConfigError
from compress.infra.context import Batch
from compress.models.families import family_problems


def accepted_inputs(model: nn.Module, sample: Batch) -> Batch:
    """The inputs of ``sample`` that ``model``'s forward names: a BERT tokenizer gives
    ``token_type_ids``, which DistilBERT, ModernBERT and MPNet do not take (an exported
    graph cannot take an input its model ignores)."""
    names = inspect.signature(model.forward).parameters
    return {name: value for name, value in sample.items() if name in names}


def refuse_family(model: nn.Module, backend: str) -> None:
    """Raise the one-line refusal of ``compress.models.families`` for this model's family on
    ``backend``, if there is one."""
    problems = family_problems(getattr(model.config, "model_type", None), backend=backend)
    if problems:
        problem, _, accepted = problems[0].partition(", accepted: ")
        raise ConfigError(problem, accepted)
