"""Records are written atomically and stay valid JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compress.infra import atomic
from compress.infra.atomic import write_json_atomic


def test_write_replaces_whole_file_and_leaves_no_temporaries(tmp_path: Path):
    path = tmp_path / "metrics.json"
    write_json_atomic(path, {"status": "ok", "value": 1})
    write_json_atomic(path, {"status": "ok", "value": 2})
    assert json.loads(path.read_text()) == {"status": "ok", "value": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_failed_write_keeps_the_previous_record(tmp_path: Path, monkeypatch):
    path = tmp_path / "metrics.json"
    write_json_atomic(path, {"status": "ok"})

    def broken_dump(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.json, "dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        write_json_atomic(path, {"status": "failed"})
    assert json.loads(path.read_text()) == {"status": "ok"}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_non_finite_numbers_become_null(tmp_path: Path):
    path = tmp_path / "metrics.json"
    write_json_atomic(path, {"roc_auc": float("nan"), "nested": [float("inf"), 1.0]})
    assert json.loads(path.read_text()) == {"roc_auc": None, "nested": [None, 1.0]}
