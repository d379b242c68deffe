"""The compiled backend on a tiny BERT: every level agrees with the eager float model (its
weights frozen into oneDNN kernels), a recipe compiles once per sweep, and a model that cannot
be captured whole is refused."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from compress.backends import compress_on, load_artifact
from compress.backends.compiled.export import CaptureError, export_program
from compress.config.backend import TorchCompiledBackendConfig
from compress.config.quant import (
    BFloat16Config,
    Float32Config,
    Int8DynamicConfig,
    Int8SmoothQuantConfig,
    Int8StaticConfig,
)
from compress.infra.context import CompressionContext
from compress.pipeline.job import run_job
from tests.conftest import TINY_JOB, tiny_bert

pytestmark = pytest.mark.slow  # every level compiles a shared library (~20 s each)


def _snr_db(reference: torch.Tensor, other: torch.Tensor) -> float:
    return float(10 * torch.log10(reference.pow(2).sum() / (reference - other).pow(2).sum()))


@pytest.fixture(scope="module")
def batches() -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(2)
    ids = torch.randint(0, 30522, (4, 16, 12), generator=generator)
    return [{"input_ids": i, "token_type_ids": torch.zeros_like(i),
             "attention_mask": torch.ones_like(i)} for i in ids]  # fmt: skip


def _package_sources(folder: Path) -> list[str]:
    with zipfile.ZipFile(folder / "model.pt2") as package:
        return [package.read(n).decode(errors="ignore") for n in package.namelist()
                if n.endswith(".cpp")]  # fmt: skip


@pytest.mark.parametrize(
    ("quant", "bound_db", "kernel"),
    # int8 kernels differ by CPU: 20.6 dB on the CI machine's, above 25 dB on an AVX2-only one.
    # Inductor fuses int8 patterns (and prepacks float32 weights) into oneDNN kernels only when
    # it freezes the weights, which it does only for a graph compiled without autograd:
    # otherwise int8 runs as dequantize + float32 linear, slower than float32 itself.
    [(Float32Config(), 60, "mkldnn._linear_pointwise"), (BFloat16Config(), 25, None),
     (Int8DynamicConfig(), 15, "qlinear_pointwise"),
     (Int8StaticConfig(calibration_batches=3), 15, None)],
    ids=["fp32", "bf16", "int8", "int8_static"],
)  # fmt: skip
def test_each_level_agrees_with_the_eager_float_model(tmp_path, batches, quant, bound_db, kernel):
    model = tiny_bert(seed=5)
    context = CompressionContext(calibration=lambda n: batches[:n], cache_dir=tmp_path / "cache")
    compressed = compress_on(TorchCompiledBackendConfig(), model, quant, context, tmp_path / "a")
    probe = {k: v[:, :9] for k, v in batches[-1].items()}  # another length than the capture
    with torch.no_grad():
        reference = tiny_bert(seed=5)(**probe).logits
    assert _snr_db(reference, compressed.model(**probe).logits.float()) > bound_db
    reloaded = load_artifact(tmp_path / "a")
    torch.testing.assert_close(reloaded(**probe).logits, compressed.model(**probe).logits)
    if kernel:
        assert any(kernel in source for source in _package_sources(tmp_path / "a"))


def test_a_recipe_compiles_once_per_sweep(compose_config, tiny_pretrained_dir):
    overrides = [f"model.name_or_path={tiny_pretrained_dir}", *TINY_JOB, "quant=int8",
                 "backend=torch_compiled", "prune_method=heads_neurons"]  # fmt: skip
    first = run_job(compose_config([*overrides, "batch_size=2"]))
    second_cfg = compose_config([*overrides, "batch_size=4"])
    second_cfg.paths.output_dir += "-b4"
    second = run_job(second_cfg)
    assert first["compression"]["artifact"]["compile_cached"] is False
    assert first["compression"]["artifact"]["compile_s"] > 0
    assert second["compression"]["artifact"]["compile_cached"] is True
    assert second["compression"]["artifact"]["compile_s"] == 0
    assert (
        second["compressed"]["quality"]["agreement"] == first["compressed"]["quality"]["agreement"]
    )


class _DataDependent(nn.Module):
    """Branches on a tensor's value: one graph cannot hold both paths."""

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        if input_ids.float().mean() > 100:
            return input_ids.float() * 2
        return input_ids.float()


def test_a_graph_break_is_reported_not_run_around():
    with pytest.raises(CaptureError, match="cannot capture _DataDependent as one graph"):
        export_program(_DataDependent(), {"input_ids": torch.ones(2, 4, dtype=torch.long)}, 8)


