"""A whole job on a tiny model: the record has every section, failures are recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compress.config.errors import ConfigError
from compress.pipeline.job import run_job
from compress.pipeline.outcomes import eval_fingerprint
from tests.conftest import COLD_LOAD, TINY_JOB


def _overrides(tiny_pretrained_dir: Path, *extra: str) -> list[str]:
    return [f"model.name_or_path={tiny_pretrained_dir}", *TINY_JOB, *extra]


def test_job_writes_a_complete_ok_record(compose_config, tiny_pretrained_dir):
    cfg = compose_config(_overrides(tiny_pretrained_dir, "prune=0.5", "quant=int8", COLD_LOAD))
    run_job(cfg)
    record = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert record["status"] == "ok" and record["error"] is None
    assert record["factors"] == {
        "model": "minilm",
        "task": "sentiment",
        "prune_method": "global_l1",
        "prune": 0.5,
        "schedule": "oneshot",
        "recovery": "none",
        "quant": "int8",
        "backend": "torch",
        "batch_size": 2,
        "decoding": None,
    }
    for side in ("baseline", "compressed"):
        assert set(record[side]) >= {"size", "speed", "quality"}
        speed = record[side]["speed"]
        assert len(speed["samples_ms"]) == 3
        assert speed["p50_ms"] > 0 and speed["cold_load"]["peak_rss_bytes"] > 0
        assert 0 <= record[side]["quality"]["accuracy"] <= 1
    assert record["compression"]["prune"]["zero_fraction"] == pytest.approx(0.5, abs=1e-6)
    assert record["compression"]["artifact"]["quantized"] == 2 * 6 + 2 + 3  # Linears, embeddings
    assert record["compression"]["artifact"]["sparse"] > 0
    assert record["ratios"]["disk_bytes"] < 1
    assert 0 <= record["compressed"]["quality"]["agreement"] <= 1
    assert record["environment"]["hardware"]["threads"] >= 1
    train_rows = record["baseline"]["data"]["train"]  # 64 rows less the validation quarter
    assert (train_rows, record["baseline"]["training"]["samples_seen"]) == (48, 2 * 48)


def test_bad_value_fails_the_job_and_records_why(compose_config, tiny_pretrained_dir):
    cfg = compose_config(_overrides(tiny_pretrained_dir, "prune=1.5"))
    with pytest.raises(ConfigError, match="prune=1.5"):
        run_job(cfg)
    record = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert record["status"] == "failed"
    assert record["error"].startswith("ConfigError: prune=1.5 is outside [0, 1)")
    assert record["factors"]["prune"] == 1.5


def test_the_baseline_is_trained_once_and_reused(compose_config, tiny_pretrained_dir):
    first = compose_config(_overrides(tiny_pretrained_dir, "quant=fp32"))
    run_job(first)
    baselines = [p for p in (Path(first.paths.cache_dir) / "baselines").iterdir() if p.is_dir()]
    assert len(baselines) == 1
    stamp = (baselines[0] / "baseline.json").stat().st_mtime_ns
    second = compose_config(_overrides(tiny_pretrained_dir, "quant=bf16"))
    run_job(second)
    assert (baselines[0] / "baseline.json").stat().st_mtime_ns == stamp


def test_rerun_into_the_same_folder_skips_a_finished_job(compose_config, tiny_pretrained_dir):
    cfg = compose_config(_overrides(tiny_pretrained_dir, "quant=fp32"))
    first = run_job(cfg)
    record_path = Path(cfg.paths.output_dir) / "metrics.json"
    stamp = record_path.stat().st_mtime_ns
    assert run_job(cfg) == first
    assert record_path.stat().st_mtime_ns == stamp


def test_rerun_repeats_a_failed_job(compose_config, tiny_pretrained_dir):
    cfg = compose_config(_overrides(tiny_pretrained_dir, "quant=fp32"))
    record_path = Path(cfg.paths.output_dir) / "metrics.json"
    record_path.parent.mkdir(parents=True)
    record_path.write_text('{"status": "failed", "error": "killed"}')
    assert run_job(cfg)["status"] == "ok"
    assert json.loads(record_path.read_text())["status"] == "ok"


def test_onnxruntime_backend_job(compose_config, tiny_pretrained_dir):
    cfg = compose_config(
        _overrides(tiny_pretrained_dir, "backend=onnxruntime", "quant=int8", COLD_LOAD)
    )
    record = run_job(cfg)
    assert record["status"] == "ok"
    assert record["compression"]["artifact"]["backend"] == "onnxruntime"
    assert record["compression"]["quant"]["layers_quantized"] >= 2 * 6
    assert record["compressed"]["size"]["disk_bytes"] < record["baseline"]["size"]["disk_bytes"]
    assert record["compressed"]["speed"]["cold_load"]["load_s"] > 0
    assert 0.5 <= record["compressed"]["quality"]["agreement"] <= 1


def test_static_int8_on_torch_job(compose_config, tiny_pretrained_dir):
    cfg = compose_config(_overrides(tiny_pretrained_dir, "quant=int8_static"))
    record = run_job(cfg)
    assert record["compression"]["quant"]["layers_quantized"] == 2 * 6 + 2
    assert record["compressed"]["size"]["disk_bytes"] < record["baseline"]["size"]["disk_bytes"]


def test_recovered_model_is_trained_once_and_reused_across_quant_levels(
    compose_config, tiny_pretrained_dir
):
    recovery = ["recovery=distill", "recovery.steps=2", "prune=0.5"]
    # 2 steps of batch 32 over the 48 train rows (64 less the validation quarter): 48 seen
    first = run_job(compose_config(_overrides(tiny_pretrained_dir, *recovery, "quant=fp32")))
    training = first["compression"]["recovery"]
    assert (training["method"], training["steps"], training["samples_seen"]) == ("distill", 2, 48)
    assert training["reused_from_cache"] is False
    cfg = compose_config(_overrides(tiny_pretrained_dir, *recovery, "quant=int8"))
    cfg.paths.output_dir += "-int8"
    second = run_job(cfg)
    assert second["compression"]["recovery"]["reused_from_cache"] is True
    assert second["compression"]["recovery"]["samples_seen"] == 48
    assert second["compression"]["prune"] == first["compression"]["prune"]


def test_the_job_keeps_per_item_outcomes_and_paired_intervals(
    compose_config, tiny_pretrained_dir, gate_passes
):
    import pandas as pd

    cfg = compose_config(_overrides(tiny_pretrained_dir, "prune=0.5", "quant=int8"))
    record = run_job(cfg)
    folder = Path(cfg.paths.output_dir)
    items = pd.read_parquet(folder / "items.parquet")
    assert len(items) == record["compressed"]["quality"]["n"] == 48
    correct = items["compressed_prediction"] == items["label"]
    assert correct.mean() == pytest.approx(record["compressed"]["quality"]["accuracy"])
    accuracy = record["ratios"]["intervals"]["accuracy_delta"]
    assert accuracy["estimate"] == pytest.approx(record["ratios"]["accuracy_delta"])
    assert accuracy["low"] <= accuracy["estimate"] <= accuracy["high"] and accuracy["n"] == 48
    mcnemar = record["ratios"]["tests"]["mcnemar"]
    changed = (items["compressed_prediction"] != items["baseline_prediction"]).sum()
    assert mcnemar["discordant"] <= changed and 0 <= mcnemar["p_value"] <= 1
    pairing = record["pairing"]
    assert pairing["eval_fingerprint"] == eval_fingerprint(items) and pairing["seed"] == 0
    assert (Path(cfg.paths.cache_dir) / "baselines" / pairing["baseline_key"]).is_dir()
    relabelled = items.assign(label=1 - items["label"])
    assert eval_fingerprint(relabelled) != pairing["eval_fingerprint"]
    repredicted = items.assign(compressed_prediction=items["baseline_prediction"])
    assert eval_fingerprint(repredicted) == pairing["eval_fingerprint"]
    rounds = pd.read_parquet(folder / "rounds.parquet")
    assert rounds["compressed_ms"].tolist() == record["compressed"]["speed"]["samples_ms"]
    latency = record["ratios"]["intervals"]["latency_p50"]
    assert latency["estimate"] == pytest.approx(record["ratios"]["latency_p50"], rel=1e-3)


def test_a_baseline_that_learned_nothing_is_measured_but_not_compared_on_quality(
    compose_config, tiny_pretrained_dir
):
    cfg = compose_config(_overrides(tiny_pretrained_dir, "prune=0.5", "quant=int8"))
    record = run_job(cfg)  # a tiny random model, two epochs on 64 rows: it learns nothing
    baseline, gate = record["baseline"], record["baseline"]["gate"]
    assert record["status"] == "ok" and baseline["learned"] is False is gate["learned"]
    assert gate["test"].startswith("exact binomial test") and gate["p_value"] >= 0.05
    assert gate["n"] == 48 and 0 <= gate["correct"] <= 48 and gate["reason"] and gate["fix"]
    assert set(record["ratios"]["intervals"]) == {"latency_p50", "throughput"}
    assert record["ratios"]["tests"] == {}
    assert record["compressed"]["speed"]["p50_ms"] > 0 and record["ratios"]["disk_bytes"] < 1
    assert any(note.startswith("no quality conclusion: ") for note in record["notes"])
    training, data = baseline["training"], baseline["data"]
    assert training["stopped"]["reason"] == "max_epochs" and len(training["curve"]) == 2
    assert data["train"] + data["validation"] == 64 and data["eval"] == 48
    assert training["max_length"] == data["max_length"] <= 512
