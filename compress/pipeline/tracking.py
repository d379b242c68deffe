"""Hydra callback ``hydra/callbacks=mlflow``: every job of a sweep as an MLflow run.

A parent run per sweep and one child run per job, read from the job's record once it is
written: the factors and overridden keys as params, every numeric figure of the record as a
metric (dotted record keys: ``ratios.latency_p50``, ``compressed.quality.accuracy``), the
record, ``items.parquet``, ``rounds.parquet`` and the overrides as artifacts, the status, the
CPU and the error as tags; a failed job is a run of status FAILED. ``python -m analysis`` logs
its report to the parent run of each tracked sweep it reads.

The store is ``sqlite:///<sweep dir>/mlflow.db`` (nothing to start, works offline), or the one
``MLFLOW_TRACKING_URI`` names; ``<sweep dir>/mlflow.json`` says which, and the parent run.
The records stay the source of truth: tracking is opt-in, because mlflow is a heavy import
(seconds per process) and creating a SQLite store takes seconds more.

    python -m compress.main -m hydra/callbacks=mlflow prune=0.3,0.5 quant=fp32,int8
    mlflow ui --backend-store-uri sqlite:///multirun/<sweep>/mlflow.db
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from compress.config.refusal import first_line, refuse
from compress.infra.atomic import write_json_atomic
from compress.infra.sweep_end import at_sweep_end
from compress.record import ITEMS, RECORD_NAME, ROUNDS, read_record

log = logging.getLogger(__name__)

DB_NAME = "mlflow.db"
TRACKING_NAME = "mlflow.json"
ARTIFACTS = "mlartifacts"
# Record sections that are settings or text, not measured figures.
NOT_FIGURES = ("config", "factors", "overrides", "error", "traceback", "notes")
_METRIC_KEY = re.compile(r"[^\w\-. /:]")


def require_mlflow(what: str) -> None:
    """Refuse in one line when mlflow is not installed."""
    if importlib.util.find_spec("mlflow") is None:
        refuse([f"{what} needs mlflow, accepted: pip install 'compress[track]'"])


def tracking_uri(folder: Path) -> str:
    """``MLFLOW_TRACKING_URI``, else a SQLite store inside ``folder``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(folder).absolute() / DB_NAME}"


