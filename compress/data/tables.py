"""Load a task's examples as tables, whatever their source: data shipped in packages, local
files, or a dataset on the hub, always through ``datasets``.

``load_data(config)`` returns the train rows, the eval rows (when the source has an eval
split) and the class names of a ``ClassLabel`` label column. ``data_identity(config)`` says
what the examples are without loading them (file hashes, hub name and revision, package
version): the baseline cache key covers it, so two datasets never share a baseline.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from compress.config.errors import ConfigError
from compress.config.task import DataConfig

SHIPPED_PREFIX = "shipped:"
_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json",
             ".parquet": "parquet", ".txt": "text"}  # fmt: skip
_COMPRESSION = (".gz", ".bz2", ".xz", ".zst")
FILE_KINDS = "a .csv, .tsv, .json, .jsonl, .parquet or .txt file (optionally compressed)"


class DataError(ConfigError):
    """The data cannot serve the task as configured; the message is one line."""


@dataclass(frozen=True)
class LoadedData:
    source: str
    train: pd.DataFrame
    eval: pd.DataFrame | None
    class_names: list[str] | None


def _suffix(path: Path) -> str:
    suffixes = [s for s in path.suffixes if s not in _COMPRESSION]
    return suffixes[-1].lower() if suffixes else ""


def _files(data: DataConfig) -> dict[str, Path]:
    files = {"train": data.files.train, "eval": data.files.eval}
    paths = {split: Path(path).expanduser() for split, path in files.items() if path}
    for split, path in paths.items():
        if not path.is_file():
            raise DataError(f"task.data.files.{split}={path}: no such file", FILE_KINDS)
        if _suffix(path) not in _BUILDERS:
            raise DataError(f"task.data.files.{split}={path} is of an unknown kind", FILE_KINDS)
    return paths


def check_source(data: DataConfig) -> None:
    """What can be checked without loading: the files (which take precedence over
    ``name``), the shipped name, or nothing for the hub."""
    if data.files.train or data.files.eval:
        if not data.files.train:
            raise DataError(
                "task.data.files.eval is set without files.train", "task.data.files.train=<file>"
            )
        _files(data)
    elif data.name and data.name.startswith(SHIPPED_PREFIX):
        from compress.data.shipped import SHIPPED

        name = data.name.removeprefix(SHIPPED_PREFIX)
        if name not in SHIPPED:
            accepted = ", ".join(f"{SHIPPED_PREFIX}{n}" for n in SHIPPED)
            raise DataError(f"task.data.name={data.name} is not shipped", accepted)
    elif not data.name:
        raise DataError("task.data names no data", "task.data.name or task.data.files.train")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def data_identity(data: DataConfig) -> dict:
    """What the examples are, for cache keys: file contents, hub revision, package version."""
    if data.files.train:
        return {"files": {split: _sha256(path) for split, path in _files(data).items()}}
    if data.name and data.name.startswith(SHIPPED_PREFIX):
        from compress.data.shipped import SHIPPED

        distribution = SHIPPED[data.name.removeprefix(SHIPPED_PREFIX)][1]
        return {"shipped": data.name, "version": importlib.metadata.version(distribution)}
    return {"hub": data.name, "config": data.config, "revision": data.revision or "main",
            "splits": [data.train_split, data.eval_split]}  # fmt: skip


def _from_files(data: DataConfig) -> tuple[str, dict]:
    from datasets import load_dataset

    paths = _files(data)
    builder = _BUILDERS[_suffix(paths["train"])]
    options = {"delimiter": "\t"} if _suffix(paths["train"]) == ".tsv" else {}
    files = {split: str(path) for split, path in paths.items()}
    return str(paths["train"]), load_dataset(builder, data_files=files, **options)


def _from_hub(data: DataConfig) -> tuple[str, dict]:
    from datasets import load_dataset

    if os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1":
        raise DataError(f"task.data.name={data.name} cannot be fetched: the hub is offline",
                        "task.data.files.train=<local file>, or shipped:<name>")  # fmt: skip
    tables = load_dataset(data.name, data.config, revision=data.revision)
    for split in (data.train_split, data.eval_split):
        if split and split not in tables:
            raise DataError(f"task.data split {split} is not a split of {data.name}",
                            ", ".join(tables))  # fmt: skip
    tables = {"train": tables[data.train_split]} | (
        {"eval": tables[data.eval_split]} if data.eval_split else {}
    )
    return data.name, tables


def _shipped(data: DataConfig) -> tuple[str, dict]:
    from compress.data.shipped import shipped_dataset

    return data.name, {"train": shipped_dataset(data.name.removeprefix(SHIPPED_PREFIX))}


def _class_names(table, column: str) -> list[str] | None:
    from datasets import ClassLabel

    feature = table.features.get(column)
    return list(feature.names) if isinstance(feature, ClassLabel) else None


def _frame(table, names: list[str] | None, column: str) -> pd.DataFrame:
    frame = table.to_pandas()
    if names is not None:
        frame[column] = [names[i] if i is not None and i >= 0 else None for i in frame[column]]
    return frame


def text_values(frame: pd.DataFrame, key: str, column: str, source: str) -> list[str]:
    """The strings of a text column (missing values left out); one line if it is not one."""
    if column not in frame.columns:
        raise DataError(f"task.data.{key}={column} is not a column of {source}",
                        ", ".join(map(str, frame.columns)))  # fmt: skip
    values = frame[column].dropna()
    if not values.map(lambda v: isinstance(v, str)).all():
        kind = values.map(lambda v: type(v).__name__).mode()[0]
        raise DataError(f"task.data.{key}={column} holds non-strings ({kind}) in {source}",
                        "a column of text")  # fmt: skip
    return values.tolist()


def load_data(data: DataConfig) -> LoadedData:
    """The rows of the train split and of the eval split (None without one)."""
    check_source(data)
    import datasets

    datasets.disable_progress_bars()  # a job's log and a refusal's one line stay readable
    datasets.logging.set_verbosity_error()
    if data.files.train:
        source, tables = _from_files(data)
    elif data.name and data.name.startswith(SHIPPED_PREFIX):
        source, tables = _shipped(data)
    else:
        source, tables = _from_hub(data)
    names = _class_names(tables["train"], data.label_column)
    frames = {split: _frame(table, names, data.label_column) for split, table in tables.items()}
    return LoadedData(source, frames["train"], frames.get("eval"), names)
