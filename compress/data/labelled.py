"""Labelled examples for classification: checked columns and labels, then three disjoint
splits drawn by a seed — held out, calibration (never held-out rows) and train.

Without an eval split, a seeded permutation of the deduplicated rows gives the held-out rows
first (so changing ``train_size`` never changes them), then the calibration rows, then the
train rows; each split holds at most its configured size. With an eval split, the held-out
rows come from it and the other two from the train split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from compress.config.task import DataConfig
from compress.data.tables import DataError, LoadedData


@dataclass(frozen=True)
class TextSplit:
    texts: list[str]
    pairs: list[str] | None  # the second text of each example (paraphrase, NLI), if any
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class LabelledData:
    train: TextSplit
    calibration: TextSplit
    eval: TextSplit
    label_names: list[str]


@dataclass(frozen=True)
class SplitSizes:
    train: int
    eval: int
    calibration: int
    seed: int


def _columns(data: DataConfig) -> dict[str, str]:
    columns = {"text_column": data.text_column, "label_column": data.label_column}
    if data.text_pair_column:
        columns["text_pair_column"] = data.text_pair_column
    return columns


def _checked(frame: pd.DataFrame, data: DataConfig, source: str) -> pd.DataFrame:
    """The configured columns, rows with a missing value left out, texts checked."""
    for key, column in _columns(data).items():
        if column not in frame.columns:
            raise DataError(f"task.data.{key}={column} is not a column of {source}",
                            ", ".join(map(str, frame.columns)))  # fmt: skip
    frame = frame[list(_columns(data).values())].dropna()
    for key in ("text_column", "text_pair_column"):
        column = _columns(data).get(key)
        if column and not frame[column].map(lambda v: isinstance(v, str)).all():
            kind = frame[column].map(lambda v: type(v).__name__).mode()[0]
            raise DataError(f"task.data.{key}={column} holds non-strings ({kind}) in {source}",
                            "a column of text")  # fmt: skip
    return frame.assign(**{data.label_column: frame[data.label_column].map(str)})


def class_order(loaded: LoadedData, data: DataConfig) -> list[str]:
    """The classes in id order: ``data.labels``, a ClassLabel's names, or the sorted values."""
    if data.labels:
        return [str(label) for label in data.labels]
    if loaded.class_names:
        return loaded.class_names
    _checked(loaded.train, data, loaded.source)  # the columns exist and hold what they should
    values = pd.Series(loaded.train[data.label_column].dropna().unique())
    numeric = pd.to_numeric(values, errors="coerce")
    ordered = values[numeric.argsort()] if numeric.notna().all() else values.sort_values()
    return [str(v) for v in ordered]


def _deduplicated(frame: pd.DataFrame, data: DataConfig, labels: list[str]) -> pd.DataFrame:
    texts = [data.text_column] + ([data.text_pair_column] if data.text_pair_column else [])
    frame = frame[frame[data.label_column].isin(labels)]
    return frame.drop_duplicates(subset=texts).reset_index(drop=True)


def _split(frame: pd.DataFrame, data: DataConfig, labels: list[str]) -> TextSplit:
    ids = {name: index for index, name in enumerate(labels)}
    pairs = frame[data.text_pair_column].tolist() if data.text_pair_column else None
    return TextSplit(frame[data.text_column].tolist(), pairs,
                     frame[data.label_column].map(ids).to_numpy(dtype=np.int64))  # fmt: skip


def _sample(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    return frame.iloc[np.random.default_rng(seed).permutation(len(frame))]


def labelled_data(
    loaded: LoadedData, data: DataConfig, sizes: SplitSizes, labels: list[str]
) -> LabelledData:
    """Train, calibration and held-out splits, class ids in the order of ``labels``."""
    pool = _deduplicated(_checked(loaded.train, data, loaded.source), data, labels)
    present = sorted(set(pool[data.label_column]))
    if len(present) < 2:
        raise DataError(f"task.data.label_column={data.label_column} holds {len(present)} class "
                        f"({', '.join(present)}) in {loaded.source}",
                        "a column with two or more classes")  # fmt: skip
    pool = _sample(pool, sizes.seed)
    if loaded.eval is None:
        held_out, pool = pool.iloc[: sizes.eval], pool.iloc[sizes.eval :]
    else:
        checked = _checked(loaded.eval, data, f"{loaded.source} (eval)")
        held_out = _sample(_deduplicated(checked, data, labels), sizes.seed).iloc[: sizes.eval]
    calibration = pool.iloc[: sizes.calibration]
    train = pool.iloc[sizes.calibration : sizes.calibration + sizes.train]
    for name, split in (("eval", held_out), ("train", train)):
        if len(split) == 0:
            raise DataError(f"the {name} split of {loaded.source} is empty after holding out "
                            f"{len(held_out)} eval and {len(calibration)} calibration rows",
                            "more rows, or smaller eval and calibration sizes")  # fmt: skip
    return LabelledData(_split(train, data, labels), _split(calibration, data, labels),
                        _split(held_out, data, labels), labels)  # fmt: skip
