"""Every task implements the Task protocol, and the record's ratios follow what it declares."""

from __future__ import annotations

import inspect

import pytest

from compress.pipeline.job import _ratios
from compress.schema import SCHEMAS, QualityMetric
from compress.tasks import build_task
from compress.tasks.base import Task, quality_metrics

PROTOCOL = [name for name, _ in inspect.getmembers(Task) if not name.startswith("_")]


@pytest.mark.parametrize("config_type", SCHEMAS["task"].values(), ids=lambda t: t.__name__)
def test_every_task_has_the_protocol_members_and_declares_metrics(config_type):
    task = build_task(config_type())
    for member in PROTOCOL:
        assert callable(getattr(task, member)), member
    assert task.config.name
    assert quality_metrics(task), "a task declares at least its headline metric"


def _side(quality: dict) -> dict:
    speed = {"p50_ms": 10.0, "mean_ms": 10.0, "throughput_sps": 100.0}
    return {"size": {"disk_bytes": 1, "weight_bytes": 1, "nonzero_params": 1},
            "speed": speed, "quality": quality}  # fmt: skip


def test_ratios_compare_each_declared_metric_its_own_way():
    metrics = (QualityMetric("score"), QualityMetric("loss", False, compared_by="ratio"))
    ratios = _ratios(_side({"score": 0.8, "loss": 2.0}), _side({"score": 0.75, "loss": 3.0}),
                     metrics)  # fmt: skip
    assert ratios["score_delta"] == pytest.approx(-0.05)
    assert ratios["loss"] == pytest.approx(1.5)
    assert not any(key.startswith(("accuracy", "perplexity")) for key in ratios)
