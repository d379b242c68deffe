"""The record contract: ratios computed the way each metric declares, sections left out
when a job did not reach them, and one reader for every consumer."""

from __future__ import annotations

import json

import pytest

from compress.record import (
    RECORD_NAME,
    JobRecord,
    QualityMetric,
    RecordError,
    Side,
    ok_records,
    ratios,
    read_record,
)


def _side(quality: dict) -> Side:
    speed = {"p50_ms": 10.0, "mean_ms": 10.0, "throughput_sps": 100.0}
    return Side({"disk_bytes": 1, "weight_bytes": 1, "nonzero_params": 1}, speed, quality)


def test_ratios_compare_each_declared_metric_its_own_way():
    metrics = (QualityMetric("score"), QualityMetric("loss", False, compared_by="ratio"))
    figures = ratios(_side({"score": 0.8, "loss": 2.0}), _side({"score": 0.75, "loss": 3.0}),
                     metrics)  # fmt: skip
    assert figures["score_delta"] == pytest.approx(-0.05)
    assert figures["loss"] == pytest.approx(1.5)
    assert not any(key.startswith(("accuracy", "perplexity")) for key in figures)


def test_a_failed_record_has_no_measurement_sections_but_says_why():
    record = JobRecord({"quant": "int8"}, [], {}, "t0", error="OSError: disk full")
    payload = record.to_dict()
    assert payload["status"] == "failed" and payload["error"] == "OSError: disk full"
    assert not {"baseline", "compressed", "ratios", "compression"} & set(payload)
    assert JobRecord({}, [], {}, "t0", status="ok").to_dict()["error"] is None


def test_ok_records_skips_failed_and_corrupt_ones(tmp_path):
    for name, text in {"a": '{"status": "ok", "n": 1}', "b": '{"status": "failed"}',
                       "c": "{not json", "d": "[1, 2]"}.items():  # fmt: skip
        (tmp_path / name).mkdir()
        (tmp_path / name / RECORD_NAME).write_text(text)
    assert ok_records(tmp_path) == [{"status": "ok", "n": 1}]
    with pytest.raises(RecordError, match="corrupt"):
        read_record(tmp_path / "c" / RECORD_NAME)
    with pytest.raises(RecordError, match="expected a JSON object"):
        read_record(tmp_path / "d" / RECORD_NAME)
    assert json.loads((tmp_path / "a" / RECORD_NAME).read_text())["n"] == 1
