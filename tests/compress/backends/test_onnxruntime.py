"""The ONNX Runtime backend on a tiny model: export is exact, each quantization level stays
close to the torch model and shrinks the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from compress.backends.onnxruntime.export import export_onnx, fuse_transformer_ops, onnx_size
from compress.backends.onnxruntime.quantize import ort_quantize
from compress.backends.onnxruntime.runtime import OrtModel
from compress.config.quant import (
    Float32Config,
    Int4WeightOnlyConfig,
    Int8DynamicConfig,
    Int8StaticConfig,
)
from compress.infra.context import CompressionContext
from tests.compress.backends.test_torch_quantize import snr_db
from tests.conftest import tiny_bert


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[torch.nn.Module, Path, dict]:
    model = tiny_bert()
    generator = torch.Generator().manual_seed(2)
    ids = torch.randint(0, 30522, (4, 24), generator=generator)
    sample = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    path = tmp_path_factory.mktemp("onnx") / "exported.onnx"
    export_onnx(model, sample, path, opset=18)
    return model, path, sample


def _context(sample: dict) -> CompressionContext:
    return CompressionContext(calibration=lambda n: [sample] * n)


def test_export_matches_torch_at_other_shapes(exported):
    model, path, _ = exported
    ids = torch.randint(0, 30522, (3, 11))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.no_grad():
        expected = model(**inputs).logits
    torch.testing.assert_close(OrtModel(path, model.config)(**inputs).logits, expected)


@pytest.mark.parametrize(
    ("config", "min_snr_db"),
    [
        (Float32Config(), 60.0),
        (Int8DynamicConfig(), 15.0),
        (Int8StaticConfig(calibration_batches=2), 10.0),
        (Int4WeightOnlyConfig(group_size=32), 5.0),
    ],
)
def test_quantized_graphs_are_close_and_smaller(exported, tmp_path, config, min_snr_db):
    model, path, sample = exported
    source = tmp_path / "source.onnx"
    shutil.copy(path, source)
    target = tmp_path / "model.onnx"
    report = ort_quantize(config, source, target, _context(sample))
    logits = OrtModel(target, model.config)(**sample).logits
    with torch.no_grad():
        reference = model(**sample).logits
    assert snr_db(reference, logits) > min_snr_db
    if config.name != "fp32":
        assert report.layers_quantized >= 2 * 4
        assert onnx_size(target)["weight_bytes"] < onnx_size(path)["weight_bytes"]


def test_fused_graph_computes_the_same_logits(exported, tmp_path):
    model, path, sample = exported
    fused = tmp_path / "fused.onnx"
    shutil.copy(path, fused)
    fuse_transformer_ops(fused, model.config)
    torch.testing.assert_close(
        OrtModel(fused, model.config)(**sample).logits,
        OrtModel(path, model.config)(**sample).logits,
        rtol=1e-4,
        atol=1e-5,
    )


def test_int8_embedding_tables_are_quantized_only_when_asked(exported, tmp_path):
    model, path, sample = exported
    weight_bytes = {}
    for embeddings in (True, False):
        source, target = tmp_path / f"{embeddings}.source.onnx", tmp_path / f"{embeddings}.onnx"
        shutil.copy(path, source)
        ort_quantize(Int8DynamicConfig(embeddings=embeddings), source, target, _context(sample))
        weight_bytes[embeddings] = onnx_size(target)["weight_bytes"]
    tables = sum(m.weight.numel() for m in model.modules() if type(m) is torch.nn.Embedding)
    # int8 rows take 1 byte per weight instead of 4
    assert weight_bytes[False] - weight_bytes[True] == pytest.approx(3 * tables, rel=0.01)


def test_sessions_do_not_spin_after_a_run(exported):
    model, path, _ = exported
    options = OrtModel(path, model.config).session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
