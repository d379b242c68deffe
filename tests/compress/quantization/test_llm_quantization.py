"""LLM-grade levels on the torch backend, on tiny Llama and GPT-2 models built in code:
weight-only int8 and int4 (packed, on torch's CPU kernels), SmoothQuant W8A8, GPTQ int4,
and ``quant.skip``."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from torch import nn

from compress.backends import load_artifact
from compress.backends.torch import modules
from compress.backends.torch.artifact import save_artifact
from compress.backends.torch.modules import (
    DynamicInt8Linear,
    Int4Linear,
    Int8WeightOnlyLinear,
    PackedLinear,
    TiedEmbedding,
)
from compress.backends.torch.quantize import quantize_
from compress.config.quant import (
    Int4GPTQConfig,
    Int4WeightOnlyConfig,
    Int8DynamicConfig,
    Int8SmoothQuantConfig,
    Int8WeightOnlyConfig,
)
from compress.infra.context import CompressionContext
from compress.pipeline.sensitivity import linear_groups, sensitivity
from compress.quantization.calibration import watching_inputs
from compress.quantization.gptq import gptq_int4
from compress.quantization.grid import (
    int4_dequantize,
    int4_rtn,
    int8_per_channel,
    pack_nibbles,
    unpack_nibbles,
)
from compress.quantization.smoothquant import smooth
from tests.fixtures.decoders import tiny_gpt2, tiny_llama

# int4 needs inputs that are a multiple of the group size (32): a Llama with 64-wide blocks
INT4_LLAMA = {"hidden_size": 64, "num_attention_heads": 4, "head_dim": 16,
              "intermediate_size": 128}  # fmt: skip
LEVELS = {
    "int8_weight_only": (Int8WeightOnlyConfig(), Int8WeightOnlyLinear, 25),
    "int8_smoothquant": (Int8SmoothQuantConfig(calibration_batches=3), DynamicInt8Linear, 20),
    "int4": (Int4WeightOnlyConfig(), Int4Linear, 5),
    "int4_gptq": (Int4GPTQConfig(calibration_batches=3), Int4Linear, 5),
}


def _llama() -> nn.Module:
    return tiny_llama(**INT4_LLAMA)


MODELS = {"llama": _llama, "gpt2": tiny_gpt2}


@pytest.fixture
def batches() -> list[dict[str, torch.Tensor]]:
    ids = torch.randint(5, 30000, (4, 3, 32), generator=torch.Generator().manual_seed(2))
    return [{"input_ids": i, "attention_mask": torch.ones_like(i)} for i in ids]


def _context(batches) -> CompressionContext:
    return CompressionContext(calibration=lambda n: batches[:n])


def _logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


def _snr_db(reference: torch.Tensor, other: torch.Tensor) -> float:
    return float(10 * torch.log10(reference.pow(2).sum() / (reference - other).pow(2).sum()))


def _quantize(config, model: nn.Module, batches):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_(config, model, _context(batches))


@pytest.mark.parametrize("family", list(MODELS))
@pytest.mark.parametrize("level", list(LEVELS))
def test_each_level_stays_close_to_float_and_reloads_to_the_same_logits(
    level, family, batches, tmp_path
):
    config, kind, bound_db = LEVELS[level]
    model, reference = MODELS[family](), MODELS[family]()
    report = _quantize(config, model, batches)
    probe = batches[-1]  # not among the calibration batches
    assert _snr_db(_logits(reference, probe), _logits(model, probe)) > bound_db
    packed = [m for m in model.modules() if isinstance(m, PackedLinear)]
    assert packed and all(type(m) is kind for m in packed)
    assert report.layers_quantized == len(packed)
    assert report.kernel.startswith(kind.KERNEL)
    save_artifact(model, tmp_path)
    reloaded = load_artifact(tmp_path)  # memory-mapped, zero-copy
    torch.testing.assert_close(_logits(reloaded, probe), _logits(model, probe), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("config", "bits"),
    [(Int8WeightOnlyConfig(), 8 + 16 / 64), (Int4WeightOnlyConfig(group_size=32), 4 + 32 / 32),
     (Int4WeightOnlyConfig(group_size=64), 4 + 32 / 64)],
    ids=["int8_weight_only", "int4_g32", "int4_g64"],
)  # fmt: skip
def test_bits_per_weight_count_what_is_stored(config, bits, batches):
    """Weights plus per-row (int8: a bfloat16 scale) or per-group (int4: bfloat16 scale and
    zero) parameters; the tied LM head (64 inputs) is the only Linear of the int8 model whose input
    width differs, so the int8 figure is a weighted mean."""
    model = _llama()
    report = _quantize(config, model, batches)
    if isinstance(config, Int4WeightOnlyConfig):
        assert report.bits_per_weight == pytest.approx(bits)
    else:
        widths = [m.in_features * m.out_features for m in model.modules()
                  if isinstance(m, PackedLinear)]  # fmt: skip
        rows = [m.out_features for m in model.modules() if isinstance(m, PackedLinear)]
        expected = (8 * sum(widths) + 16 * sum(rows)) / sum(widths)
        assert report.bits_per_weight == pytest.approx(expected)
        assert 8 < report.bits_per_weight < bits + 0.5


@pytest.mark.parametrize("native_bf16", [True, False], ids=["bf16_units", "no_bf16_units"])
def test_int8_weight_only_picks_its_kernel_by_the_cpu_flags(native_bf16, batches, monkeypatch):
    """Without bf16 units, many rows multiply in float32 on the dequantized weight (exactly the
    weight-only product) and the level says so; few rows, and every input on a CPU with bf16
    units, run on the int8 kernel with bfloat16 activations (close, not equal)."""
    rows = modules.float_matmul_from_rows(native_bf16)
    assert rows == (None if native_bf16 else 128)
    monkeypatch.setattr(modules, "FLOAT_MATMUL_FROM_ROWS", rows)
    generator = torch.Generator().manual_seed(3)
    linear = Int8WeightOnlyLinear(*int8_per_channel(torch.randn(32, 64, generator=generator),
                                                     torch.bfloat16))  # fmt: skip
    exact = linear.dequantized_weight()
    many, few = torch.randn(128, 64, generator=generator), torch.randn(2, 64, generator=generator)
    assert torch.equal(linear(many), nn.functional.linear(many, exact)) is not native_bf16
    assert not torch.equal(linear(few), nn.functional.linear(few, exact))
    assert _snr_db(nn.functional.linear(few, exact), linear(few)) > 40
    report = _quantize(Int8WeightOnlyConfig(), _llama(), batches)
    on_dequantized = "aten.linear on dequantized weights" in report.kernel
    assert on_dequantized is not native_bf16
    assert ("no avx512_bf16 or amx_bf16" in report.notes[0]) is not native_bf16


def test_packed_int4_round_trips_to_the_same_dequantized_weights():
    weight = torch.randn(48, 128, generator=torch.Generator().manual_seed(0))
    levels, scale, zero = int4_rtn(weight, 32)
    assert torch.equal(unpack_nibbles(pack_nibbles(levels)), levels)
    linear = Int4Linear(pack_nibbles(levels), scale, zero)
    exact = int4_dequantize(levels, scale, zero, 32)
    assert torch.equal(linear.dequantized_weight(), exact)
    rebuilt = Int4Linear.from_stored(linear.stored())
    assert torch.equal(rebuilt.dequantized_weight(), exact)
    # the kernel multiplies by the same weights (bfloat16 activations and offsets)
    x = torch.randn(5, 128, generator=torch.Generator().manual_seed(1))
    assert _snr_db(x @ exact.T, linear(x)) > 40
    # round-to-nearest on a grid from the group's minimum to its maximum: within half a step
    # of the float weight, up to the bfloat16 rounding of scale and zero
    steps = scale.float().repeat_interleave(32, dim=1)
    assert ((exact - weight).abs() <= 0.55 * steps).all()


def test_int4_keeps_pruned_zeros_on_the_grid():
    """A group with zeros has zero as a level, up to the bfloat16 rounding of its zero (1/64
    of a step); a group without keeps the tighter grid from its minimum to its maximum."""
    weight = torch.randn(16, 64, generator=torch.Generator().manual_seed(0))
    weight[:, 1:32:3] = 0  # the first group of each row only
    levels, scale, zero = int4_rtn(weight, 32)
    values = int4_dequantize(levels, scale, zero, 32)
    assert (values[:, 1:32:3].abs() <= scale[:, :1].float() / 64).all()
    second = weight[:, 32:]
    assert torch.allclose(values[:, 32:].amin(dim=1), second.amin(dim=1), rtol=0.01, atol=0.01)


@pytest.mark.parametrize("family", list(MODELS))
def test_smoothing_leaves_the_float_model_unchanged_and_flattens_activations(family, batches):
    model, reference = MODELS[family](), MODELS[family]()
    if family == "gpt2":
        from compress.backends.torch.quantize import conv1d_to_linear

        conv1d_to_linear(model), conv1d_to_linear(reference)
    # an outlier channel, as LLM activations have: the norm before q/k/v amplifies channel 3
    with torch.no_grad():
        for net in (model, reference):
            net.get_submodule(_first_norm(family)).weight[3] *= 30
    first_linear = _first_linear(family)
    before = _input_range_ratio(reference, first_linear, batches)
    smoothed = smooth(model, batches[:3], alpha=0.5)
    assert first_linear in smoothed
    torch.testing.assert_close(_logits(model, batches[-1]), _logits(reference, batches[-1]),
                               rtol=1e-4, atol=1e-4)  # fmt: skip
    assert _input_range_ratio(model, first_linear, batches) < before / 3


def _first_norm(family: str) -> str:
    return {"llama": "model.layers.0.input_layernorm", "gpt2": "transformer.h.0.ln_1"}[family]


def _first_linear(family: str) -> str:
    return {"llama": "model.layers.0.self_attn.q_proj", "gpt2": "transformer.h.0.attn.c_attn"}[
        family
    ]


def _input_range_ratio(model: nn.Module, name: str, batches) -> float:
    """Largest over median of a Linear's per-channel input maxima: how much an outlier channel
    dominates the int8 scale of a token."""
    maxima = []
    with watching_inputs({name: model.get_submodule(name)}, lambda _, x: maxima.append(x)):
        _logits(model, batches[0])
    per_channel = torch.cat(maxima).abs().amax(dim=0)
    return float(per_channel.max() / per_channel.median())


def test_gptq_reconstructs_a_layer_better_than_round_to_nearest():
    """On correlated inputs, GPTQ's output error ||XW^T - XQ^T|| is well below RTN's."""
    generator = torch.Generator().manual_seed(0)
    mixing = torch.randn(128, 128, generator=generator) / 8
    inputs = torch.randn(512, 128, generator=generator) @ mixing
    weight = torch.randn(64, 128, generator=generator)
    hessian = 2 * inputs.T @ inputs
    rtn = int4_dequantize(*int4_rtn(weight, 32), 32)
    for act_order in (False, True):
        levels, scale, zero = gptq_int4(weight, hessian, 32, act_order=act_order)
        gptq = int4_dequantize(levels, scale, zero, 32)
        error_gptq = (inputs @ (weight - gptq).T).norm()
        error_rtn = (inputs @ (weight - rtn).T).norm()
        assert error_gptq < 0.8 * error_rtn


def test_gptq_improves_the_tiny_llama_over_round_to_nearest(batches):
    reference = _llama()
    rtn, gptq = copy.deepcopy(reference), copy.deepcopy(reference)
    _quantize(Int4WeightOnlyConfig(), rtn, batches)
    _quantize(Int4GPTQConfig(calibration_batches=3), gptq, batches)
    float_logits = _logits(reference, batches[0])  # a calibration batch: what GPTQ fits
    assert _snr_db(float_logits, _logits(gptq, batches[0])) > _snr_db(
        float_logits, _logits(rtn, batches[0])
    )


def test_a_tied_embedding_reads_the_quantized_head(batches, tmp_path):
    model = _llama()
    report = _quantize(Int8WeightOnlyConfig(), model, batches)
    embedding = model.get_input_embeddings()
    assert isinstance(embedding, TiedEmbedding)
    assert embedding.head is model.get_output_embeddings()
    assert any("tied to the LM head" in note for note in report.notes)
    ids = torch.tensor([[5, 7, 11]])
    expected = model.get_output_embeddings().dequantized_weight()[ids]
    torch.testing.assert_close(embedding(ids), expected)
    save_artifact(model, tmp_path)
    with safe_open(tmp_path / "model.safetensors", "pt") as stored:
        names = set(stored.keys())
    assert "lm_head.weight" in names  # the head's int8 weight, stored once
    assert not any(name.startswith("model.embed_tokens") for name in names)


@pytest.mark.parametrize("level", ["int8", "int8_weight_only", "int4"])
def test_skip_keeps_the_named_modules_float(level, batches):
    config = {"int8": Int8DynamicConfig(), "int8_weight_only": Int8WeightOnlyConfig(),
              "int4": Int4WeightOnlyConfig()}[level]  # fmt: skip
    model = _llama()
    skipped = ["*.mlp.down_proj", r"model\.layers\.0\.self_attn\..*"]
    config.skip = skipped
    report = _quantize(config, model, batches)
    kept = [name for name, m in model.named_modules() if type(m) is nn.Linear]
    assert set(kept) >= {
        "model.layers.0.mlp.down_proj",
        "model.layers.1.mlp.down_proj",
        "model.layers.0.self_attn.q_proj",
        "model.layers.0.self_attn.o_proj",
    }
    assert type(model.get_submodule("model.layers.1.self_attn.q_proj")) is not nn.Linear
    assert any("quant.skip" in note for note in report.notes)


def test_a_skip_pattern_that_names_nothing_fails(batches):
    config = Int8WeightOnlyConfig(skip=["*.down_projection"])
    with pytest.raises(ValueError, match=r"'\*\.down_projection' matches no module"):
        _quantize(config, _llama(), batches)


def test_the_sensitivity_scan_ranks_a_damaged_layer_first(batches):
    """One Linear with outlier input columns loses most under int4 (every group's grid is
    stretched, so its other weights round to zero): quantized alone, it is ranked first. The
    score is the weights' squared error, which a random tiny model's logits would bury."""
    model = _llama()
    with torch.no_grad():
        model.get_submodule("model.layers.1.mlp.up_proj").weight[:, ::32] = 50
    reference = copy.deepcopy(model)

    def score(candidate: nn.Module) -> float:  # lower is better
        error = 0.0
        for name, module in candidate.named_modules():
            if isinstance(module, PackedLinear):
                float_weight = reference.get_submodule(name).weight
                error += float((module.dequantized_weight() - float_weight).pow(2).sum())
        return error

    groups = linear_groups(model, "linear")
    table = sensitivity(model, Int4WeightOnlyConfig(), groups, score, _context(batches))
    assert table.iloc[0]["group"] == "model.layers.1.mlp.up_proj"
    assert len(table) == len(groups)
    assert (table["harm"].diff().dropna() <= 0).all()
    by_type = linear_groups(model, "type")
    assert by_type["model.layers.*.mlp.down_proj"] == [
        "model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"
    ]  # fmt: skip


def test_saved_quantized_weights_are_aligned_for_the_kernels(batches, tmp_path: Path):
    model = _llama()
    _quantize(Int8WeightOnlyConfig(), model, batches)
    save_artifact(model, tmp_path)
    reloaded = load_artifact(tmp_path)
    for module in reloaded.modules():
        if isinstance(module, Int8WeightOnlyLinear):
            assert module.weight_int8.data_ptr() % 64 == 0
