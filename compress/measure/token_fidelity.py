"""How far a compressed causal LM's next-token distributions moved from its baseline's, position
by position (what llama.cpp's ``--kl-divergence`` reports, here paired with the sweep's
statistics): perplexity alone hides it, as two models of equal perplexity can disagree on many
next tokens.

At each scored position, with P the baseline's next-token distribution and Q the compressed
model's:

- ``kl``: KL(P || Q) = sum_v P(v) (log P(v) - log Q(v)), in nats: the divergence of the
  compressed distribution from the baseline's (0 for identical logits, exactly);
- ``top1``: whether both models' most likely next token is the same;
- ``prob_delta``: Q(reference token) - P(reference token), the change of the probability of
  the token the text actually continues with.
"""

from __future__ import annotations

import numpy as np
import torch

# Positions of a window compared at once: bounds the float64 work to a few vocab-sized rows.
_CHUNK = 128


def position_fidelity(
    logits: torch.Tensor, reference_logits: torch.Tensor, targets: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per position (rows of the ``(positions, vocab)`` logits): ``kl``, ``top1`` and
    ``prob_delta`` of ``logits`` (compressed) against ``reference_logits`` (baseline) for the
    reference tokens ``targets``. Computed in float64; a KL that rounds below zero is 0."""
    if logits.shape != reference_logits.shape or logits.shape[0] != len(targets):
        raise ValueError(
            f"logits {tuple(logits.shape)}, reference {tuple(reference_logits.shape)} and "
            f"{len(targets)} targets do not match"
        )
    parts: dict[str, list[torch.Tensor]] = {"kl": [], "top1": [], "prob_delta": []}
    for start in range(0, len(targets), _CHUNK):
        rows = slice(start, start + _CHUNK)
        log_q = torch.log_softmax(logits[rows].double(), -1)
        log_p = torch.log_softmax(reference_logits[rows].double(), -1)
        kl = (log_p.exp() * (log_p - log_q)).sum(-1).clamp_min(0.0)
        top1 = logits[rows].argmax(-1) == reference_logits[rows].argmax(-1)
        index = targets[rows].unsqueeze(-1)
        delta = log_q.gather(-1, index).exp() - log_p.gather(-1, index).exp()
        for name, value in (("kl", kl), ("top1", top1), ("prob_delta", delta.squeeze(-1))):
            parts[name].append(value)
    return {name: torch.cat(values) for name, values in parts.items()}


class FidelityTotals:
    """Per-window sums of :func:`position_fidelity` (the items of the block intervals) and
    every position's KL (for its median and tail)."""

    def __init__(self) -> None:
        self.window_kl: list[float] = []
        self.window_top1: list[int] = []
        self.window_prob_delta: list[float] = []
        self._kl: list[np.ndarray] = []

    def add(self, figures: dict[str, torch.Tensor]) -> None:
        self.window_kl.append(float(figures["kl"].sum()))
        self.window_top1.append(int(figures["top1"].sum()))
        self.window_prob_delta.append(float(figures["prob_delta"].sum()))
        self._kl.append(figures["kl"].numpy())

    def summary(self) -> dict:
        """Quality figures of the compressed model: KL mean, median and 99th percentile (nats
        per token), top-1 agreement and the mean change of the reference token's
        probability, and the per-window sums (``window_*``)."""
        kl = np.concatenate(self._kl)
        return {
            "kl_divergence": float(kl.mean()),
            "kl_divergence_median": float(np.median(kl)),
            "kl_divergence_p99": float(np.quantile(kl, 0.99)),
            "top1_agreement": sum(self.window_top1) / len(kl),
            "ref_prob_delta": sum(self.window_prob_delta) / len(kl),
            "window_kl": self.window_kl,
            "window_top1": self.window_top1,
            "window_prob_delta": self.window_prob_delta,
        }
