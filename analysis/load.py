"""Collect the job folders of one or more sweeps into one tidy table, one row per job.

Factors are rebuilt from each job's ``.hydra/overrides.yaml`` (which config keys were set) and
its ``.hydra/config.yaml`` (at which level), never from folder names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

from analysis import AnalysisError
from compress.record import RECORD_NAME as RECORD
from compress.record import RecordError, read_record

DESIGN = "design.json"
HYDRA = ".hydra"
# How far below a given folder job folders are looked for: multirun/<date>/<time>/<job>.
MAX_DEPTH = 4
# Record fields that are not measurements: the factors are rebuilt from .hydra instead.
NOT_METRICS = ("status", "error", "factors", "overrides", "config", "traceback")
MISSING_REASON = f"no {RECORD}: the job was killed or never ran"
# Statuses of the jobs left out of the analysis, in the order reports list them.
EXCLUDED = ("failed", "missing", "corrupt")
# Keys that repeat a recipe rather than change it: jobs differing only in them are its runs.
REPLICATE_KEYS = ("seed",)


@dataclass
class Runs:
    table: pd.DataFrame  # job, status, reason, one column per overridden key, then the metrics
    keys: list[str]  # config keys set by an override in at least one job
    aliases: list[list[str]] = field(default_factory=list)  # alias groups from design.json

    @property
    def ok(self) -> pd.DataFrame:
        return self.table[self.table["status"] == "ok"]

    @property
    def factors(self) -> list[str]:
        """Overridden keys whose level varies across the successful jobs (replicate keys,
        ``seed``, excepted: they make runs of one recipe)."""
        return [key for key in self.varying if key not in REPLICATE_KEYS]

    @property
    def varying(self) -> list[str]:
        return [key for key in self.keys if self.ok[key].map(level_label).nunique() > 1]

    @property
    def fixed(self) -> dict[str, Any]:
        varying = self.varying
        return {key: self.ok[key].iloc[0] for key in self.keys if key not in varying}


def level_label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def ordered_levels(values: pd.Series) -> list[str]:
    """Distinct levels as labels; numeric levels in numeric order, others alphabetically."""
    distinct = values.drop_duplicates().tolist()
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in distinct)
    ordered = sorted(distinct, key=None if numeric else level_label)
    return list(dict.fromkeys(level_label(v) for v in ordered))


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _is_job(folder: Path) -> bool:
    return (folder / RECORD).is_file() or (folder / HYDRA).is_dir()


def find_jobs(folder: Path, depth: int = MAX_DEPTH) -> list[Path]:
    """``folder`` itself if it is a job, else the jobs of its sweeps, in job-number order."""
    if _is_job(folder):
        return [folder]
    if depth == 0:
        return []
    children = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return [
        job for child in sorted(children, key=_natural_key) for job in find_jobs(child, depth - 1)
    ]


def _read_json(path: Path) -> dict:
    try:
        return read_record(path)
    except RecordError as error:
        raise AnalysisError(str(error)) from error


def _yaml(path: Path) -> Any:
    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception as error:  # YAML and OmegaConf raise many kinds; all mean "unreadable"
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise AnalysisError(f"corrupt {path}: {message}") from error


def parse_overrides(lines: list[str]) -> dict[str, str]:
    """``key=value`` per override, prefixes ``+``/``++`` stripped; deletions and ``hydra.*``
    dropped; a group path ``a/b`` becomes the config key ``a.b``."""
    parsed = {}
    for line in lines:
        key, sep, value = str(line).partition("=")
        key = key.lstrip("+").split("@")[0].replace("/", ".")
        if sep and not key.startswith("~") and key.split(".")[0] != "hydra":
            parsed[key] = value
    return parsed


def config_level(config: dict, key: str, override: str | None) -> Any:
    """The level of ``key`` in a resolved config: a config group counts by its ``name``."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return override
        node = node[part]
    if isinstance(node, dict):
        return node.get("name", override)
    return str(node) if isinstance(node, list) else node


def flatten(record: dict, prefix: str = "") -> dict[str, Any]:
    """Nested dicts become dotted columns; list values (samples, matrices, notes) are left out."""
    flat = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        elif not isinstance(value, list):
            flat[f"{prefix}{key}"] = value
    return flat


@dataclass
class _Job:
    folder: Path
    record: dict | None
    overrides: dict[str, str]
    config: dict
    corrupt: str | None = None  # why a file of the job could not be read

    @classmethod
    def read(cls, folder: Path, strict: bool = False) -> _Job:
        try:
            return cls._read(folder)
        except AnalysisError as error:
            if strict:
                raise
            return cls(folder, None, {}, {}, corrupt=str(error))

    @classmethod
    def _read(cls, folder: Path) -> _Job:
        record = _read_json(folder / RECORD) if (folder / RECORD).is_file() else None
        hydra = folder / HYDRA
        overrides_file, config_file = hydra / "overrides.yaml", hydra / "config.yaml"
        lines = (
            _yaml(overrides_file) if overrides_file.is_file() else (record or {}).get("overrides")
        )
        config = _yaml(config_file) if config_file.is_file() else (record or {}).get("config")
        return cls(folder, record, parse_overrides(lines or []), config or {})

    def row(self, keys: list[str]) -> dict[str, Any]:
        if self.corrupt is not None:
            status, reason = "corrupt", self.corrupt
        elif self.record is None:
            status, reason = "missing", MISSING_REASON
        elif self.record.get("status") == "ok":
            status, reason = "ok", ""
        else:
            status = "failed"
            reason = self.record.get("error") or f"status {self.record.get('status')!r}"
        levels = {key: config_level(self.config, key, self.overrides.get(key)) for key in keys}
        metrics = {k: v for k, v in (self.record or {}).items() if k not in NOT_METRICS}
        row = {"job": str(self.folder), "status": status, "reason": reason, **levels}
        return row | flatten(metrics)


def _aliases(jobs: list[Path]) -> list[list[str]]:
    groups: list[list[str]] = []
    for path in dict.fromkeys(job.parent / DESIGN for job in jobs):
        if path.is_file():
            for group in _read_json(path).get("aliases", []):
                if [str(term) for term in group] not in groups:
                    groups.append([str(term) for term in group])
    return groups


def _no_success_message(table: pd.DataFrame) -> str:
    counts = table["status"].value_counts()
    parts = [f"{counts[s]} {s}" for s in EXCLUDED if s in counts]
    failed = table.loc[table["status"] == "failed", "reason"]
    first = f" (first error: {str(failed.iloc[0]).splitlines()[0]})" if len(failed) else ""
    return f"no successful job among {len(table)}: {', '.join(parts)}{first}"


def load_runs(paths: list[Path], strict: bool = False) -> Runs:
    """Every job under ``paths`` (sweep roots, job folders, or parents of sweeps). A job whose
    files cannot be read is a row of status ``corrupt`` with the reason; ``strict`` makes it
    an error instead."""
    folders: list[Path] = []
    for path in paths:
        if not path.is_dir():
            raise AnalysisError(f"{path}: no such directory")
        found = find_jobs(path)
        if not found:
            raise AnalysisError(
                f"{path}: not a sweep or run directory (no job folder with {RECORD} or {HYDRA}/)"
            )
        folders += found
    jobs = [_Job.read(folder, strict) for folder in dict.fromkeys(f.resolve() for f in folders)]
    keys = list(dict.fromkeys(key for job in jobs for key in job.overrides))
    table = pd.DataFrame([job.row(keys) for job in jobs])
    if not (table["status"] == "ok").any():
        raise AnalysisError(_no_success_message(table))
    return Runs(table, keys, _aliases([job.folder for job in jobs]))
