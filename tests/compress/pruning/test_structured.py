"""Structured pruning removes exactly the requested heads, neurons and blocks, and the smaller
model computes exactly what the dense model computes with those units masked out."""

from __future__ import annotations

import pytest
import torch
from transformers import MPNetConfig, MPNetForSequenceClassification

from compress.config.errors import ConfigError
from compress.config.prune import (
    HeadAndNeuronPruningConfig,
    HeadPruningConfig,
    LayerPruningConfig,
    MagnitudePruningConfig,
    NeuronPruningConfig,
    RandomPruningConfig,
    SemiStructuredPruningConfig,
)
from compress.infra.context import CompressionContext
from compress.models.layers import block_linears, transformer_blocks
from compress.pruning import prune_model
from compress.pruning.surgery import head_count, layout_of
from tests.conftest import tiny_bert


def tiny_mpnet() -> MPNetForSequenceClassification:
    torch.manual_seed(0)
    config = MPNetConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=64, vocab_size=30527, num_labels=2)  # fmt: skip
    return MPNetForSequenceClassification(config).eval()


def _mask_heads(model, kept: dict[int, list[int]]) -> None:
    """Zero the output-projection columns of every head not kept: the head's contribution."""
    for index, block in enumerate(transformer_blocks(model)):
        output = block.get_submodule(layout_of(block).output).weight
        size = output.shape[1] // head_count(block)
        with torch.no_grad():
            for head in set(range(head_count(block))) - set(kept[index]):
                output[:, head * size : (head + 1) * size] = 0


def _logits(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits


@pytest.mark.parametrize("build", [tiny_bert, tiny_mpnet])
def test_head_pruning_equals_masking_the_removed_heads(build, tiny_inputs):
    model, reference = build(), build()
    report = prune_model(HeadPruningConfig(name="heads"), model, 0.5, CompressionContext())
    assert (report.units_total, report.units_removed) == (8, 4)
    kept = {i: b.get_submodule(layout_of(b).attention)._compress_heads
            for i, b in enumerate(transformer_blocks(model))}  # fmt: skip
    assert all(len(heads) == 2 for heads in kept.values())
    _mask_heads(reference, kept)
    torch.testing.assert_close(_logits(model, tiny_inputs), _logits(reference, tiny_inputs))
    assert report.params_after < report.params_before


def test_neuron_pruning_equals_masking_the_removed_neurons(tiny_inputs):
    model, reference = tiny_bert(), tiny_bert()
    report = prune_model(NeuronPruningConfig(name="neurons"), model, 0.25, CompressionContext())
    assert (report.units_total, report.units_removed) == (128, 32)
    assert model.config.intermediate_size == 48
    for block, ref_block in zip(
        transformer_blocks(model), transformer_blocks(reference), strict=True
    ):
        norms = ref_block.intermediate.dense.weight.pow(2).sum(1)
        removed = norms.argsort()[:16]
        with torch.no_grad():
            ref_block.output.dense.weight[:, removed] = 0
        assert block.intermediate.dense.out_features == 48
    torch.testing.assert_close(_logits(model, tiny_inputs), _logits(reference, tiny_inputs))


def test_layer_pruning_drops_the_top_blocks_and_updates_the_config():
    model = tiny_bert(num_hidden_layers=4)
    first_two = [b.intermediate.dense.weight.clone() for b in transformer_blocks(model)[:2]]
    report = prune_model(LayerPruningConfig(name="layers"), model, 0.5, CompressionContext())
    assert model.config.num_hidden_layers == 2 == len(transformer_blocks(model))
    for block, weight in zip(transformer_blocks(model), first_two, strict=True):
        assert torch.equal(block.intermediate.dense.weight, weight)
    assert report.params_removed_fraction > 0


def test_gradient_importance_removes_a_head_that_does_nothing_first(tiny_inputs):
    model = tiny_bert()
    _mask_heads(model, {0: [0, 1, 2], 1: [0, 1, 2]})  # head 3 of each block contributes nothing
    batches = [{**tiny_inputs, "labels": torch.tensor([0, 1, 0, 1])}] * 2
    context = CompressionContext(calibration=lambda n: batches[:n])
    config = HeadPruningConfig(name="heads_gradient", importance="gradient", calibration_batches=2)
    prune_model(config, model, 0.25, context)
    for block in transformer_blocks(model):
        assert block.get_submodule(layout_of(block).attention)._compress_heads == [0, 1, 2]
    assert all(p.requires_grad for p in model.parameters())


def test_combined_heads_and_neurons_narrow_every_block():
    model = tiny_bert()
    report = prune_model(
        HeadAndNeuronPruningConfig(name="heads_neurons"), model, 0.5, CompressionContext()
    )
    assert report.units_removed == 4 + 64
    assert model.config.intermediate_size == 32
    assert all(head_count(b) == 2 for b in transformer_blocks(model))


@pytest.mark.parametrize(
    ("config", "amount", "message"),
    [
        (
            HeadPruningConfig(name="heads"),
            0.97,
            "prune=0.97 removes 4 of 4 attention heads per block",
        ),
        (LayerPruningConfig(name="layers"), 0.9, "prune=0.9 removes 2 of 2 blocks"),
    ],
)
def test_impossible_amounts_fail_with_one_line(config, amount, message):
    with pytest.raises(ConfigError, match=message) as caught:
        prune_model(config, tiny_bert(), amount, CompressionContext())
    assert "\n" not in str(caught.value)


def test_two_to_four_leaves_two_zeros_in_every_group_of_four():
    model = tiny_bert()
    report = prune_model(SemiStructuredPruningConfig(name="2to4"), model, 0.5, CompressionContext())
    for layer in block_linears(model).values():
        groups = layer.weight.view(layer.weight.shape[0], -1, 4)
        assert torch.all((groups == 0).sum(-1) == 2)
    assert report.zero_fraction == 0.5 and report.notes


def test_random_pruning_is_exact_seeded_and_unlike_magnitude():
    def zero_masks(config):
        model = tiny_bert()
        prune_model(config, model, 0.5, CompressionContext())
        return torch.cat([(w.weight == 0).flatten() for w in block_linears(model).values()])

    random_a = zero_masks(RandomPruningConfig(name="random", seed=3))
    random_b = zero_masks(RandomPruningConfig(name="random", seed=3))
    magnitude = zero_masks(MagnitudePruningConfig(name="global_l1"))
    assert torch.equal(random_a, random_b)
    assert int(random_a.sum()) == int(magnitude.sum()) == random_a.numel() // 2
    assert (random_a & magnitude).float().mean() < 0.4


@pytest.mark.parametrize("scope", ["attention", "ffn"])
def test_scope_limits_which_layers_lose_weights(scope):
    model = tiny_bert()
    prune_model(
        MagnitudePruningConfig(name="l1", scope=scope, per_layer=True),
        model,
        0.5,
        CompressionContext(),
    )
    for name, layer in block_linears(model).items():
        in_scope = ("attention" in name) == (scope == "attention")
        assert bool((layer.weight == 0).any()) == in_scope
