"""A tied LM head and input embedding stay one tensor through a saved artifact: reloaded, they
are one parameter again, so a level that quantizes the head stores the table once (the
int8_smoothquant file of a reloaded tied model held the float table and the int8 head)."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from compress.backends import compress_on, load_artifact
from compress.backends.torch.artifact import save_artifact
from compress.config.backend import TorchBackendConfig
from compress.config.quant import Int8SmoothQuantConfig, Int8WeightOnlyConfig
from compress.infra.context import CompressionContext
from tests.compress.tiny import tiny_inputs, tiny_model


def _float_tables(folder, shape: tuple[int, ...]) -> list[str]:
    """Stored float tensors of the embedding table's shape."""
    with safe_open(str(folder / "model.safetensors"), "pt") as stored:
        return [
            key
            for key in stored.keys()
            if stored.get_slice(key).get_dtype().startswith("F")
            and tuple(stored.get_slice(key).get_shape()) == shape
        ]


@pytest.mark.parametrize("model_type", ["qwen2", "gemma2", "gpt2"])
@pytest.mark.parametrize(
    "quant",
    [Int8SmoothQuantConfig(calibration_batches=1), Int8WeightOnlyConfig()],
    ids=["smoothquant", "weight_only"],
)
def test_a_reloaded_tied_model_stores_its_table_once_when_quantized(model_type, quant, tmp_path):
    model = tiny_model(model_type)
    save_artifact(model, tmp_path / "baseline")
    reloaded = load_artifact(tmp_path / "baseline")
    assert reloaded.get_output_embeddings().weight is reloaded.get_input_embeddings().weight
    inputs = tiny_inputs(model_type)
    context = CompressionContext(calibration=lambda n: [inputs] * n)
    compressed = compress_on(TorchBackendConfig(), reloaded, quant, context, tmp_path / "int8")
    assert any("tied to the LM head" in note for note in compressed.quant.notes)
    table = tuple(model.get_input_embeddings().weight.shape)
    assert len(_float_tables(tmp_path / "baseline", table)) == 1
    assert _float_tables(tmp_path / "int8", table) == []
    with torch.no_grad():  # Gemma's lookup keeps its embed_scale
        reference = model(**inputs).logits
        error = (compressed.model(**inputs).logits - reference).pow(2).mean()
    assert error < 0.01 * reference.pow(2).mean()
