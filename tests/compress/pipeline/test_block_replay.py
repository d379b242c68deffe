"""Replaying a variant's unchanged leading blocks changes no score: the ranking of every
family's Linears equals the one that runs every block of every variant, and the blocks before
the quantized Linear are the ones replayed."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from compress.config.quant import Int8DynamicConfig
from compress.infra.context import CompressionContext
from compress.pipeline import mixed_precision
from compress.pipeline.block_replay import BlockReplay
from compress.pipeline.sensitivity import sensitivity
from tests.compress.tiny import CONFIGS, tiny_inputs, tiny_model


def _context(model_type: str) -> CompressionContext:
    batches = [tiny_inputs(model_type, batch=3, length=10, seed=s) for s in (1, 2)]
    return CompressionContext(calibration=lambda n: batches[:n])


def _rank_running_every_block(model, quant, context) -> list[float]:
    """The ranking's scores with no block replayed: a replay that never replaces anything."""
    batches = list(context.calibration_batches(2, "test"))
    idle = BlockReplay(model)
    with torch.inference_mode():
        reference = [mixed_precision._log_probs(model, batch) for batch in batches]
    score = lambda variant: mixed_precision._mean_kl(variant, batches, reference, idle)  # noqa: E731
    plain = dataclasses.replace(quant, skip=[], keep_float=0)
    groups = mixed_precision.linear_groups(model, "linear")
    table = sensitivity(model, plain, groups, score, context)
    return dict(zip(table["group"], table["harm"], strict=True))


@pytest.mark.parametrize("model_type", sorted(CONFIGS))
def test_replayed_ranking_equals_the_full_one(model_type, monkeypatch):
    model, context = tiny_model(model_type, blocks=2), _context(model_type)
    replaced, replay_into = [], BlockReplay.replay_into

    def counted(self, variant):
        blocks = replay_into(self, variant)
        replaced.append(len(blocks))
        return blocks

    monkeypatch.setattr(BlockReplay, "replay_into", counted)
    replayed = mixed_precision.rank_linears(model, Int8DynamicConfig(), context)
    # the head's variant replays both blocks; GPT-2's Conv1Ds become Linears in every variant
    assert max(replaced) == (0 if model_type == "gpt2" else 2)
    full = _rank_running_every_block(model, Int8DynamicConfig(), context)
    assert dict(zip(replayed["group"], replayed["harm"], strict=True)) == pytest.approx(
        full, rel=1e-6, abs=1e-9
    )


def test_the_blocks_before_the_changed_linear_are_replayed():
    model, context = tiny_model("llama", blocks=3), _context("llama")
    replay = BlockReplay(model)
    with torch.inference_mode(), replay.recording():
        for batch in context.calibration_batches(2, "test"):
            replay.next_batch()
            model(**batch, use_cache=False)
    changed = model.__class__(model.config).eval()
    changed.load_state_dict(model.state_dict())
    with torch.no_grad():
        changed.model.layers[2].mlp.up_proj.weight.mul_(2)
    assert replay.replay_into(changed) == ["model.layers.0", "model.layers.1"]
    untouched = model.__class__(model.config).eval()
    untouched.load_state_dict(model.state_dict())
    with torch.no_grad():
        untouched.model.embed_tokens.weight.add_(1)  # runs first: nothing can be replayed
    assert replay.replay_into(untouched) == []
