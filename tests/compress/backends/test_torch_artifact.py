"""Saved artifacts load back to the same model, and their size on disk is real."""

from __future__ import annotations

import warnings

import pytest
import torch

from compress.backends import load_artifact
from compress.backends.torch.artifact import save_artifact
from compress.backends.torch.quantize import quantize_
from compress.config.prune import (
    HeadAndNeuronPruningConfig,
    LayerPruningConfig,
    MagnitudePruningConfig,
)
from compress.config.quant import BFloat16Config, Float32Config, Int8DynamicConfig, Int8StaticConfig
from compress.infra.context import CompressionContext
from compress.models.layers import block_linears
from compress.pruning import prune_model
from compress.storage.artifact import disk_bytes, read_manifest
from tests.conftest import tiny_bert


def _quantized(config, model=None):
    model = model or tiny_bert()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_(config, model, CompressionContext())
    return model


def _assert_same_outputs(model, folder, inputs):
    loaded = load_artifact(folder)
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, loaded(**inputs).logits)
    return loaded


@pytest.mark.parametrize(
    "config",
    [Float32Config(), BFloat16Config(), Int8DynamicConfig(), Int8DynamicConfig(per_channel=True)],
)
def test_round_trip_gives_identical_outputs(tmp_path, tiny_inputs, config):
    model = _quantized(config)
    save_artifact(model, tmp_path)
    _assert_same_outputs(model, tmp_path, tiny_inputs)


def test_int8_artifact_is_smaller_and_lists_its_linears(tmp_path):
    dense = save_artifact(tiny_bert(), tmp_path / "fp32")
    int8 = save_artifact(_quantized(Int8DynamicConfig()), tmp_path / "int8")
    assert read_manifest(tmp_path / "int8")["quantized"] == int8["quantized"]
    kinds = list(int8["quantized"].values())
    assert kinds.count("int8_dynamic") == 2 * 6 + 2 and kinds.count("int8_embedding") == 3
    assert int8["disk_bytes"] < dense["disk_bytes"]


def _block_weight_bytes(folder, model) -> int:
    """Bytes the block Linear weights take in the file (dense or as mask + values)."""
    from safetensors import safe_open

    names = {f"{n}.weight" for n in block_linears(model)}
    with safe_open(str(folder / "model.safetensors"), "pt") as stored:
        return sum(
            stored.get_tensor(key).nbytes
            for key in stored.keys()
            if key.split(".sparse_")[0] in names
        )


@pytest.mark.parametrize(("sparsity", "max_ratio"), [(0.9, 0.15), (0.5, 1.0)])
def test_sparse_storage_shrinks_block_weights(tmp_path, tiny_inputs, sparsity, max_ratio):
    dense_model = tiny_bert()
    save_artifact(dense_model, tmp_path / "dense")
    model = tiny_bert()
    prune_model(
        MagnitudePruningConfig(name="l1", per_layer=True), model, sparsity, CompressionContext()
    )
    manifest = save_artifact(model, tmp_path / "sparse")
    assert set(manifest["sparse"]) == {f"{n}.weight" for n in block_linears(model)}
    ratio = _block_weight_bytes(tmp_path / "sparse", model) / _block_weight_bytes(
        tmp_path / "dense", dense_model
    )
    assert ratio <= max_ratio
    assert disk_bytes(tmp_path / "sparse") < disk_bytes(tmp_path / "dense")
    loaded = _assert_same_outputs(model, tmp_path / "sparse", tiny_inputs)
    for name, layer in block_linears(loaded).items():
        assert torch.equal(layer.weight, block_linears(model)[name].weight)


def test_dense_weights_are_not_stored_as_sparse(tmp_path):
    assert save_artifact(tiny_bert(), tmp_path)["sparse"] == {}


def test_sparse_int8_round_trip(tmp_path, tiny_inputs):
    model = tiny_bert()
    prune_model(MagnitudePruningConfig(name="global_l1"), model, 0.9, CompressionContext())
    model = _quantized(Int8DynamicConfig(), model)
    manifest = save_artifact(model, tmp_path)
    assert manifest["sparse"]
    _assert_same_outputs(model, tmp_path, tiny_inputs)


def test_structured_pruning_round_trips_and_shrinks(tmp_path, tiny_inputs):
    model = tiny_bert()
    prune_model(HeadAndNeuronPruningConfig(name="heads_neurons"), model, 0.5, CompressionContext())
    prune_model(LayerPruningConfig(name="layers"), model, 0.5, CompressionContext())
    manifest = save_artifact(model, tmp_path / "pruned")
    assert manifest["heads"] == {"0": [1, 2]} or len(manifest["heads"]["0"]) == 2
    assert model.config.num_hidden_layers == 1 and model.config.intermediate_size == 32
    loaded = _assert_same_outputs(model, tmp_path / "pruned", tiny_inputs)
    assert sum(p.numel() for p in loaded.parameters()) == sum(p.numel() for p in model.parameters())
    save_artifact(tiny_bert(), tmp_path / "full")
    assert disk_bytes(tmp_path / "pruned") < disk_bytes(tmp_path / "full")


def test_static_int8_round_trip(tmp_path, tiny_inputs):
    model = tiny_bert()
    context = CompressionContext(calibration=lambda n: [tiny_inputs] * n)
    quantize_(Int8StaticConfig(calibration_batches=2), model, context)
    manifest = save_artifact(model, tmp_path)
    assert set(manifest["quantized"].values()) == {"int8_static"}
    _assert_same_outputs(model, tmp_path, tiny_inputs)


def test_zero_copy_and_read_load_the_same_tensors(tmp_path):
    model = tiny_bert()
    prune_model(MagnitudePruningConfig(name="global_l1"), model, 0.9, CompressionContext())
    save_artifact(_quantized(BFloat16Config(), model), tmp_path)
    mapped = load_artifact(tmp_path, zero_copy=True).state_dict()
    read = load_artifact(tmp_path, zero_copy=False).state_dict()
    assert mapped.keys() == read.keys()
    assert all(torch.equal(mapped[k], read[k]) for k in mapped)


def test_zero_copy_load_does_not_touch_the_file(tmp_path, tiny_inputs):
    save_artifact(tiny_bert(), tmp_path)
    before = (tmp_path / "model.safetensors").read_bytes()
    model = load_artifact(tmp_path, zero_copy=True)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)
    assert (tmp_path / "model.safetensors").read_bytes() == before


def test_a_folder_without_manifest_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="compress.json is missing"):
        load_artifact(tmp_path)
