"""The MLflow callback on a sweep of two jobs (records written by hand, callbacks called as Hydra
calls them): a parent run, one child run per job with the record's figures, a failed job as a
failed run, no second run for a job a re-run skipped; refused in one line without mlflow."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from compress.pipeline import tracking
from compress.pipeline.tracking import TrackJobs, log_report, record_metrics, record_params

pytest.importorskip("mlflow")

OK = {
    "schema_version": 1, "status": "ok", "error": None,
    "factors": {"model": "minilm", "quant": "int8", "prune": 0.5, "decoding": None},
    "overrides": ["prune=0.5", "quant=int8", "+tag.note=x"],
    "config": {"prune": 0.5, "batch_size": 8},
    "started_at": "2026-01-01T12:00:00+00:00", "finished_at": "2026-01-01T12:00:30+00:00",
    "environment": {"hardware": {"cpu_model": "AMD EPYC", "threads": 2, "cpu_flags": ["avx2"],
                                 "load_average_1m": 1.5}},
    "compressed": {"quality": {"accuracy": 0.9, "n": 872}, "speed": {"p50_ms": 4.0,
                   "samples_ms": [4.0, 4.1], "cold_load": {"load_s": 0.2}}},
    "ratios": {"latency_p50": 0.5, "accuracy_delta": -0.01, "cold_load_s": None,
               "intervals": {"accuracy_delta": {"low": -0.02, "high": 0.0, "n": 872}}},
    "notes": ["a note"], "timing": {"wall_s": 30.5},
}  # fmt: skip
FAILED = {
    "schema_version": 1, "status": "failed", "error": "RuntimeError: boom\ntraceback line",
    "factors": {"model": "minilm", "quant": "int4", "prune": 0.5},
    "overrides": ["prune=0.5", "quant=int4"], "config": {},
    "started_at": "2026-01-01T12:01:00+00:00", "finished_at": "2026-01-01T12:01:05+00:00",
    "timing": {"wall_s": 5.0},
}  # fmt: skip


def _config(sweep: Path, job: int | None = None, overrides=()):
    hydra = {
        "sweep": {"dir": str(sweep)},
        "sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"},
        "overrides": {"task": list(overrides)},
        "runtime": {"output_dir": str(sweep / str(job)) if job is not None else str(sweep)},
        "job": {"num": job or 0},
    }
    return OmegaConf.create({"hydra": hydra})


def _sweep(sweep: Path, records: list[dict]) -> TrackJobs:
    callback = TrackJobs()
    sweep_overrides = ["prune=0.5", "quant=int8,int4", "+tag.note=x"]
    callback.on_multirun_start(_config(sweep, overrides=sweep_overrides))
    for job, record in enumerate(records):
        folder = sweep / str(job)
        (folder / ".hydra").mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps(record))
        (folder / ".hydra" / "overrides.yaml").write_text("- prune=0.5\n")
        callback.on_job_end(_config(sweep, job, record["overrides"]), job_return=None)
    callback.on_multirun_end(_config(sweep))
    return callback


def _runs(sweep: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{sweep / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("compress")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time"])
    return client, runs


def test_a_sweep_is_a_parent_run_with_one_child_run_per_job(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    sweep = tmp_path / "sweep"
    _sweep(sweep, [OK, FAILED])
    client, runs = _runs(sweep)
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 3 and len(children) == 2
    assert parent.info.status == "FINISHED" and parent.data.tags["sweep_dir"] == str(sweep)
    ok, failed = sorted(children, key=lambda r: r.info.run_name)
    assert ok.info.run_name == "0: quant=int8" and failed.info.run_name == "1: quant=int4"
    assert ok.info.status == "FINISHED" and failed.info.status == "FAILED"
    assert ok.data.metrics == record_metrics(OK) and ok.data.metrics["ratios.latency_p50"] == 0.5
    assert ok.data.metrics["ratios.intervals.accuracy_delta.low"] == -0.02
    assert "compressed.speed.samples_ms" not in ok.data.metrics  # lists are not figures
    assert "config.prune" not in ok.data.metrics and "ratios.cold_load_s" not in ok.data.metrics
    assert ok.data.params == {"model": "minilm", "quant": "int8", "prune": "0.5", "tag.note": "x"}
    assert ok.data.tags["status"] == "ok" and ok.data.tags["cpu_model"] == "AMD EPYC"
    assert failed.data.tags["status"] == "failed"
    assert failed.data.tags["error"] == "RuntimeError: boom"
    assert failed.data.metrics == {"schema_version": 1.0, "timing.wall_s": 5.0}
    assert ok.info.end_time - ok.info.start_time == 30_000
    artifacts = {a.path for a in client.list_artifacts(ok.info.run_id)}
    assert artifacts == {"metrics.json", "overrides.yaml"}
    assert (
        str(sweep / "mlartifacts") in client.get_experiment(ok.info.experiment_id).artifact_location
    )

    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.md").write_text("# report")
    assert log_report(sweep, tmp_path / "report") == parent.info.run_id
    logged = client.list_artifacts(parent.info.run_id, "analysis")
    assert [a.path for a in logged] == ["analysis/report.md"]


def test_a_re_run_of_the_sweep_logs_no_second_run_for_a_skipped_job(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    sweep = tmp_path / "sweep"
    _sweep(sweep, [OK])
    callback = TrackJobs()
    callback.on_multirun_start(_config(sweep, overrides=["prune=0.5", "quant=int8,int4"]))
    callback.on_job_end(_config(sweep, 0, OK["overrides"]), job_return=None)  # skipped job
    callback.on_multirun_end(_config(sweep))
    _, runs = _runs(sweep)
    assert len(runs) == 2  # the parent, reused, and the one job
    assert all(run.info.status == "FINISHED" for run in runs)


def test_parameters_and_metrics_leave_settings_and_text_out():
    assert record_params({"factors": {"a": 1, "b": None}, "overrides": ["+x=2", "~y", "hydra.z=1"]}
                         ) == {"a": "1", "x": "2"}  # fmt: skip
    assert record_metrics({"ok": True, "n": 3, "bad": float("nan"), "notes": [1], "x y!": 2}) == {
        "n": 3.0, "x y_": 2.0,
    }  # fmt: skip


def test_tracking_without_mlflow_is_refused_in_one_line(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(tracking.importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlflow" else real(name, *a))  # fmt: skip
    with pytest.raises(SystemExit) as caught:
        TrackJobs()
    assert caught.value.code == 2
    assert capsys.readouterr().err == (
        "error: hydra/callbacks=mlflow needs mlflow, accepted: pip install 'compress[track]'\n"
    )