def _client(uri: str):
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _experiment(client, name: str, folder: Path, uri: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    local = uri.startswith("sqlite:") and not os.environ.get("MLFLOW_TRACKING_URI")
    location = (Path(folder).absolute() / ARTIFACTS).as_uri() if local else None
    return client.create_experiment(name, artifact_location=location)


def record_metrics(record: dict) -> dict[str, float]:
    """Every finite number of ``record`` (booleans aside) by its dotted key, settings and text
    sections left out: what a child run logs as metrics."""
    figures: dict[str, float] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        elif isinstance(node, int | float) and not isinstance(node, bool) and math.isfinite(node):
            figures[_METRIC_KEY.sub("_", prefix[:-1])] = float(node)

    walk({k: v for k, v in record.items() if k not in NOT_FIGURES}, "")
    return figures


def record_params(record: dict) -> dict[str, str]:
    """The factors and every overridden key, as strings."""
    params = {k: str(v) for k, v in (record.get("factors") or {}).items() if v is not None}
    for line in record.get("overrides") or []:
        key, sep, value = str(line).partition("=")
        if sep and not key.startswith(("hydra", "~")):
            params[key.lstrip("+").split("@")[0]] = value
    return params


def _millis(stamp: str | None) -> int | None:
    return int(datetime.fromisoformat(stamp).timestamp() * 1000) if stamp else None


def _tags(record: dict, job_dir: Path) -> dict[str, str]:
    hardware = (record.get("environment") or {}).get("hardware") or {}
    tags = {
        "status": str(record.get("status")),
        "job_dir": str(job_dir),
        "finished_at": str(record.get("finished_at")),
        "cpu_model": str(hardware.get("cpu_model")),
        "cpu_threads": str(hardware.get("threads")),
    }
    if record.get("error"):
        tags["error"] = first_line(Exception(record["error"]))[:5000]
    return tags


def log_job(client, experiment_id: str, parent: str | None, job_dir: Path, name: str) -> str:
    """One child run from the record in ``job_dir`` (unless that very record is logged)."""
    from mlflow.entities import Metric, Param

    record = read_record(job_dir / RECORD_NAME)
    tags = _tags(record, job_dir)
    if "'" not in str(job_dir):  # a re-run of the sweep skipped this job: logged already
        query = f"tags.job_dir = '{job_dir}' and tags.finished_at = '{tags['finished_at']}'"
        for run in client.search_runs([experiment_id], query, max_results=1):
            return run.info.run_id
    if parent is not None:
        tags["mlflow.parentRunId"] = parent
    run = client.create_run(experiment_id, _millis(record.get("started_at")), tags, name[:250])
    run_id, stamp = run.info.run_id, _millis(record.get("finished_at")) or 0
    metrics = [Metric(k, v, stamp, 0) for k, v in record_metrics(record).items()]
    params = [Param(k, v[:6000]) for k, v in record_params(record).items()]
    for start in range(0, max(len(metrics), 1), 1000):  # MLflow takes 1000 metrics a batch
        client.log_batch(run_id, metrics[start : start + 1000], params if start == 0 else [])
    for artifact in (RECORD_NAME, ITEMS, ROUNDS, ".hydra/overrides.yaml"):
        if (job_dir / artifact).is_file():
            client.log_artifact(run_id, str(job_dir / artifact))
    status = "FINISHED" if record.get("status") == "ok" else "FAILED"
    client.set_terminated(run_id, status, end_time=stamp or None)
    return run_id


def _fixed_keys(config: DictConfig) -> list[str]:
    """The keys a sweep's command line sets to one value for every job."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    lines = OmegaConf.to_container(config.hydra.overrides.task)
    overrides = OverridesParser.create().parse_overrides(lines)
    return [o.key_or_group for o in overrides if not o.is_sweep_override()]


def _run_name(config: DictConfig, fixed: list[str]) -> str:
    """``<job number>: <the overrides that vary across the sweep>``."""
    varying = [line for line in config.hydra.overrides.task
               if line.partition("=")[0].lstrip("+") not in fixed]  # fmt: skip
    return f"{config.hydra.job.get('num', 0)}: {' '.join(varying)}".strip()


def sweep_tracking(sweep_dir: Path) -> dict | None:
    """What ``mlflow.json`` says about a tracked sweep, or None."""
    path = Path(sweep_dir) / TRACKING_NAME
    return json.loads(path.read_text()) if path.is_file() else None


class TrackJobs(Callback):
    """Registered by ``conf/hydra/callbacks/mlflow.yaml``; see the module docstring."""

    def __init__(self, experiment: str = "compress") -> None:
        require_mlflow("hydra/callbacks=mlflow")
        self.experiment = experiment
        self._closed = False

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir).absolute()
        sweep_dir.mkdir(parents=True, exist_ok=True)
        uri = tracking_uri(sweep_dir)
        client = _client(uri)
        experiment_id = _experiment(client, self.experiment, sweep_dir, uri)
        earlier = sweep_tracking(sweep_dir)
        if earlier is not None and earlier["uri"] == uri:
            parent = earlier["parent_run_id"]  # a re-run of the sweep: the same parent
            client.update_run(parent, status="RUNNING")
        else:
            overrides = " ".join(OmegaConf.to_container(config.hydra.overrides.task))
            tags = {"sweep_dir": str(sweep_dir), "overrides": overrides[:5000],
                    "sweeper": str(config.hydra.sweeper.get("_target_"))}  # fmt: skip
            parent = client.create_run(experiment_id, tags=tags, run_name=sweep_dir.name)
            parent = parent.info.run_id
        tracking = {"uri": uri, "experiment_id": experiment_id, "parent_run_id": parent,
                    "fixed": _fixed_keys(config)}  # fmt: skip
        write_json_atomic(sweep_dir / TRACKING_NAME, tracking)
        at_sweep_end(self._close, sweep_dir, "FAILED")  # the sweep raised: no multirun end

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        job_dir = Path(config.hydra.runtime.output_dir)
        if not (job_dir / RECORD_NAME).is_file():
            return
        sweep_dir = Path(config.hydra.sweep.dir).absolute()
        tracking = sweep_tracking(sweep_dir) if job_dir.parent == sweep_dir else None
        uri = tracking["uri"] if tracking else tracking_uri(job_dir)
        try:
            client = _client(uri)
            experiment_id = (tracking or {}).get("experiment_id") or _experiment(
                client, self.experiment, job_dir, uri
            )
            parent = (tracking or {}).get("parent_run_id")
            name = _run_name(config, (tracking or {}).get("fixed", []))
            log_job(client, experiment_id, parent, job_dir, name)
        except Exception as error:  # tracking never fails a job: the record is what counts
            log.warning("MLflow: job %s not logged: %s", job_dir, first_line(error))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._close(Path(config.hydra.sweep.dir).absolute(), "FINISHED")

    def _close(self, sweep_dir: Path, status: str) -> None:
        if self._closed:
            return
        self._closed = True
        tracking = sweep_tracking(sweep_dir)
        if tracking is None:
            return
        try:
            client = _client(tracking["uri"])
            for name in ("search.json", "design.json"):
                if (sweep_dir / name).is_file():
                    client.log_artifact(tracking["parent_run_id"], str(sweep_dir / name))
            client.set_terminated(tracking["parent_run_id"], status)
        except Exception as error:  # at exit: report, never raise
            log.warning("MLflow: sweep run not closed: %s", first_line(error))


def log_report(sweep_dir: Path, out: Path) -> str | None:
    """Log the analysis report in ``out`` to the parent run of a tracked sweep; returns the
    run id (None when the sweep was not tracked)."""
    tracking = sweep_tracking(sweep_dir)
    if tracking is None:
        return None
    if importlib.util.find_spec("mlflow") is None:
        log.warning("%s is tracked in MLflow, and mlflow is not installed: report not logged "
                    "(pip install 'compress[track]')", sweep_dir)  # fmt: skip
        return None
    try:
        client = _client(tracking["uri"])
        for path in sorted(Path(out).iterdir()):
            if path.is_file():
                client.log_artifact(tracking["parent_run_id"], str(path), "analysis")
    except Exception as error:  # the report is written either way
        log.warning("MLflow: report of %s not logged: %s", sweep_dir, first_line(error))
        return None
    return tracking["parent_run_id"]
