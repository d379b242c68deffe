"""The compiled backend compiles pruned encoders under static int8 (observers on float
activations only): the package runs any batch and length, agrees with the eager model and
reloads to the same logits. What differs between families is the captured program, which the
default tier's support matrix checks for every family; compiling a program (~20 s a package)
is Inductor's work, done here for the three encoder layouts that give it different programs:
absolute positions (BERT), relative-position attention (DeBERTa-v2), rotary attention with a
gated MLP (ModernBERT)."""

from __future__ import annotations

import pytest
import torch

from compress.backends import compress_on, load_artifact
from compress.config.backend import TorchCompiledBackendConfig
from compress.config.quant import Int8StaticConfig
from compress.infra.context import CompressionContext
from tests.compress.test_support_matrix import (
    _batches,
    _logits,
    _probe,
    _pruned,
    _snr_db,
)

pytestmark = pytest.mark.slow


LAYOUTS = ["bert", "deberta-v2", "modernbert"]


@pytest.mark.parametrize("model_type", LAYOUTS)
def test_a_pruned_encoder_compiles_under_static_int8(model_type, tmp_path):
    model, inputs, batches = _pruned(model_type), _probe(model_type), _batches(model_type)
    context = CompressionContext(calibration=lambda n: batches[:n], cache_dir=tmp_path / "cache")
    reference = _logits(model, inputs)
    compressed = compress_on(TorchCompiledBackendConfig(), model, Int8StaticConfig(), context,
                             tmp_path / "artifact")  # fmt: skip
    assert _snr_db(reference, _logits(compressed.model, inputs)) > 10
    reloaded = load_artifact(tmp_path / "artifact")
    torch.testing.assert_close(_logits(reloaded, inputs), _logits(compressed.model, inputs))
