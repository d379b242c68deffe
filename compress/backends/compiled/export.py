"""Capture a transformers model as an ``ExportedProgram`` whose batch and sequence length
stay dynamic, and count what it weighs."""

from __future__ import annotations

import torch
from torch import nn

Inputs = dict[str, torch.Tensor]


class CaptureError(ValueError):
    """The model cannot be captured whole: a graph break, reported instead of run around."""


class Logits(nn.Module):
    """The model's logits alone: a saved program's outputs must be plain tensors (a
    transformers output class cannot be deserialized in a fresh process)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        present = {"attention_mask": attention_mask, "token_type_ids": token_type_ids}
        kwargs = {name: value for name, value in present.items() if value is not None}
        return self.model(input_ids=input_ids, **kwargs).logits


def export_program(
    model: nn.Module, sample: Inputs, positions: int
) -> torch.export.ExportedProgram:
    """Non-strict export (Python control flow of transformers traced as it runs), with the
    batch size and sequence length free (the length up to the model's ``positions``). The
    model must be in eval mode already (an exported graph refuses ``.eval()``)."""
    batch = torch.export.Dim("batch", max=4096)
    length = torch.export.Dim("sequence", max=positions)
    dynamic = {name: {0: batch, 1: length} for name in sample}
    return export_whole(model, kwargs=sample, dynamic_shapes=dynamic)


def export_whole(model: nn.Module, args: tuple = (), **options) -> torch.export.ExportedProgram:
    """Non-strict ``torch.export`` of ``model`` (``options`` as ``torch.export.export`` takes
    them), refused with :class:`CaptureError` where it would break into pieces."""
    try:
        with torch.no_grad():
            return torch.export.export(model, args, strict=False, **options)
    except (torch._dynamo.exc.UserError, RuntimeError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise CaptureError(
            f"torch.export cannot capture {type(model).__name__} as one graph (it would break "
            f"into pieces run eagerly): {reason}"
        ) from error


def program_size(program: torch.export.ExportedProgram) -> dict[str, int]:
    """Stored elements, non-zeros and bytes of the program's weights and constants."""
    tensors = {**program.state_dict, **program.constants}
    seen, params, nonzero, weight_bytes = set(), 0, 0, 0
    for tensor in tensors.values():
        if not isinstance(tensor, torch.Tensor) or tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        params += tensor.numel()
        nonzero += int(torch.count_nonzero(tensor))
        weight_bytes += tensor.numel() * tensor.element_size()
    return {"params": params, "nonzero_params": nonzero, "weight_bytes": weight_bytes}
