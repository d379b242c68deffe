"""The llama.cpp backend on tiny random Llamas: the GGUF the backend writes holds the model's
real (pruned) shapes, llama.cpp's logits on it match torch's at f32, greedy decoding agrees,
llama.cpp's quantizer makes the named types with an importance matrix, and a whole job records
what the torch backends record. Tests that run llama.cpp skip where the ``llama`` extra
(llama-cpp-python) is not installed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch

from compress.backends import compress_on, load_artifact
from compress.backends.llama_cpp.gguf_file import interleave_rope, write_gguf
from compress.backends.llama_cpp.quantize import importance_matrix
from compress.config.backend import LlamaCppBackendConfig
from compress.config.quant import Float32Config, GGUFQ4_K_MConfig, GGUFQ8_0Config
from compress.infra.context import CompressionContext
from compress.pruning.surgery import keep_blocks, keep_heads, keep_neurons
from tests.fixtures.decoders import tiny_llama

needs_llama_cpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python (pip install '.[llama]') is not installed",
)


def _field(reader: gguf.GGUFReader, key: str):
    field = reader.fields[key]
    values = [field.parts[i].tolist() for i in field.data]
    return [v[0] if len(v) == 1 else v for v in values]


def _pruned() -> torch.nn.Module:
    """Block 0 keeps 3 of 6 heads (1 of 2 key/value groups) and 40 of 64 neurons, block 1
    all of them; a third block is cut out."""
    model = tiny_llama(seed=3, num_hidden_layers=3)
    blocks = model.model.layers
    with torch.no_grad():
        keep_heads(blocks[0], [3, 4, 5])
        keep_neurons(blocks[0], list(range(40)))
        keep_blocks(model, [0, 1])
    return model


TEXT = "Anarchism is a political philosophy that advocates self-governed societies."


@pytest.fixture(scope="module")
def bpe_tokenizer():
    """A byte-level BPE tokenizer (like SmolLM2's) trained in code on one sentence."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tokenizer.train_from_iterator([TEXT] * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>")


def test_the_gguf_holds_each_block_s_real_shapes(tmp_path, tokenizer):
    model = _pruned()
    write_gguf(model, tokenizer, tmp_path / "m.gguf")
    reader = gguf.GGUFReader(str(tmp_path / "m.gguf"))
    # blocks of different shapes: llama.cpp's deci architecture reads them per block
    assert bytes(_field(reader, "general.architecture")[0]).decode() == "deci"
    assert _field(reader, "deci.block_count") == [2]
    assert _field(reader, "deci.attention.head_count") == [3, 6]
    assert _field(reader, "deci.attention.head_count_kv") == [1, 2]
    assert _field(reader, "deci.feed_forward_length") == [40, 64]
    assert _field(reader, "deci.attention.key_length") == [8]
    # MiniLM's WordPiece vocabulary has no BPE form: placeholder tokens, run on ids only
    assert bytes(_field(reader, "tokenizer.ggml.model")[0]).decode() == "none"
    shapes = {t.name: t.shape.tolist() for t in reader.tensors}
    assert shapes["blk.0.attn_q.weight"] == [48, 24] and shapes["blk.0.attn_k.weight"] == [48, 8]
    assert shapes["blk.0.ffn_down.weight"] == [40, 48]
    assert "output.weight" not in shapes  # tied: llama.cpp multiplies by token_embd
    assert {t.tensor_type.name for t in reader.tensors} == {"F32"}


def test_a_bpe_vocabulary_is_written_with_its_merges_padded_to_the_embedding(
    tmp_path, bpe_tokenizer
):
    write_gguf(tiny_llama(vocab_size=len(bpe_tokenizer) + 7), bpe_tokenizer, tmp_path / "m.gguf")
    reader = gguf.GGUFReader(str(tmp_path / "m.gguf"))
    assert bytes(_field(reader, "tokenizer.ggml.model")[0]).decode() == "gpt2"
    tokens = reader.fields["tokenizer.ggml.tokens"]
    assert len(tokens.data) == len(bpe_tokenizer) + 7
    assert bytes(tokens.parts[tokens.data[-1]]).decode() == f"[PAD{len(bpe_tokenizer) + 6}]"
    assert len(reader.fields["tokenizer.ggml.merges"].data) > 0
    assert _field(reader, "tokenizer.ggml.eos_token_id") == [0]


def test_rope_rows_are_interleaved_within_each_head():
    rows = torch.arange(16.0).view(16, 1)  # 2 heads of 8: halves (0..3 | 4..7)
    interleaved = interleave_rope(rows, 2).flatten().tolist()
    assert interleaved[:8] == [0, 4, 1, 5, 2, 6, 3, 7]
    assert interleaved[8:] == [8, 12, 9, 13, 10, 14, 11, 15]


def test_the_importance_matrix_is_the_mean_square_of_each_input_feature(token_ids):
    model = tiny_llama(seed=1)
    batch = {"input_ids": token_ids[:16].view(2, 8), "labels": token_ids[:16].view(2, 8)}
    context = CompressionContext(calibration=lambda n: [batch] * n)
    matrix, tokens = importance_matrix(model, context, 2)
    assert tokens == 2 * 16
    captured = {}
    handle = model.model.layers[1].mlp.down_proj.register_forward_pre_hook(
        lambda module, args: captured.setdefault("x", args[0])
    )
    with torch.no_grad():
        model(input_ids=batch["input_ids"])
    handle.remove()
    expected = captured["x"].reshape(-1, 64).double().square().mean(0).numpy()
    np.testing.assert_allclose(matrix["blk.1.ffn_down.weight"], expected, rtol=1e-5)
    # q, k and v read the same input; the tied LM head is token_embd's
    np.testing.assert_array_equal(matrix["blk.0.attn_q.weight"], matrix["blk.0.attn_v.weight"])
    assert matrix["token_embd.weight"].shape == (48,) and "output.weight" not in matrix


def _context(tokenizer, token_ids: torch.Tensor) -> CompressionContext:
    rows = token_ids[:24].view(3, 8)
    batches = [{"input_ids": rows, "attention_mask": torch.ones_like(rows), "labels": rows}]
    return CompressionContext(calibration=lambda n: batches[:n], tokenizer=tokenizer)


@needs_llama_cpp
@pytest.mark.parametrize("build", [lambda: tiny_llama(seed=2), _pruned], ids=["dense", "pruned"])
def test_llama_cpp_logits_match_torch_at_f32(tmp_path, tokenizer, token_ids, build):
    """The round trip: torch model -> GGUF written by the backend -> llama.cpp logits."""
    model = build()
    exact = LlamaCppBackendConfig(kv_cache="f32", flash_attention="off")
    compressed = compress_on(exact, model, Float32Config(), _context(tokenizer, token_ids),
                             tmp_path / "a")  # fmt: skip
    ids = token_ids[:24].unsqueeze(0)
    with torch.no_grad():
        expected = model(input_ids=ids).logits
    got = compressed.model(input_ids=ids).logits
    scale = expected.abs().max()
    assert float((got - expected).abs().max() / scale) < 1e-5
    assert (got.argmax(-1) == expected.argmax(-1)).all()
    reloaded = load_artifact(tmp_path / "a")
    torch.testing.assert_close(reloaded(input_ids=ids).logits, got)


@needs_llama_cpp
def test_llama_cpp_tokenizes_text_like_the_bpe_tokenizer_it_was_written_from(
    tmp_path, bpe_tokenizer
):
    import llama_cpp

    write_gguf(tiny_llama(vocab_size=len(bpe_tokenizer)), bpe_tokenizer, tmp_path / "m.gguf")
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(str(tmp_path / "m.gguf").encode(), params)
    vocab = llama_cpp.llama_model_get_vocab(model)
    text = TEXT.encode()
    out = (llama_cpp.llama_token * 64)()
    count = llama_cpp.llama_tokenize(vocab, text, len(text), out, 64, False, False)
    llama_cpp.llama_model_free(model)
    assert list(out[:count]) == bpe_tokenizer(TEXT)["input_ids"]


@needs_llama_cpp
def test_greedy_decoding_equals_torch_on_a_left_padded_batch(tmp_path, tokenizer, token_ids):
    model = tiny_llama(seed=2)
    runner = compress_on(LlamaCppBackendConfig(), model, Float32Config(),
                         _context(tokenizer, token_ids), tmp_path / "a").model  # fmt: skip
    ids = torch.stack([token_ids[:10], torch.cat([torch.zeros(3, dtype=torch.long),
                                                  token_ids[10:17]])])  # fmt: skip
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    kwargs = {"max_new_tokens": 8, "min_new_tokens": 8, "do_sample": False, "pad_token_id": 0}
    with torch.no_grad():
        expected = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
    got = runner.generate(input_ids=ids, attention_mask=mask, return_dict_in_generate=True,
                          **kwargs)  # fmt: skip
    assert got.sequences.tolist() == expected.tolist()
    # 2 blocks x (K, V) x 2 heads x 8 wide x 2 bytes, for 10 + 7 prompt tokens and 7 more each
    assert got.kv_cache_bytes == (10 + 7 + 2 * 7) * 2 * 2 * 2 * 8 * 2


@needs_llama_cpp
@pytest.mark.parametrize(
    ("quant", "types", "bound"),
    [(GGUFQ8_0Config(), {"Q8_0"}, 0.02), (GGUFQ4_K_MConfig(calibration_batches=1),
                                          {"Q4_K", "Q6_K"}, 0.3)],
    ids=["q8_0", "q4_k_m"],
)  # fmt: skip
def test_llama_cpp_quantizes_to_the_named_type(tmp_path, tokenizer, token_ids, quant, types, bound):
    # widths that are multiples of the k-quants' 256-weight super-blocks
    model = tiny_llama(seed=4, hidden_size=256, num_attention_heads=8, num_key_value_heads=2,
                       head_dim=32, intermediate_size=512, initializer_range=0.05)  # fmt: skip
    compressed = compress_on(LlamaCppBackendConfig(), model, quant,
                             _context(tokenizer, token_ids), tmp_path / "a")  # fmt: skip
    reader = gguf.GGUFReader(str(tmp_path / "a" / "model.gguf"))
    matrices = {t.tensor_type.name for t in reader.tensors if len(t.shape) == 2}
    assert types <= matrices
    report = compressed.quant
    assert report.level == quant.name and 4 < report.bits_per_weight < 9
    assert any("importance matrix" in note for note in report.notes) == (quant.name != "q8_0")
    ids = token_ids[:24].unsqueeze(0)
    with torch.no_grad():
        expected = torch.log_softmax(model(input_ids=ids).logits, -1)
    got = torch.log_softmax(compressed.model(input_ids=ids).logits, -1)
    kl = (expected.exp() * (expected - got)).sum(-1).mean()
    assert 0 < float(kl) < bound
    manifest = json.loads((tmp_path / "a" / "compress.json").read_text())
    assert manifest["backend"] == "llama_cpp" and not (tmp_path / "a" / "float32.gguf").exists()


@needs_llama_cpp
def test_lm_job_on_llama_cpp_records_what_torch_jobs_record(compose_config, tiny_llama_dir):
    from compress.pipeline.job import run_job

    cfg = compose_config([
        f"model.name_or_path={tiny_llama_dir}", "task=lm", "task.eval_tokens=96",
        "task.window=32", "task.stride=16", "task.block_tokens=32", "backend=llama_cpp",
        "quant=fp32", "prune_method=heads", "prune=0.5", "bench.warmup=1", "bench.repeats=2",
        "bench.seq_len=8", "batch_size=2", "task.speed_new_tokens=4",
        "task.memory_batch_sizes=[1,3]", "task.calibration_length=16",
        "task.calibration_batch_size=2",
    ])  # fmt: skip
    record = run_job(cfg)
    assert record["status"] == "ok", record.get("error")
    quality = record["compressed"]["quality"]
    assert quality["tokens"] == 95 and quality["kl_divergence"] > 0
    speed = record["compressed"]["speed"]
    assert speed["ttft_ms"] > 0 and speed["decode_ms_p50"] > 0 and len(speed["samples_ms"]) == 2
    memory = speed["memory_by_batch_size"]
    assert memory["3"]["kv_cache_bytes"] == 3 * memory["1"]["kv_cache_bytes"] > 0
    assert speed["cold_load"]["load_s"] > 0
    assert record["compression"]["quant"]["kernel"] == "llama.cpp (ggml CPU)"
    assert record["ratios"]["intervals"]["latency_p50"]["n"] == 2
    assert Path(cfg.paths.output_dir, "items.parquet").exists()


@needs_llama_cpp
def test_generation_job_on_llama_cpp_answers_every_prompt(compose_config, tiny_llama_dir):
    from compress.pipeline.job import run_job

    cfg = compose_config([
        f"model.name_or_path={tiny_llama_dir}", "task=generation", "task.num_prompts=4",
        "task.max_new_tokens=4", "task.eval_batch_size=2", "backend=llama_cpp", "quant=fp32",
        "prune_method=none", "bench.warmup=1", "bench.repeats=2", "batch_size=2",
        "task.speed_new_tokens=4", "task.memory_batch_sizes=[1]", "bench.cold_load=false",
        "task.calibration_length=16", "task.calibration_batch_size=2",
    ])  # fmt: skip
    record = run_job(cfg)
    assert record["status"] == "ok", record.get("error")
    quality = record["compressed"]["quality"]
    assert quality["n"] == 4 and 0 <= quality["answers_changed"] <= 1
    assert record["ratios"]["intervals"]["answers_changed"]["n"] == 4
    assert record["compressed"]["speed"]["batch_size"] == 2
