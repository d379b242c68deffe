"""Token-level perplexity of a causal LM with strided sliding windows, as in the transformers
perplexity guide: each window holds up to ``window`` tokens and starts ``stride`` tokens after
the previous one; only the tokens past the previous window's end are scored, so every token
but the first is scored exactly once, with at least ``window - stride`` tokens of context
(fewer only at the very start of the text).

Unlike the guide, which weights each window's mean loss by an approximate token count, the
negative log-likelihoods are summed token by token, so the result is exactly
``exp(total NLL / tokens scored)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from compress.measure.token_fidelity import FidelityTotals, position_fidelity


@dataclass(frozen=True)
class Window:
    """Tokens ``[begin, end)`` go through the model; tokens ``[first_target, end)`` are scored
    (each from the logits at the position before it)."""

    begin: int
    end: int
    first_target: int


def strided_windows(length: int, window: int, stride: int) -> list[Window]:
    """The windows covering a text of ``length`` tokens; token 0 has no context and is never
    a target. ``stride < window``: a window's first token has no context inside it."""
    if not 0 < stride < window:
        raise ValueError(f"stride={stride} must be in [1, window={window})")
    windows, scored_until = [], 1
    for begin in range(0, max(length - 1, 1), stride):
        end = min(begin + window, length)
        if end > scored_until:
            windows.append(Window(begin, end, scored_until))
            scored_until = end
        if end == length:
            break
    return windows


def _scored_logits(model: nn.Module, ids: torch.Tensor, start: int) -> torch.Tensor:
    """The float32 logits that predict tokens ``start ..`` of the 1-row window ``ids``."""
    return model(input_ids=ids).logits[0].float()[start - 1 : -1]


@torch.inference_mode()
def window_nlls(
    model: nn.Module,
    input_ids: torch.Tensor,
    window: int,
    stride: int,
    reference: nn.Module | None = None,
) -> tuple[list[float], list[int], FidelityTotals | None]:
    """Summed NLL and scored-token count of each strided window: the per-item outcomes that
    paired comparisons of two models resample. With a ``reference`` model (the baseline), it
    runs on the same windows and every scored position's next-token distributions are
    compared (:mod:`compress.measure.token_fidelity`)."""
    windows = strided_windows(len(input_ids), window, stride)
    if not windows:
        raise ValueError("perplexity needs a text of at least 2 tokens")
    sums, counts = [], []
    fidelity = FidelityTotals() if reference is not None else None
    for w in windows:
        ids = input_ids[w.begin : w.end].unsqueeze(0)
        start = w.first_target - w.begin
        targets = ids[0, start:]
        predicted = _scored_logits(model, ids, start)
        sums.append(float(nn.functional.cross_entropy(predicted, targets, reduction="sum")))
        counts.append(len(targets))
        if fidelity is not None:
            baseline = _scored_logits(reference, ids, start)
            fidelity.add(position_fidelity(predicted, baseline, targets))
    return sums, counts, fidelity


def perplexity(
    model: nn.Module,
    input_ids: torch.Tensor,
    window: int,
    stride: int,
    reference: nn.Module | None = None,
) -> dict:
    """Perplexity of ``model`` on the 1-D token tensor ``input_ids``; ``window_nll`` and
    ``window_tokens`` hold each window's summed NLL and scored tokens. With a ``reference``
    model, also the token-level fidelity to it (``kl_divergence``, ``top1_agreement``,
    ``ref_prob_delta``, ... and their per-window sums ``window_kl``, ...)."""
    sums, counts, fidelity = window_nlls(model, input_ids, window, stride, reference)
    mean = sum(sums) / sum(counts)
    return {
        "perplexity": math.exp(mean),
        "nll": mean,
        "tokens": sum(counts),
        "windows": len(sums),
        "window": window,
        "stride": stride,
        "window_nll": sums,
        "window_tokens": counts,
        **(fidelity.summary() if fidelity is not None else {}),
    }
