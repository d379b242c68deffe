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


@torch.inference_mode()
def window_nlls(
    model: nn.Module, input_ids: torch.Tensor, window: int, stride: int
) -> tuple[list[float], list[int]]:
    """Summed NLL and scored-token count of each strided window: the per-item outcomes that
    paired comparisons of two models resample."""
    windows = strided_windows(len(input_ids), window, stride)
    if not windows:
        raise ValueError("perplexity needs a text of at least 2 tokens")
    sums, counts = [], []
    for w in windows:
        ids = input_ids[w.begin : w.end].unsqueeze(0)
        logits = model(input_ids=ids).logits[0].float()
        start = w.first_target - w.begin
        targets = ids[0, start:]
        predicted = logits[start - 1 : -1]
        sums.append(float(nn.functional.cross_entropy(predicted, targets, reduction="sum")))
        counts.append(len(targets))
    return sums, counts


def perplexity(model: nn.Module, input_ids: torch.Tensor, window: int, stride: int) -> dict:
    """Perplexity of ``model`` on the 1-D token tensor ``input_ids``; ``window_nll`` and
    ``window_tokens`` hold each window's summed NLL and scored tokens."""
    sums, counts = window_nlls(model, input_ids, window, stride)
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
    }
