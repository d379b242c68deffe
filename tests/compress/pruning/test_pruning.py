"""Pruning on tiny models: the requested fraction is removed exactly and permanently."""

from __future__ import annotations

import pytest
import torch

from compress.config.prune import MagnitudePruningConfig, NoPruningConfig
from compress.infra.context import CompressionContext
from compress.models.layers import block_linears
from compress.pruning import prune_model
from tests.conftest import tiny_bert


def _zero_fraction(weight: torch.Tensor) -> float:
    return float((weight == 0).sum()) / weight.numel()


def test_block_linears_are_the_six_linears_of_each_block():
    names = list(block_linears(tiny_bert()))
    assert len(names) == 2 * 6
    assert all(".encoder.layer." in name for name in names)


@pytest.mark.parametrize("amount", [0.3, 0.5, 0.9])
def test_per_layer_l1_removes_the_fraction_from_every_layer(amount):
    model = tiny_bert()
    report = prune_model(
        MagnitudePruningConfig(name="l1", per_layer=True), model, amount, CompressionContext()
    )
    for layer in block_linears(model).values():
        assert _zero_fraction(layer.weight) == pytest.approx(amount, abs=1 / layer.weight.numel())
    assert report.zero_fraction == pytest.approx(amount, abs=1e-3)


def test_global_l1_removes_the_smallest_weights_overall():
    model = tiny_bert()
    before = torch.cat([w.weight.detach().abs().flatten() for w in block_linears(model).values()])
    report = prune_model(MagnitudePruningConfig(name="global_l1"), model, 0.5, CompressionContext())
    after = torch.cat([w.weight.detach().abs().flatten() for w in block_linears(model).values()])
    threshold = before.kthvalue(int(round(0.5 * before.numel()))).values
    assert report.zeros_in_scope == int(round(0.5 * before.numel()))
    assert torch.all(after[before > threshold] > 0)
    assert torch.all(after[before < threshold] == 0)


def test_pruning_is_permanent_and_leaves_no_masks():
    model = tiny_bert()
    prune_model(MagnitudePruningConfig(name="global_l1"), model, 0.5, CompressionContext())
    names = [name for name, _ in model.named_buffers()] + [n for n, _ in model.named_parameters()]
    assert not any(name.endswith(("_mask", "_orig")) for name in names)


def test_pruned_model_equals_the_masked_reference(tiny_inputs):
    model, reference = tiny_bert(), tiny_bert()
    prune_model(MagnitudePruningConfig(name="l1", per_layer=True), model, 0.5, CompressionContext())
    with torch.no_grad():
        for name, layer in block_linears(reference).items():
            layer.weight.mul_(block_linears(model)[name].weight != 0)
        assert torch.equal(model(**tiny_inputs).logits, reference(**tiny_inputs).logits)


def test_none_and_zero_amount_change_nothing(tiny_inputs):
    reference = tiny_bert()
    for config, amount in ((NoPruningConfig(), 0.7), (MagnitudePruningConfig(name="l1"), 0.0)):
        model = tiny_bert()
        report = prune_model(config, model, amount, CompressionContext())
        assert report.zeros_in_scope == 0
        with torch.no_grad():
            assert torch.equal(model(**tiny_inputs).logits, reference(**tiny_inputs).logits)
