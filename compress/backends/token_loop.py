"""The token-by-token loop of ``generate`` for runtimes that drive their own decode step (the
compiled backend's greedy loop, llama.cpp): transformers' rules for what a caller of
``generate`` sees, kept in one place."""

from __future__ import annotations

from collections.abc import Callable, Collection

import torch


class NoStreamer:
    """What a ``generate`` call without a streamer streams to."""

    def put(self, value: torch.Tensor) -> None:
        pass

    def end(self) -> None:
        pass


def new_tokens(
    logits: torch.Tensor,
    next_logits: Callable[[int, torch.Tensor], torch.Tensor],
    max_new_tokens: int,
    min_new_tokens: int,
    eos: Collection[int],
    pad: int,
    streamer,
    choose: Callable[[torch.Tensor], torch.Tensor] = lambda logits: logits.argmax(-1),
) -> torch.Tensor:
    """Up to ``max_new_tokens`` tokens per row (``[rows, new]``), from the prompt's last
    ``logits``: ``choose`` picks each step's tokens, ``next_logits(step, tokens)`` feeds them
    to the model. End of sequence (``eos``) is suppressed before ``min_new_tokens``; a finished
    row gets ``pad`` until every row has finished. Each step's tokens go to ``streamer`` (a
    :class:`NoStreamer` where the caller has none), then its ``end``."""
    eos_ids = torch.tensor(sorted(eos), dtype=torch.long)
    finished = torch.zeros(logits.shape[0], dtype=torch.bool)
    new: list[torch.Tensor] = []
    for step in range(max_new_tokens):
        if step < min_new_tokens:
            logits[:, eos_ids] = -torch.inf
        new.append(choose(logits).masked_fill(finished, pad))
        streamer.put(new[-1])
        finished |= torch.isin(new[-1], eos_ids)
        if bool(finished.all()) or step == max_new_tokens - 1:
            break
        logits = next_logits(step, new[-1])
    streamer.end()
    return torch.stack(new, dim=1)
