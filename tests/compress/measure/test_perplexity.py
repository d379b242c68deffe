"""Perplexity by strided sliding windows: exactly exp(mean NLL), every token scored once."""

from __future__ import annotations

import math

import pytest
import torch

from compress.measure.perplexity import perplexity, strided_windows
from tests.fixtures.decoders import tiny_gpt2, tiny_llama


def _hand_nll(model, ids: torch.Tensor, context_start: list[int]) -> list[float]:
    """NLL of token t (t >= 1) given tokens context_start[t] .. t-1, one forward per token."""
    nll = []
    for t in range(1, len(ids)):
        with torch.no_grad():
            logits = model(input_ids=ids[context_start[t] : t].unsqueeze(0)).logits[0, -1]
        nll.append(-float(torch.log_softmax(logits.double(), -1)[ids[t]]))
    return nll


@pytest.mark.parametrize("build", [tiny_llama, tiny_gpt2])
def test_one_window_equals_exp_of_the_mean_nll_over_all_tokens(build, token_ids):
    model = build()
    result = perplexity(model, token_ids, window=64, stride=32)
    nll = _hand_nll(model, token_ids, [0] * len(token_ids))
    assert result["tokens"] == len(token_ids) - 1 == len(nll)
    assert result["nll"] == pytest.approx(sum(nll) / len(nll), rel=1e-5)
    assert result["perplexity"] == pytest.approx(math.exp(sum(nll) / len(nll)), rel=1e-5)


def test_strided_windows_score_each_token_with_its_own_window_context(token_ids):
    model = tiny_llama()
    window, stride = 8, 3
    context_start = [0] * len(token_ids)
    for w in strided_windows(len(token_ids), window, stride):
        for t in range(w.first_target, w.end):
            context_start[t] = w.begin
    result = perplexity(model, token_ids, window, stride)
    nll = _hand_nll(model, token_ids, context_start)
    assert result["windows"] > 1
    assert result["perplexity"] == pytest.approx(math.exp(sum(nll) / len(nll)), rel=1e-5)


@pytest.mark.parametrize(
    ("length", "window", "stride"),
    [(10, 4, 2), (10, 4, 3), (9, 3, 1), (2, 4, 2), (100, 512, 256), (1000, 64, 63), (37, 8, 5)],
)
def test_strided_windows_cover_every_token_exactly_once(length, window, stride):
    windows = strided_windows(length, window, stride)
    scored = [t for w in windows for t in range(w.first_target, w.end)]
    assert scored == list(range(1, length))
    for w in windows:
        assert w.end - w.begin <= window
        assert w.first_target - w.begin >= min(window - stride, w.first_target)
        assert w.first_target > w.begin


def test_a_window_without_context_is_refused():
    with pytest.raises(ValueError, match="stride=4 must be in"):
        strided_windows(10, 4, 4)
