"""Every task implements the Task protocol, and the record's ratios follow what it declares."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics

from compress.config.store import schema_types
from compress.config.task import ClassificationTaskConfig, GenerationTaskConfig
from compress.tasks import build_task
from compress.tasks.base import Task, quality_metrics

PROTOCOL = [name for name, _ in inspect.getmembers(Task) if not name.startswith("_")]


@pytest.mark.parametrize("config_type", schema_types("task"), ids=lambda t: t.__name__)
def test_every_task_has_the_protocol_members_and_declares_metrics(config_type):
    task = build_task(config_type())
    for member in PROTOCOL:
        assert callable(getattr(task, member)), member
    assert task.config.name
    assert quality_metrics(task), "a task declares at least its headline metric"


def _classification_items(changed: int, n: int = 200, classes: int = 3) -> pd.DataFrame:
    """Labels, the baseline's answers (80% right) and a compressed model that answers like it
    except on the first ``changed`` items, with class scores whose argmax is the answer."""
    rng = np.random.default_rng(5)
    labels = rng.integers(0, classes, n)
    baseline = np.where(rng.random(n) < 0.8, labels, (labels + 1) % classes)
    compressed = baseline.copy()
    compressed[:changed] = (baseline[:changed] + 1) % classes
    items = pd.DataFrame({"item": np.arange(n), "label": labels})
    for side, answers in (("baseline", baseline), ("compressed", compressed)):
        scores = rng.dirichlet(np.ones(classes), n) * 0.5
        scores[np.arange(n), answers] += 0.5
        items[f"{side}_prediction"] = answers
        for k in range(classes):
            items[f"{side}_score_{k}"] = scores[:, k]
    return items


def test_classification_has_a_paired_interval_for_every_declared_metric():
    task = build_task(ClassificationTaskConfig())
    items = _classification_items(changed=30)
    intervals, tests = task.paired_quality(items)
    declared = {metric.ratio_key for metric in quality_metrics(task)}
    assert declared == {"accuracy_delta", "f1_delta", "roc_auc_delta"} <= set(intervals)
    y = items["label"]
    base = items[[f"baseline_score_{k}" for k in range(3)]].to_numpy()
    comp = items[[f"compressed_score_{k}" for k in range(3)]].to_numpy()
    expected = {
        "accuracy_delta": metrics.accuracy_score(y, items["compressed_prediction"])
        - metrics.accuracy_score(y, items["baseline_prediction"]),
        "f1_delta": metrics.f1_score(y, items["compressed_prediction"], average="macro")
        - metrics.f1_score(y, items["baseline_prediction"], average="macro"),
        "roc_auc_delta": metrics.roc_auc_score(y, comp, multi_class="ovr")
        - metrics.roc_auc_score(y, base, multi_class="ovr"),
    }
    for key, value in expected.items():
        interval = intervals[key]
        assert interval["estimate"] == pytest.approx(value, abs=1e-12), key
        assert interval["low"] < interval["estimate"] < interval["high"], key
    assert "Tango" in intervals["accuracy_delta"]["method"]
    mcnemar = tests["mcnemar"]
    assert mcnemar["flips"] == pytest.approx(mcnemar["discordant"] / 200) and mcnemar["flips"] > 0


def test_an_unchanged_model_gets_an_accuracy_interval_with_width():
    """No item changes: the interval holds 0 and is not the point [0, 0]."""
    intervals, tests = build_task(ClassificationTaskConfig()).paired_quality(
        _classification_items(changed=0)
    )
    accuracy = intervals["accuracy_delta"]
    assert accuracy["low"] < 0 < accuracy["high"]
    assert accuracy["high"] - accuracy["low"] > 0.03
    assert tests["mcnemar"]["flips"] == 0


def test_generation_intervals_name_the_metric_they_are_of():
    """Corpus BLEU has no per-prompt form: the interval is of sentence-BLEU and says so."""
    rng = np.random.default_rng(0)
    items = pd.DataFrame({"item": np.arange(40)})
    for metric in ("bleu", "rougeL"):
        items[f"baseline_{metric}"] = rng.random(40)
        items[f"compressed_{metric}"] = items[f"baseline_{metric}"] - 0.05 * rng.random(40)
    items["exact_match"] = np.arange(40) % 4 != 0  # 10 of 40 answers changed
    intervals, _ = build_task(GenerationTaskConfig()).paired_quality(items)
    assert set(intervals) == {"sentence_bleu_delta", "rougeL_delta", "answers_changed"}
    assert intervals["answers_changed"]["estimate"] == pytest.approx(0.25)
    assert intervals["sentence_bleu_delta"]["method"].startswith("sentence-BLEU: paired")
    assert intervals["rougeL_delta"]["method"].startswith("ROUGE-L: paired")
    expected = (items["compressed_bleu"] - items["baseline_bleu"]).mean()
    assert intervals["sentence_bleu_delta"]["estimate"] == pytest.approx(expected)
