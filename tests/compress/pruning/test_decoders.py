"""Structured pruning and int8 on decoder blocks: grouped key/value heads, SwiGLU neurons,
renumbered blocks, and GPT-2's Conv1D layers."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.ao.nn.quantized import dynamic as quantized_dynamic

from compress.backends import load_artifact
from compress.backends.torch.artifact import save_artifact
from compress.backends.torch.quantize import conv1d_to_linear, quantize_
from compress.config.prune import HeadPruningConfig, LayerPruningConfig, NeuronPruningConfig
from compress.config.quant import Int8DynamicConfig
from compress.infra.context import CompressionContext
from compress.pruning import prune_model
from compress.pruning.surgery import keep_heads, kv_heads_serving
from tests.fixtures.decoders import tiny_gpt2, tiny_llama


@pytest.fixture
def inputs() -> dict[str, torch.Tensor]:
    ids = torch.randint(5, 30000, (2, 12), generator=torch.Generator().manual_seed(2))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _logits(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits


def _mask_query_heads(model, kept: list[list[int]], size: int = 8) -> None:
    """Zero the output-projection columns of every query head not kept."""
    for block, heads in zip(model.model.layers, kept, strict=True):
        weight = block.self_attn.o_proj.weight
        with torch.no_grad():
            for head in set(range(weight.shape[1] // size)) - set(heads):
                weight[:, head * size : (head + 1) * size] = 0


@pytest.mark.parametrize(
    ("amount", "kv_heads", "query_heads"),
    [(0.5, 1, 3), (0.34, 2, 4), (0.2, 2, 4)],  # 3 of 6 heads: one whole group; 2 of 6: 1 per group
)
def test_grouped_head_pruning_equals_masking_the_removed_query_heads(
    amount, kv_heads, query_heads, inputs, tmp_path
):
    model, reference = tiny_llama(), tiny_llama()
    report = prune_model(HeadPruningConfig(name="heads"), model, amount, CompressionContext())
    kept = [block.self_attn._compress_heads for block in model.model.layers]
    assert all(len(heads) == query_heads for heads in kept)
    assert report.units_removed == 2 * (6 - query_heads)
    config = model.config
    assert (config.num_attention_heads, config.num_key_value_heads) == (query_heads, kv_heads)
    assert model.model.layers[0].self_attn.k_proj.out_features == kv_heads * 8
    _mask_query_heads(reference, kept)
    expected = _logits(reference, inputs)
    torch.testing.assert_close(_logits(model, inputs), expected)
    save_artifact(model, tmp_path)
    torch.testing.assert_close(_logits(load_artifact(tmp_path), inputs), expected)


def test_a_head_count_the_config_cannot_say_is_replayed_on_load(inputs, tmp_path):
    model = tiny_llama(num_key_value_heads=6)  # 6 heads, one KV head each
    prune_model(HeadPruningConfig(name="heads"), model, 0.17, CompressionContext())
    assert model.model.layers[0].self_attn.q_proj.out_features == 5 * 8
    assert model.config.num_attention_heads == 6  # 48 is no multiple of 5: config unchanged
    save_artifact(model, tmp_path)
    torch.testing.assert_close(_logits(load_artifact(tmp_path), inputs), _logits(model, inputs))


def test_unequal_groups_are_refused():
    with pytest.raises(ValueError, match="unequal numbers of heads"):
        kv_heads_serving(tiny_llama().model.layers[0], [0, 1, 3])
    with pytest.raises(ValueError, match="unequal"):
        keep_heads(tiny_llama().model.layers[0], [0, 3, 4])


def test_neuron_pruning_narrows_the_gated_mlp_exactly(inputs, tmp_path):
    model, reference = tiny_llama(), tiny_llama()
    prune_model(NeuronPruningConfig(name="neurons"), model, 0.25, CompressionContext())
    assert model.config.intermediate_size == 48
    for block, ref_block in zip(model.model.layers, reference.model.layers, strict=True):
        mlp = ref_block.mlp
        rows = mlp.gate_proj.weight.pow(2).sum(1) + mlp.up_proj.weight.pow(2).sum(1)
        with torch.no_grad():
            mlp.down_proj.weight[:, rows.argsort()[:16]] = 0
        assert block.mlp.up_proj.out_features == block.mlp.down_proj.in_features == 48
    torch.testing.assert_close(_logits(model, inputs), _logits(reference, inputs))
    save_artifact(model, tmp_path)
    torch.testing.assert_close(_logits(load_artifact(tmp_path), inputs), _logits(model, inputs))


def test_dropping_bottom_blocks_keeps_the_kv_cache_consistent(inputs):
    model = tiny_llama(num_hidden_layers=4)
    prune_model(LayerPruningConfig(name="layers", drop="bottom"), model, 0.5, CompressionContext())
    assert [block.self_attn.layer_idx for block in model.model.layers] == [0, 1]
    generate = {"max_new_tokens": 4, "do_sample": False, "pad_token_id": 0}
    with torch.no_grad():
        cached = model.generate(**inputs, **generate)
        uncached = model.generate(**inputs, **generate, use_cache=False)
    assert torch.equal(cached, uncached)


def test_gpt2_conv1d_becomes_an_equal_linear(inputs):
    model = tiny_gpt2()
    expected = _logits(model, inputs)
    assert conv1d_to_linear(model) == 2 * 4
    assert isinstance(model.transformer.h[0].attn.c_attn, torch.nn.Linear)
    torch.testing.assert_close(_logits(model, inputs), expected)


def test_int8_on_gpt2_reaches_its_conv1d_layers(inputs):
    model = tiny_gpt2()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = quantize_(Int8DynamicConfig(), model, CompressionContext())
    assert report.layers_quantized == 2 * 4 + 1 + 2  # four per block, the LM head, wte and wpe
    assert "8 Conv1D layers converted to nn.Linear first" in report.notes
    quantized = [m for m in model.modules() if isinstance(m, quantized_dynamic.Linear)]
    assert len(quantized) == 2 * 4 + 1
    assert _logits(model, inputs).isfinite().all()
