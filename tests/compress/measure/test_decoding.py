"""Timed generation: speculative decoding reproduces greedy output, and the counts behind
the acceptance rate, per-token latencies and KV-cache bytes are right."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from compress.measure.decoding import (
    DraftCounter,
    Generation,
    acceptance_rate,
    generation_memory,
    generation_stats,
    timed_generate,
)
from compress.pipeline.outcomes import timing_intervals, timing_rounds
from tests.fixtures.decoders import tiny_llama

NEW = 6


def _prompt(batch_size: int = 1, length: int = 10) -> dict[str, torch.Tensor]:
    ids = torch.randint(5, 30000, (batch_size, length), generator=torch.Generator().manual_seed(3))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _greedy(model, inputs, **kwargs) -> list[int]:
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=NEW, min_new_tokens=NEW,
                                do_sample=False, pad_token_id=0, **kwargs)  # fmt: skip
    return output[0, inputs["input_ids"].shape[1] :].tolist()


def test_the_model_as_its_own_assistant_reproduces_greedy_output():
    model, inputs = tiny_llama(), _prompt()
    assert _greedy(model, inputs, assistant_model=copy.deepcopy(model)) == _greedy(model, inputs)


def test_a_model_drafting_for_itself_has_every_draft_accepted():
    model, draft = tiny_llama(), tiny_llama()
    counter = DraftCounter(draft)
    run = timed_generate(model, _prompt(), NEW, assistant_model=draft, pad_token_id=0)
    counter.remove()
    assert sum(run.chunk_sizes) == NEW and max(run.chunk_sizes) > 1
    assert counter.drafted > 0
    assert acceptance_rate([run], counter.drafted) == 1.0


def test_a_different_draft_is_partly_rejected_yet_the_output_stays_greedy():
    model, draft, inputs = tiny_llama(), tiny_llama(seed=1), _prompt()
    counter = DraftCounter(draft)
    run = timed_generate(model, inputs, NEW, assistant_model=draft, pad_token_id=0)
    counter.remove()
    assert acceptance_rate([run], counter.drafted) < 1.0
    assert _greedy(model, inputs, assistant_model=draft) == _greedy(model, inputs)


def test_standard_decoding_times_every_token_after_the_first():
    run = timed_generate(tiny_llama(), _prompt(batch_size=2), NEW, pad_token_id=0)
    assert run.chunk_sizes == [1] * NEW
    assert len(run.token_ms) == NEW - 1
    assert run.total_ms >= run.ttft_ms + sum(run.token_ms) * 0.999


def test_kv_cache_bytes_count_grouped_heads_once():
    model = tiny_llama()
    memory = generation_memory(model, _prompt(batch_size=3, length=10), NEW, pad_token_id=0)
    layers, kv_heads, head_dim, positions = 2, 2, 8, 10 + NEW - 1
    assert memory["kv_cache_bytes"] == 2 * layers * kv_heads * head_dim * positions * 3 * 4
    assert memory["prompt_tokens"] == 10


def test_decode_latency_has_one_sample_per_generate_call():
    """30 calls of 31 tokens are 30 independent samples, not 930: each call's median token
    time, and the paired interval's n is the number of calls."""
    rng = np.random.default_rng(0)
    runs = [
        Generation(ttft_ms=5.0, total_ms=100.0, token_ms=list(rng.gamma(4, 1, 31) + call))
        for call in range(30)
    ]
    stats = generation_stats(runs, batch_size=1, new_tokens=32)
    assert stats["samples_ms"] == pytest.approx([np.median(r.token_ms) for r in runs], abs=1e-4)
    assert stats["p50_ms"] == pytest.approx(np.median([np.median(r.token_ms) for r in runs]))
    tokens = [ms for run in runs for ms in run.token_ms]
    assert stats["decode_ms_p90"] == pytest.approx(np.percentile(tokens, 90))
    other = generation_stats(runs[::-1], batch_size=1, new_tokens=32)
    rounds = timing_rounds(stats, other)
    assert len(rounds) == 30
    assert timing_intervals(rounds, seed=0)["latency_p50"]["n"] == 30
