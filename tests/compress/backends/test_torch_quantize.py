"""Quantization on tiny models: outputs stay close to fp32 (by signal-to-noise ratio)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.ao.nn.quantized import dynamic as quantized_dynamic

from compress.backends.torch import quantize as quantization
from compress.backends.torch.modules import Int8Embedding
from compress.backends.torch.quantize import quantize_
from compress.config.quant import (
    BFloat16Config,
    Float16Config,
    Float32Config,
    Int8DynamicConfig,
    Int8StaticConfig,
)
from compress.infra.context import CompressionContext
from tests.conftest import tiny_bert


def snr_db(reference: torch.Tensor, approximation: torch.Tensor) -> float:
    noise = (reference - approximation.float()).pow(2).mean()
    return float(10 * torch.log10(reference.pow(2).mean() / noise))


def _hidden(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        return model.bert(**inputs).last_hidden_state.float()


@pytest.mark.parametrize(
    ("config", "min_snr_db"),
    [
        (Int8DynamicConfig(), 20.0),
        (Int8DynamicConfig(per_channel=True), 20.0),
        (Int8StaticConfig(calibration_batches=2), 15.0),
        (BFloat16Config(), 25.0),
        (Float16Config(), 40.0),
    ],
)
def test_quantized_hidden_states_are_close_to_fp32(config, min_snr_db, tiny_inputs):
    reference, model = tiny_bert(), tiny_bert()
    context = CompressionContext(calibration=lambda n: [tiny_inputs] * n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_(config, model, context)
    assert snr_db(_hidden(reference, tiny_inputs), _hidden(model, tiny_inputs)) > min_snr_db


def test_fp16_without_native_units_warns_and_says_so(monkeypatch):
    monkeypatch.setattr(quantization, "cpu_flags", lambda: ("avx2",))
    with pytest.warns(UserWarning, match="fp16"):
        report = quantize_(Float16Config(), tiny_bert(), CompressionContext())
    assert any("no avx512_fp16 or amx_fp16" in note for note in report.notes)


def test_bf16_with_native_units_has_no_caveat(monkeypatch):
    monkeypatch.setattr(quantization, "cpu_flags", lambda: ("avx512_bf16",))
    assert quantize_(BFloat16Config(), tiny_bert(), CompressionContext()).notes == []


def _count(model: torch.nn.Module, kind: type) -> int:
    return sum(1 for m in model.modules() if type(m) is kind)


def test_int8_converts_every_linear_and_embedding_and_reports_them():
    model = tiny_bert()
    linears, tables = _count(model, torch.nn.Linear), _count(model, torch.nn.Embedding)
    report = quantize_(Int8DynamicConfig(), model, CompressionContext())
    converted = [m for m in model.modules() if isinstance(m, quantized_dynamic.Linear)]
    assert len(converted) == linears and _count(model, Int8Embedding) == tables == 3
    assert report.layers_quantized == linears + tables
    assert _count(model, torch.nn.Linear) == _count(model, torch.nn.Embedding) == 0


def test_int8_without_embeddings_keeps_float_tables(tiny_inputs):
    reference, model = tiny_bert(), tiny_bert()
    quantize_(Int8DynamicConfig(embeddings=False), model, CompressionContext())
    assert _count(model, torch.nn.Embedding) == 3 and _count(model, Int8Embedding) == 0
    embeddings = model.bert.embeddings.word_embeddings.weight
    assert torch.equal(embeddings, reference.bert.embeddings.word_embeddings.weight)


def test_int8_embedding_rows_are_within_half_a_step_of_the_float_rows():
    model = tiny_bert()
    table = model.bert.embeddings.word_embeddings.weight.detach().clone()
    quantize_(Int8DynamicConfig(), model, CompressionContext())
    rows = model.bert.embeddings.word_embeddings.weight()
    step = rows.q_per_channel_scales().unsqueeze(1)
    assert ((rows.dequantize() - table).abs() <= step / 2 + 1e-6).all()


def test_fp32_is_identity(tiny_inputs):
    reference, model = tiny_bert(), tiny_bert()
    report = quantize_(Float32Config(), model, CompressionContext())
    assert report.layers_quantized == 0
    with torch.no_grad():
        assert torch.equal(model(**tiny_inputs).logits, reference(**tiny_inputs).logits)


@pytest.mark.parametrize(("config", "dtype"), [(BFloat16Config(), torch.bfloat16)])
def test_cast_levels_change_every_floating_weight(config, dtype):
    model = tiny_bert()
    quantize_(config, model, CompressionContext())
    assert {p.dtype for p in model.parameters()} == {dtype}


@pytest.mark.parametrize("kind", ["int4", "int8_weight_only"])
def test_the_bfloat16_product_multiplies_the_weight_the_integers_stand_for(kind):
    """What a compiled prefill multiplies on (``product_bfloat16``): the product with the
    dequantized weight to bfloat16 rounding (the int4 one reorders the input's columns to
    the stored bytes' order), taken by ``forward`` from ``bfloat16_from_rows`` rows on."""
    from compress.backends.torch.modules import Int4Linear, Int8WeightOnlyLinear
    from compress.quantization.grid import int4_rtn, int8_per_channel, pack_nibbles

    torch.manual_seed(0)
    weight = torch.randn(48, 96)
    if kind == "int4":
        levels, scale, zero = int4_rtn(weight, 32)
        module = Int4Linear(pack_nibbles(levels), scale, zero)
    else:
        module = Int8WeightOnlyLinear(*int8_per_channel(weight, torch.bfloat16))
    x = torch.randn(70, 96)
    exact = x @ module.dequantized_weight().t()
    got = module.product_bfloat16(x)
    assert float((got - exact).norm() / exact.norm()) < 0.005
    module.bfloat16_from_rows = 64
    assert torch.equal(module(x), got)
    assert torch.equal(module(x[:63]), module.product(x[:63]))
