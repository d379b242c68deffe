"""Size, latency and quality measurements against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compress.backends.torch.quantize import quantize_
from compress.config.quant import Int8DynamicConfig
from compress.infra.context import CompressionContext
from compress.measure.energy import energy_per_batch
from compress.measure.latency import interleaved_latency, latency_stats
from compress.measure.quality import classification_quality
from compress.measure.size import size_stats
from tests.conftest import tiny_bert


def test_latency_stats_on_known_samples():
    stats = latency_stats([10.0, 20.0, 30.0, 40.0], batch_size=8)
    assert stats["p50_ms"] == pytest.approx(25.0)
    assert stats["mean_ms"] == pytest.approx(25.0)
    assert stats["std_ms"] == pytest.approx(np.std([10, 20, 30, 40], ddof=1))
    assert stats["cv"] == pytest.approx(stats["std_ms"] / 25.0)
    assert stats["throughput_sps"] == pytest.approx(8 * 1000 / 25.0)


def test_interleaved_latency_alternates_and_counts_repeats():
    calls: list[str] = []
    runners = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    stats = interleaved_latency(runners, warmup=1, repeats=4, batch_size=1)
    assert calls == ["a", "b"] + ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert len(stats["a"]["samples_ms"]) == len(stats["b"]["samples_ms"]) == 4


def test_quality_metrics_match_hand_counts():
    labels = np.array([1, 1, 1, 0, 0, 0])
    predictions = np.array([1, 1, 0, 0, 0, 1])
    positive = np.array([0.9, 0.8, 0.4, 0.3, 0.2, 0.6])
    scores = np.stack([1 - positive, positive], axis=1)
    reference = np.array([1, 1, 1, 0, 0, 1])
    quality = classification_quality(labels, predictions, scores, ["neg", "pos"], reference)
    assert quality["accuracy"] == pytest.approx(4 / 6)
    assert quality["precision"] == pytest.approx(2 / 3)
    assert quality["recall"] == pytest.approx(2 / 3)
    assert quality["confusion_matrix"] == [[2, 1], [1, 2]]
    assert quality["roc_auc"] == pytest.approx(8 / 9)
    assert quality["agreement"] == pytest.approx(5 / 6)


def test_multiclass_quality_matches_scikit_learn_and_hand_counts():
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    predictions = np.array([0, 1, 1, 1, 2, 0, 3, 3])
    scores = np.full((8, 4), 0.1)
    scores[np.arange(8), predictions] = 0.7
    quality = classification_quality(labels, predictions, scores, ["a", "b", "c", "d"])
    assert quality["accuracy"] == pytest.approx(6 / 8)
    assert quality["f1_per_class"] == pytest.approx({"a": 0.5, "b": 0.8, "c": 2 / 3, "d": 1.0})
    assert quality["f1"] == quality["f1_macro"] == pytest.approx((0.5 + 0.8 + 2 / 3 + 1) / 4)
    assert quality["recall_weighted"] == pytest.approx(6 / 8)  # equal class counts
    assert len(quality["confusion_matrix"]) == 4 and quality["confusion_matrix"][0] == [1, 1, 0, 0]
    assert 0.5 < quality["roc_auc"] <= 1 and quality["labels"] == ["a", "b", "c", "d"]
    assert "agreement" not in quality and "predicted_positive_rate" not in quality


def test_size_counts_packed_int8_weights():
    model = tiny_bert()
    untouched = size_stats(model)
    with torch.no_grad():
        model.bert.encoder.layer[0].intermediate.dense.weight.zero_()
    fp32 = size_stats(model)
    quantize_(Int8DynamicConfig(), model, CompressionContext())
    int8 = size_stats(model)
    assert int8["params"] == fp32["params"] == untouched["params"]
    assert untouched["nonzero_params"] - fp32["nonzero_params"] == 64 * 32
    assert int8["nonzero_params"] <= fp32["nonzero_params"]
    reference = tiny_bert().modules()
    int8_weights = sum(
        m.weight.numel() for m in reference if type(m) in (torch.nn.Linear, torch.nn.Embedding)
    )
    assert fp32["weight_bytes"] - int8["weight_bytes"] == 3 * int8_weights


def test_energy_is_estimated_from_cpu_time_without_a_counter():
    energy = energy_per_batch([100.0, 200.0, 300.0], None, watts_per_core=5.0, batch_size=4)
    assert energy["method"] == "estimated"
    assert energy["joules_per_batch"] == pytest.approx(0.2 * 5.0)
    assert energy["joules_per_sample"] == pytest.approx(0.25)


def test_energy_is_measured_when_the_counter_exists():
    energy = energy_per_batch([1.0, 1.0, 1.0], [2.0, 4.0, 3.0], watts_per_core=5.0, batch_size=2)
    assert (energy["method"], energy["joules_per_batch"]) == ("measured", 3.0)


def test_latency_records_cpu_time_and_labelled_energy():
    stats = interleaved_latency({"a": lambda: sum(range(20000))}, 0, 3, batch_size=1)
    assert stats["a"]["cpu_ms_p50"] > 0
    assert stats["a"]["energy"]["method"] in ("measured", "estimated")
