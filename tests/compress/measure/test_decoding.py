"""Timed generation: speculative decoding reproduces greedy output, and the counts behind
the acceptance rate, per-token latencies and KV-cache bytes are right."""

from __future__ import annotations

import copy

import torch

from compress.measure.decoding import (
    DraftCounter,
    acceptance_rate,
    generation_memory,
    timed_generate,
)
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
