"""Splits of labelled data: held-out texts that occur in training are dropped (or kept) and
counted, duplicates differ in more than case and spacing, validation rows are carved from the
train rows only, stratified, and small data keeps rows to train on."""

from __future__ import annotations

import pandas as pd
import pytest

from compress.config.task import DataConfig, EvalOverlap
from compress.data.labelled import SplitSizes, labelled_data, normalised
from compress.data.tables import DataError, LoadedData

DATA = DataConfig(name="test")
LABELS = ["a", "b"]


def _frame(texts: list[str], labels: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"text": texts, "label": labels})


def _train(count: int, share_b: float = 0.5) -> pd.DataFrame:
    labels = ["b" if i < share_b * count else "a" for i in range(count)]
    return _frame([f"train text {i}" for i in range(count)], labels)


def _sizes(**overrides) -> SplitSizes:
    return SplitSizes(**({"train": 1000, "eval": 1000, "calibration": 10, "seed": 0} | overrides))


def _texts(split) -> set[str]:
    return {normalised(text) for text in split.texts}


def test_texts_compare_without_case_or_spacing():
    assert normalised("  Thank   you.\n") == normalised("thank you.") == "thank you."


def test_held_out_texts_that_occur_in_training_are_dropped_and_counted():
    held_out = _frame(["Train text 1", "train  text 2\n", "new one", "new two"], list("abab"))
    loaded = LoadedData("test", _train(100), held_out, None)
    data = labelled_data(loaded, DATA, _sizes(), LABELS)
    assert _texts(data.eval) == {"new one", "new two"}
    assert data.facts["eval_distinct"] == 4 and data.facts["eval_overlap"] == 2
    assert data.facts["eval"] == 2 and data.facts["eval_overlap_policy"] == "drop"
    kept = labelled_data(loaded, DATA, _sizes(eval_overlap=EvalOverlap.keep), LABELS)
    assert len(kept.eval) == 4 and kept.facts["eval_overlap"] == 2


def test_a_held_out_file_made_only_of_training_texts_is_refused():
    loaded = LoadedData("test", _train(20), _frame(["train text 3"], ["a"]), None)
    with pytest.raises(DataError, match="task.eval_overlap=keep"):
        labelled_data(loaded, DATA, _sizes(), LABELS)


def test_splits_are_disjoint_and_validation_is_a_stratified_share_of_train():
    loaded = LoadedData("test", _train(1000, share_b=0.1), None, None)
    data = labelled_data(loaded, DATA, _sizes(eval=200, calibration=50), LABELS)
    splits = [data.train, data.validation, data.calibration, data.eval]
    seen = [_texts(split) for split in splits]
    assert sum(map(len, seen)) == len(set().union(*seen)) == 1000
    assert len(data.validation) == pytest.approx(0.1 * (1000 - 200 - 50), abs=2)
    minority = data.validation.labels.mean()  # class "b" is id 1, 10% of the rows
    assert 0.05 < minority < 0.15
    assert (data.facts["eval"], data.facts["calibration"]) == (200, 50)
    assert data.facts["duplicates_dropped"] == 0


def test_small_data_holds_out_and_calibrates_a_share_only():
    loaded = LoadedData("test", _train(300), None, None)
    data = labelled_data(loaded, DATA, _sizes(calibration=256), LABELS)  # eval_size 1000
    assert len(data.eval) == 120 and len(data.calibration) == 18
    assert len(data.train) + len(data.validation) == 300 - 120 - 18


def test_duplicates_are_counted():
    frame = _frame(["same", "Same ", "other", "third"], list("aaba"))
    data = labelled_data(LoadedData("test", frame, _frame(["x"], ["a"]), None), DATA,
                         _sizes(calibration=0), LABELS)  # fmt: skip
    assert data.facts["duplicates_dropped"] == 1
