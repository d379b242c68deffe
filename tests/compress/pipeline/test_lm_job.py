"""Whole jobs of the causal-LM tasks on a tiny Llama checkpoint: complete records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compress.pipeline.job import run_job

FAST = [
    "bench.warmup=1",
    "bench.repeats=2",
    "bench.seq_len=8",
    "batch_size=2",
    "task.speed_new_tokens=4",
    "task.memory_batch_sizes=[1,3]",
    "task.calibration_length=16",
    "task.calibration_batch_size=2",
]
LM = ["task=lm", "task.eval_tokens=96", "task.window=32", "task.stride=16"]
GENERATION = ["task=generation", "task.num_prompts=4", "task.max_new_tokens=4",
              "task.eval_batch_size=2"]  # fmt: skip


def _run(compose_config, folder: Path, *overrides: str) -> dict:
    cfg = compose_config([f"model.name_or_path={folder}", *FAST, *overrides])
    run_job(cfg)
    return json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())


def test_lm_job_records_perplexity_and_decoding_speed(compose_config, tiny_llama_dir):
    record = _run(compose_config, tiny_llama_dir, *LM, "prune_method=heads", "prune=0.5",
                  "quant=int8", "recovery=finetune", "recovery.steps=2",
                  "recovery.batch_size=2")  # fmt: skip
    assert record["status"] == "ok", record["error"]
    baseline, compressed = record["baseline"]["quality"], record["compressed"]["quality"]
    assert baseline["tokens"] == compressed["tokens"] == 95
    assert compressed["perplexity_vs_baseline"] == pytest.approx(
        compressed["perplexity"] / baseline["perplexity"]
    )
    assert record["baseline"]["training"]["steps"] == 0
    for side in ("baseline", "compressed"):
        speed = record[side]["speed"]
        assert speed["batch_size"] == 2 and speed["new_tokens"] == 4
        assert len(speed["samples_ms"]) == 2  # one per timed generate call, not per token
        assert speed["ttft_ms"] > 0 and speed["decode_ms_p90"] >= speed["decode_ms_p50"] > 0
        assert speed["cold_load"]["peak_rss_bytes"] > 0
        assert set(speed["memory_by_batch_size"]) == {"1", "3"}
    memory = record["compressed"]["speed"]["memory_by_batch_size"]
    # one of the two key/value groups went: 2 blocks x (K, V) x 1 head x 8 wide x positions
    assert (
        memory["3"]["kv_cache_bytes"]
        == 3 * memory["1"]["kv_cache_bytes"]
        == 3 * (2 * 2 * 1 * 8 * (8 + 4 - 1) * 4)
    )
    # Linears, LM head, embed_tokens
    assert record["compression"]["quant"]["layers_quantized"] == 2 * 7 + 1 + 1
    assert record["compression"]["prune"]["units_removed"] == 2 * 3
    assert record["ratios"]["latency_p50"] > 0
    assert record["compression"]["recovery"]["samples_seen"] == 2 * 2


def test_generation_job_with_speculative_decoding(compose_config, tiny_llama_dir):
    record = _run(compose_config, tiny_llama_dir, *GENERATION, "task.decoding=speculative",
                  "prune_method=none", "quant=fp32", "bench.cold_load=false")  # fmt: skip
    assert record["status"] == "ok", record["error"]
    quality = record["compressed"]["quality"]
    # an uncompressed model reproduces the baseline exactly, greedy and (same seed) sampled
    assert quality["exact_match_vs_baseline"] == quality["sampled_exact_match_vs_baseline"] == 1
    assert quality["answers_changed"] == 0
    changed = record["ratios"]["intervals"]["answers_changed"]
    assert changed["estimate"] == changed["low"] == 0 < changed["high"] and changed["n"] == 4
    assert quality["bleu"] == record["baseline"]["quality"]["bleu"]
    speed = record["compressed"]["speed"]
    assert speed["decoding"] == "speculative" and speed["batch_size"] == 1
    assert speed["acceptance_rate"] == 1.0 and speed["drafted_tokens"] > 0


def test_lm_job_keeps_window_outcomes_and_a_perplexity_interval(
    compose_config, gate_passes, tiny_llama_dir
):
    import pandas as pd

    cfg = compose_config([f"model.name_or_path={tiny_llama_dir}", *FAST, *LM, "quant=int8",
                          "task.block_tokens=32"])  # fmt: skip
    record = run_job(cfg)
    items = pd.read_parquet(Path(cfg.paths.output_dir) / "items.parquet")
    assert items["tokens"].sum() == record["compressed"]["quality"]["tokens"]
    interval = record["ratios"]["intervals"]["perplexity"]
    assert interval["estimate"] == pytest.approx(record["ratios"]["perplexity"], rel=1e-9)
    assert interval["low"] <= interval["estimate"] <= interval["high"]
    windows = record["compressed"]["quality"]["windows"]
    assert len(items) == windows and interval["n"] == 95 // 32 < windows  # blocks, not windows
    assert f"{interval['n']} non-overlapping blocks" in interval["method"]
    assert record["ratios"]["intervals"]["latency_p50"]["n"] == 2  # timed calls
    # token-level fidelity to the baseline, per window and over the same blocks
    quality = record["compressed"]["quality"]
    assert quality["kl_divergence"] > 0 and 0 <= quality["top1_agreement"] <= 1
    assert quality["kl_divergence_p99"] >= quality["kl_divergence_median"] >= 0
    assert items["kl"].sum() / items["tokens"].sum() == pytest.approx(quality["kl_divergence"])
    assert items["top1_agree"].sum() / items["tokens"].sum() == quality["top1_agreement"]
    for key in ("kl_divergence", "top1_agreement", "ref_prob_delta"):
        fidelity = record["ratios"]["intervals"][key]
        assert fidelity["estimate"] == pytest.approx(quality[key])
        assert fidelity["low"] <= fidelity["estimate"] <= fidelity["high"]
        assert fidelity["n"] == interval["n"]
    assert "kl_divergence" not in record["baseline"]["quality"]


def test_lm_job_of_an_unchanged_model_has_zero_kl_and_full_top1_agreement(
    compose_config, tiny_llama_dir
):
    record = _run(compose_config, tiny_llama_dir, *LM, "prune_method=none", "quant=fp32",
                  "bench.cold_load=false")  # fmt: skip
    assert record["status"] == "ok", record["error"]
    quality = record["compressed"]["quality"]
    assert quality["kl_divergence"] == quality["kl_divergence_p99"] == 0
    assert quality["top1_agreement"] == 1 and quality["ref_prob_delta"] == 0


@pytest.mark.slow  # compiles a decode step (~10 s)
def test_compiled_lm_job_of_a_pruned_int4_model_decodes_in_the_compiled_loop(
    compose_config, tiny_llama_dir
):
    record = _run(compose_config, tiny_llama_dir, *LM, "backend=torch_compiled", "quant=int4",
                  "prune_method=heads", "prune=0.5", "bench.cold_load=false")  # fmt: skip
    assert record["status"] == "ok", record["error"]
    assert "compiled decode step" in record["compression"]["quant"]["kernel"]
    assert record["compression"]["prune"]["units_removed"] > 0
    speed = record["compressed"]["speed"]
    assert speed["decode_ms_p50"] > 0 and speed["tokens_per_s"] > 0
    memory = speed["memory_by_batch_size"]
    # the static cache the loop decoded in, every position reserved: 2 blocks x (K, V) x the
    # 1 key/value head left x 8 wide x (8 + 4) positions x 4 bytes
    assert (
        memory["3"]["kv_cache_bytes"]
        == 3 * memory["1"]["kv_cache_bytes"]
        == 3 * (2 * 2 * 1 * 8 * (8 + 4) * 4)
    )
