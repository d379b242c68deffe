"""Every task implements the Task protocol, and the record's ratios follow what it declares."""

from __future__ import annotations

import inspect

import pytest

from compress.config.store import schema_types
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
