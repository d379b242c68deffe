"""Labelled examples for classification: checked columns and labels, then four disjoint
splits drawn by a seed — held out, calibration (never held-out rows), train, and validation
(carved from the train rows, stratified by class, for early stopping).

Rows are deduplicated on their normalised text (or text pair): case and runs of whitespace do
not make two texts different. Without an eval split, a seeded permutation of the deduplicated
rows gives the held-out rows first (so changing ``train_size`` never changes them), then the
calibration rows, then the train rows; each split holds at most its configured size, and on
small data at most 40% of the rows are held out and 10% of the rest calibrate. With an
eval split, the held-out rows come from it and the other three from the train split; held-out
texts that also occur in the train split are dropped (``task.eval_overlap=drop``, the default)
or kept (``keep``) before ``eval_size`` is taken, and ``facts`` counts them either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from compress.config.task import ClassificationTaskConfig, DataConfig, EvalOverlap
from compress.data.tables import DataError, LoadedData

_KEY = "__key"
# Small data: without an eval split at most this share of the rows is held out, and at most
# this share of the rest calibrates, whatever eval_size and calibration_size allow.
HELD_OUT_SHARE = 0.4
CALIBRATION_SHARE = 0.1
# Small data: validation scores on fewer rows than this are too coarse to stop on.
VALIDATION_MIN = 50


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
    validation: TextSplit | None = None
    facts: dict = field(default_factory=dict)  # row counts: the record's ``baseline.data``


@dataclass(frozen=True)
class SplitSizes:
    train: int
    eval: int
    calibration: int
    seed: int
    validation_fraction: float = 0.1
    validation_max: int = 1000
    eval_overlap: EvalOverlap = EvalOverlap.drop


def split_sizes(task: ClassificationTaskConfig) -> SplitSizes:
    """The split sizes a classification task's config asks for."""
    tuning = task.finetune
    return SplitSizes(task.train_size, task.eval_size, task.calibration_size, task.split_seed,
                      tuning.validation_fraction, tuning.validation_max,
                      task.eval_overlap)  # fmt: skip


def normalised(text: str) -> str:
    """The form two texts are compared in: case folded, whitespace runs as one space."""
    return " ".join(text.split()).casefold()


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
    """Rows of the known labels, each normalised text (or pair) once, keyed by it."""
    key = frame[data.text_column].map(normalised)
    if data.text_pair_column:
        key = key + "\n" + frame[data.text_pair_column].map(normalised)
    frame = frame.assign(**{_KEY: key})
    frame = frame[frame[data.label_column].isin(labels)]
    return frame.drop_duplicates(subset=_KEY).reset_index(drop=True)


def _split(frame: pd.DataFrame, data: DataConfig, labels: list[str]) -> TextSplit:
    ids = {name: index for index, name in enumerate(labels)}
    pairs = frame[data.text_pair_column].tolist() if data.text_pair_column else None
    return TextSplit(frame[data.text_column].tolist(), pairs,
                     frame[data.label_column].map(ids).to_numpy(dtype=np.int64))  # fmt: skip


def _sample(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    return frame.iloc[np.random.default_rng(seed).permutation(len(frame))]


def _validation(train: pd.DataFrame, label: str, sizes: SplitSizes) -> pd.Series:
    """Which train rows validate: a stratified ``validation_fraction`` (at most
    ``validation_max`` rows, at least ``VALIDATION_MIN`` while that is under a quarter of the
    rows), at least one row of every class with two rows or more."""
    rows = max(len(train), 1)
    share = max(sizes.validation_fraction, min(VALIDATION_MIN / rows, 0.25))
    share = min(share, sizes.validation_max / rows)
    chosen = pd.Series(False, index=train.index)
    for _, rows in train.groupby(label, sort=False):  # train is already in seeded order
        if len(rows) >= 2:
            chosen[rows.index[: max(1, round(share * len(rows)))]] = True
    return chosen


def _held_out(
    loaded: LoadedData, data: DataConfig, labels: list[str], pool: pd.DataFrame,
    sizes: SplitSizes,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:  # fmt: skip
    """The held-out rows, the rest of the pool, and what was dropped on the way."""
    if loaded.eval is None:
        count = min(sizes.eval, math.ceil(HELD_OUT_SHARE * len(pool)))
        return pool.iloc[:count], pool.iloc[count:], {"eval_source": "train split"}
    checked = _checked(loaded.eval, data, f"{loaded.source} (eval)")
    distinct = _sample(_deduplicated(checked, data, labels), sizes.seed)
    overlapping = distinct[_KEY].isin(set(pool[_KEY]))
    kept = distinct if sizes.eval_overlap == EvalOverlap.keep else distinct[~overlapping]
    facts = {"eval_source": "eval split", "eval_distinct": len(distinct),
             "eval_overlap": int(overlapping.sum()),
             "eval_overlap_policy": str(sizes.eval_overlap)}  # fmt: skip
    if len(kept) == 0 and len(distinct):
        raise DataError(f"every one of the {len(distinct)} held-out texts of {loaded.source} "
                        "also occurs in its train split", "held-out texts that are not "
                        "training texts, or task.eval_overlap=keep")  # fmt: skip
    return kept.iloc[: sizes.eval], pool, facts


def labelled_data(
    loaded: LoadedData, data: DataConfig, sizes: SplitSizes, labels: list[str]
) -> LabelledData:
    """Train, validation, calibration and held-out splits, class ids in the order of
    ``labels``."""
    checked = _checked(loaded.train, data, loaded.source)
    pool = _deduplicated(checked, data, labels)
    present = sorted(set(pool[data.label_column]))
    if len(present) < 2:
        raise DataError(f"task.data.label_column={data.label_column} holds {len(present)} class "
                        f"({', '.join(present)}) in {loaded.source}",
                        "a column with two or more classes")  # fmt: skip
    duplicates = int(checked[data.label_column].isin(labels).sum()) - len(pool)
    pool = _sample(pool, sizes.seed)
    held_out, pool, facts = _held_out(loaded, data, labels, pool, sizes)
    calibrating = min(sizes.calibration, math.ceil(CALIBRATION_SHARE * len(pool)))
    calibration = pool.iloc[:calibrating]
    train = pool.iloc[calibrating : calibrating + sizes.train]
    validating = _validation(train, data.label_column, sizes)
    validation, train = train[validating], train[~validating]
    for name, split in (("eval", held_out), ("train", train)):
        if len(split) == 0:
            raise DataError(f"the {name} split of {loaded.source} is empty after holding out "
                            f"{len(held_out)} eval, {len(calibration)} calibration and "
                            f"{len(validation)} validation rows",
                            "more rows, or smaller eval and calibration sizes")  # fmt: skip
    facts = {"duplicates_dropped": duplicates, **facts, "train": len(train),
             "validation": len(validation), "calibration": len(calibration),
             "eval": len(held_out)}  # fmt: skip
    return LabelledData(_split(train, data, labels), _split(calibration, data, labels),
                        _split(held_out, data, labels), labels,
                        _split(validation, data, labels) if len(validation) else None,
                        facts)  # fmt: skip