def test_structured_pruning_then_compiled_int8(tmp_path: Path, batches):
    from compress.config.prune import HeadAndNeuronPruningConfig
    from compress.pruning import prune_model

    model = tiny_bert(seed=6)
    prune_model(HeadAndNeuronPruningConfig(name="heads_neurons"), model, 0.5, CompressionContext())
    context = CompressionContext(calibration=lambda n: batches[:n])
    compressed = compress_on(TorchCompiledBackendConfig(), model, Int8DynamicConfig(), context,
                             tmp_path / "pruned")  # fmt: skip
    with torch.no_grad():
        reference = model(**batches[0]).logits
    assert _snr_db(reference, compressed.model(**batches[0]).logits) > 25


def test_compiled_decoding_equals_eager_greedy_output_on_a_tiny_llama(tmp_path, token_ids):
    """Static cache + decode step compiled with frozen weights: the same greedy tokens as eager
    transformers on a left-padded batch, and the same logits from the forward pass."""
    from tests.fixtures.decoders import tiny_llama

    eager = tiny_llama(seed=2)
    compressed = compress_on(TorchCompiledBackendConfig(), tiny_llama(seed=2), Float32Config(),
                             CompressionContext(), tmp_path / "a")  # fmt: skip
    ids = torch.stack([token_ids[:10], torch.cat([torch.zeros(3, dtype=torch.long),
                                                  token_ids[10:17]])])  # fmt: skip
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    kwargs = {"max_new_tokens": 8, "min_new_tokens": 8, "do_sample": False, "pad_token_id": 0}
    with torch.inference_mode():
        expected = eager.generate(input_ids=ids, attention_mask=mask, **kwargs)
        for _ in range(2):  # the first call compiles, the second reuses the compiled step
            got = compressed.model.generate(input_ids=ids, attention_mask=mask, **kwargs)
            assert got.tolist() == expected.tolist()
        torch.testing.assert_close(compressed.model(input_ids=ids).logits,
                                   eager(input_ids=ids).logits)  # fmt: skip
    assert "compiled decode step" in compressed.quant.kernel
    assert "static KV cache" in " ".join(compressed.quant.notes)


def test_the_greedy_loop_stops_and_pads_as_generate_does(tmp_path, token_ids):
    """Unpadded greedy calls take the compiled backend's own loop: the same tokens as eager
    transformers, end-of-sequence suppressed before ``min_new_tokens``, a finished sequence
    padded until the other ends, and each token handed to the streamer as it comes."""
    from tests.fixtures.decoders import tiny_llama

    eager = tiny_llama(seed=3)
    compressed = compress_on(TorchCompiledBackendConfig(), tiny_llama(seed=3), Float32Config(),
                             CompressionContext(), tmp_path / "a").model  # fmt: skip
    ids = torch.stack([token_ids[:9], token_ids[9:18]])
    kwargs = {"max_new_tokens": 10, "do_sample": False, "pad_token_id": 0}
    with torch.inference_mode():
        free = eager.generate(input_ids=ids, **kwargs)
    stop = int(free[0, 9 + 2])  # a token of the first sequence ends it
    end = free[0, 9:].tolist().index(stop)  # where it first comes
    assert stop not in free[1, 9:].tolist() and end < 9
    for model in (eager, compressed.model):
        model.generation_config.eos_token_id = stop

    class Tokens:
        def __init__(self):
            self.put_shapes = []

        def put(self, value):
            self.put_shapes.append(tuple(value.shape))

        def end(self):
            self.put_shapes.append("end")

    for extra in ({}, {"min_new_tokens": 10}):
        with torch.inference_mode():
            expected = eager.generate(input_ids=ids, **kwargs, **extra)
        streamer = Tokens()
        got = compressed.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                  streamer=streamer, **kwargs, **extra)  # fmt: skip
        assert got.tolist() == expected.tolist()
        assert streamer.put_shapes == [(2, 9)] + [(2,)] * (got.shape[1] - 9) + ["end"]
    assert got.shape[1] == 9 + 10 and (expected[0, 9 + end + 1 :] != 0).all()  # min_new_tokens
    short = compressed.generate(input_ids=ids, **kwargs)
    assert short[0, 9 + end] == stop and (short[0, 9 + end + 1 :] == 0).all()  # padded after
    # a second compiled shape: calls of a compiled shape skip Dynamo's guards but for those
    # telling the shapes apart, and each still runs its own step
    for batch in (ids[1:], ids, ids[1:]):
        with torch.inference_mode():
            expected = eager.generate(input_ids=batch, **kwargs)
        assert compressed.generate(input_ids=batch, **kwargs).tolist() == expected.tolist()


