"""Saved artifacts load back to the same model, and their size on disk is real."""

from __future__ import annotations

import warnings

import pytest
import torch

from compress.artifact import load_artifact, read_manifest, save_artifact
from compress.quantization import quantize_
from compress.schema import BFloat16Config, Float32Config, Int8DynamicConfig
from tests.conftest import tiny_bert


@pytest.mark.parametrize("config", [Float32Config(), BFloat16Config(), Int8DynamicConfig()])
def test_round_trip_gives_identical_outputs(tmp_path, tiny_inputs, config):
    model = tiny_bert()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_(config, model)
    save_artifact(model, tmp_path)
    loaded = load_artifact(tmp_path)
    with torch.no_grad():
        assert torch.equal(model(**tiny_inputs).logits, loaded(**tiny_inputs).logits)


def test_int8_artifact_is_smaller_and_says_its_format(tmp_path):
    dense = save_artifact(tiny_bert(), tmp_path / "fp32")
    model = tiny_bert()
    quantize_(Int8DynamicConfig(), model)
    int8 = save_artifact(model, tmp_path / "int8")
    assert read_manifest(tmp_path / "int8")["format"] == "int8_dynamic"
    assert int8["disk_bytes"] < dense["disk_bytes"]
    assert int8["int8_linears"] and len(int8["int8_linears"]) == 2 * 6 + 2


def test_a_folder_without_manifest_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="compress.json is missing"):
        load_artifact(tmp_path)
