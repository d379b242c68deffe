"""The record contract: what every job leaves in its folder, and the one way to read it back.

A job folder holds ``metrics.json`` (the record: status, factors, config, environment,
baseline and compressed measurements, ratios), ``items.parquet`` (one row per held-out item:
both models' outcomes) and ``rounds.parquet`` (one row per timing round: both models'
milliseconds). The job writes them (``compress.pipeline``); the analysis, the queueing model
and the sweepers read them through :func:`read_record` and :func:`ok_records`. Nothing here
imports torch.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

RECORD_NAME = "metrics.json"
ITEMS = "items.parquet"
ROUNDS = "rounds.parquet"
SCHEMA_VERSION = 1

# The design factors every record names under ``factors``, by the config key that holds each.
FACTOR_KEYS = {
    "model": "model", "task": "task", "prune_method": "prune_method", "prune": "prune",
    "schedule": "schedule", "recovery": "recovery", "quant": "quant", "backend": "backend",
    "batch_size": "batch_size", "decoding": "task.decoding",
}  # fmt: skip
FACTORS = tuple(FACTOR_KEYS)
# The two sides every ok record measures.
SIDES = ("baseline", "compressed")


def timestamp() -> str:
    """Now, as the record's ``started_at`` / ``finished_at`` write it (UTC, seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class RecordError(ValueError):
    """A record that cannot be read: the message names the file and what is wrong."""


def factor_levels(cfg: DictConfig) -> dict[str, Any]:
    """The design point of a job, by factor name (group options by their ``name``; a factor
    the job's task does not have is ``None``)."""
    levels = {}
    for factor, key in FACTOR_KEYS.items():
        node = OmegaConf.select(cfg, key)
        levels[factor] = node.get("name") if isinstance(node, DictConfig) else node
    return levels


def read_record(path: Path) -> dict:
    """The record at ``path`` (a ``metrics.json``); :class:`RecordError` when it is not JSON
    or not an object."""
    try:
        payload = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RecordError(f"corrupt {path}: {error}") from error
    if not isinstance(payload, dict):
        raise RecordError(f"corrupt {path}: expected a JSON object")
    return payload


def ok_records(folder: Path) -> list[dict]:
    """Every record with ``status: ok`` under ``folder`` (a sweep or one job), in path order.
    Corrupt records are skipped (``analysis`` lists them as rows of their own)."""
    records = []
    for path in sorted(Path(folder).glob(f"**/{RECORD_NAME}")):
        try:
            record = read_record(path)
        except RecordError:
            continue
        if record.get("status") == "ok":
            records.append(record)
    return records


class Comparison(StrEnum):
    difference = "difference"
    ratio = "ratio"


@dataclass(frozen=True)
class QualityMetric:
    """A quality figure a task reports, which way is better, and how the record compares a
    compressed model's value with the baseline's: ``difference`` gives
    ``ratios.<name>_delta`` (compressed - baseline), ``ratio`` gives ``ratios.<name>``
    (compressed / baseline)."""

    name: str
    higher_is_better: bool = True
    compared_by: Comparison = Comparison.difference

    @property
    def ratio_key(self) -> str:
        return f"{self.name}_delta" if self.compared_by == Comparison.difference else self.name

    def compare(self, compressed: float | None, baseline: float | None) -> float | None:
        if compressed is None or baseline is None:
            return None
        if self.compared_by == Comparison.difference:
            return compressed - baseline
        return compressed / baseline if baseline else None


def _ratio(new: float | None, old: float | None) -> float | None:
    return new / old if new is not None and old else None


@dataclass
class Side:
    """One model's measurements in a record: ``baseline`` or ``compressed``. ``training``,
    ``data`` (the splits and their checks), ``gate`` (did the baseline beat chance) and
    ``learned`` (the gate's verdict) are the baseline's; the compressed model's training is
    under ``compression.recovery``."""

    size: dict
    speed: dict
    quality: dict | None = None
    training: dict | None = None
    data: dict | None = None
    gate: dict | None = None
    learned: bool | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass
class Compression:
    """What was done to the baseline: the pruning report, the recovery training, the
    quantization report, the saved artifact's summary, and the seconds it all took."""

    prune: dict
    recovery: dict
    quant: dict
    artifact: dict
    seconds: float


def ratios(baseline: Side, compressed: Side, metrics: tuple[QualityMetric, ...]) -> dict:
    """Compressed over baseline for size, speed and cold load; each quality metric compared
    the way it declares (``QualityMetric.compared_by``)."""
    size, old_size = compressed.size, baseline.size
    speed, old_speed = compressed.speed, baseline.speed
    figures = {
        "disk_bytes": _ratio(size["disk_bytes"], old_size["disk_bytes"]),
        "weight_bytes": _ratio(size["weight_bytes"], old_size["weight_bytes"]),
        "nonzero_params": _ratio(size["nonzero_params"], old_size["nonzero_params"]),
        "latency_p50": _ratio(speed["p50_ms"], old_speed["p50_ms"]),
        "latency_mean": _ratio(speed["mean_ms"], old_speed["mean_ms"]),
        "throughput": _ratio(speed["throughput_sps"], old_speed["throughput_sps"]),
    }
    for key in ("load_s", "peak_rss_bytes"):
        old, new = old_speed.get("cold_load", {}), speed.get("cold_load", {})
        figures[f"cold_{key}"] = _ratio(new.get(key), old.get(key))
    for metric in metrics:
        if (baseline.quality or {}).get(metric.name) is not None:
            figures[metric.ratio_key] = metric.compare(
                (compressed.quality or {}).get(metric.name), baseline.quality[metric.name]
            )
    return figures


@dataclass
class JobRecord:
    """The record of one job (``metrics.json``). A job that failed keeps what it reached:
    ``error`` and ``traceback`` say why, the measurement sections are absent."""

    factors: dict
    overrides: list[str]
    config: dict
    started_at: str
    status: str = "failed"
    error: str | None = None
    placement: dict | None = None
    environment: dict | None = None
    compression: Compression | None = None
    baseline: Side | None = None
    compressed: Side | None = None
    ratios: dict | None = None
    pairing: dict | None = None  # the baseline's cache key and the eval items' fingerprint
    notes: list[str] | None = None
    traceback: str | None = None
    finished_at: str | None = None
    timing: dict = dataclasses.field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        """The JSON object: sections a job did not reach are left out (``error`` is always
        there, null when the job succeeded)."""
        always = ("schema_version", "status", "error", "factors", "overrides", "config")
        payload = {key: getattr(self, key) for key in always}
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if spec.name in always or value is None:
                continue
            payload[spec.name] = value.to_dict() if isinstance(value, Side) else value
            if isinstance(value, Compression):
                payload[spec.name] = dataclasses.asdict(value)
        return payload
