"""Surgery on the blocks of every family: keeping every head and neuron changes nothing, and
keeping some computes exactly what the whole model computes with the others masked out (a
head's or neuron's contribution zeroed where it enters the output or down projection), the
fused projections (GPT-2's c_attn, Phi-3's qkv_proj and gate_up_proj, ModernBERT's Wqkv and
Wi) included."""

from __future__ import annotations

import pytest
import torch

from compress.models.families import FAMILIES, BlockLayout
from compress.models.layers import transformer_blocks, weight_rows
from compress.pruning.surgery import (
    describe_heads_in_config,
    ffn_width,
    head_count,
    head_size,
    keep_blocks,
    keep_heads,
    keep_neurons,
    kv_head_count,
    layout_of,
)
from tests.compress.tiny import tiny_inputs, tiny_model

MODEL_TYPES = [family.model_types[0] for family in FAMILIES]


def _logits(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_keeping_everything_changes_nothing(model_type):
    model, reference, inputs = (
        tiny_model(model_type),
        tiny_model(model_type),
        tiny_inputs(model_type),
    )
    for block in transformer_blocks(model):
        keep_heads(block, range(head_count(block)))
        keep_neurons(block, range(ffn_width(block)))
    torch.testing.assert_close(_logits(model, inputs), _logits(reference, inputs), rtol=0, atol=0)


def _mask(block: torch.nn.Module, path: str, columns: torch.Tensor) -> None:
    with torch.no_grad():
        weight_rows(block.get_submodule(path))[:, columns] = 0


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_kept_heads_and_neurons_compute_the_masked_model(model_type):
    """Heads 0 and 2 of 4 (one per key/value group where there are 2) and the even neurons."""
    model, reference, inputs = (
        tiny_model(model_type),
        tiny_model(model_type),
        tiny_inputs(model_type),
    )
    for block, whole in zip(transformer_blocks(model), transformer_blocks(reference), strict=True):
        size, width = head_size(block), ffn_width(block)
        layout: BlockLayout = layout_of(block)
        _mask(whole, layout.output, torch.cat([torch.arange(h * size, (h + 1) * size)
                                               for h in (1, 3)]))  # fmt: skip
        _mask(whole, layout.down, torch.arange(1, width, 2))
        keep_heads(block, [0, 2])
        keep_neurons(block, range(0, width, 2))
        assert (head_count(block), kv_head_count(block), ffn_width(block)) == (2, 2, width // 2)
    describe_heads_in_config(model)  # Phi-3's attention reads its head count from the config
    torch.testing.assert_close(_logits(model, inputs), _logits(reference, inputs))


@pytest.mark.parametrize("model_type", ["modernbert", "bert"])
def test_a_first_block_built_unlike_the_others_stays_first(model_type):
    model = tiny_model(model_type)
    if model_type == "modernbert":  # its block 0 has no attention norm
        with pytest.raises(ValueError, match="must stay first, accepted: prune_method.drop=top"):
            keep_blocks(model, [1])
    else:
        keep_blocks(model, [1])
        assert model.config.num_hidden_layers == 1