def test_the_decode_package_runs_w8a8_on_the_models_own_weights(tmp_path, token_ids, monkeypatch):
    """W8A8 (SmoothQuant) decodes through the compiled step as the same quantized model does
    in eager transformers; the package holds no weights of its own (its library carries
    none) and runs on the model's: a weight changed in place after it compiled changes its
    tokens as it changes the eager model's."""
    from compress.backends.compiled import decoding
    from tests.fixtures.decoders import tiny_llama

    carried, package = [], decoding._package

    def counted(program, weights_inside: bool):
        carried.append(weights_inside)
        return package(program, weights_inside)

    monkeypatch.setattr(decoding, "_package", counted)

    calibration = [{"input_ids": token_ids[None, :16]}]
    context = CompressionContext(calibration=lambda n: calibration[:n])
    compiled = compress_on(TorchCompiledBackendConfig(), tiny_llama(seed=4),
                           Int8SmoothQuantConfig(calibration_batches=1), context,
                           tmp_path / "a").model  # fmt: skip
    ids, kwargs = token_ids[None, :9], {"max_new_tokens": 8, "do_sample": False, "pad_token_id": 0}
    head = compiled.model.get_output_embeddings()
    assert head.KERNEL == "aten._int_mm"
    answers = []
    for _ in range(2):
        with torch.inference_mode():
            expected = compiled.model.generate(input_ids=ids, **kwargs)  # eager, its own cache
        answers.append(compiled.generate(input_ids=ids, **kwargs).tolist())
        assert answers[-1] == expected.tolist()
        with torch.no_grad():
            head.scale.mul_(-1)  # every logit negated: the argmax becomes the argmin
    assert answers[0][0][9:] != answers[1][0][9:]
    assert carried == [False]  # one shape, one package, no weights in its library


def test_a_long_prompt_fills_the_cache_through_a_compiled_bfloat16_prefill(
    tmp_path, token_ids, monkeypatch
):
    """int4: a prompt of 64+ tokens is filled, after its first call, by a package whose int4
    products run in bfloat16 on weights dequantized per call (none of the kernel's packed
    weights in it, nor in its library), the last token by the decode step: the same greedy
    tokens as the eager model. Without bf16 units nothing is compiled so."""
    from compress.backends.compiled import decoding
    from compress.config.quant import Int4WeightOnlyConfig
    from tests.fixtures.decoders import tiny_llama

    sizes = {"hidden_size": 64, "num_attention_heads": 4, "head_dim": 16, "intermediate_size": 128}
    monkeypatch.setattr(decoding, "has_native_bf16", lambda: False)
    assert decoding.bfloat16_prefill_modules(tiny_llama(seed=5, **sizes)) == []
    monkeypatch.setattr(decoding, "has_native_bf16", lambda: True)  # any CPU: bf16 in software
    carried, package = [], decoding._package

    def counted(program, weights_inside: bool):
        carried.append(weights_inside)
        return package(program, weights_inside)

    monkeypatch.setattr(decoding, "_package", counted)
    model = tiny_llama(seed=5, **sizes)
    compressed = compress_on(TorchCompiledBackendConfig(), model, Int4WeightOnlyConfig(),
                             CompressionContext(), tmp_path / "a")  # fmt: skip
    assert decoding.PREFILL_NOTE in compressed.quant.notes
    compiled = compressed.model
    ids = torch.cat([token_ids] * 4)[None, : decoding.PREFILL_FROM_ROWS + 6]
    kwargs = {"max_new_tokens": 6, "do_sample": False, "pad_token_id": 0}
    with torch.inference_mode():
        expected = model.generate(input_ids=ids, **kwargs).tolist()  # eager
    for _ in range(2):  # the first call compiles the decode step and the prefill
        assert compiled.generate(input_ids=ids, **kwargs).tolist() == expected
    (fill,) = compiled._prefills.values()
    constants = fill.get_constant_fqns()
    assert any(name.endswith("packed") for name in constants)  # the stored int4 levels...
    assert not any("kernel_weight" in name for name in constants)  # ...not the kernel's
    # the prefill's library holds no weights (bound to the model's), the int4 decode step's does
    assert carried == [False, True]
