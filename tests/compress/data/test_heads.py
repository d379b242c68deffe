"""Which head a classifier's baseline uses, decided from the model's id2label."""

from __future__ import annotations

import pytest

from compress.data.heads import choose_head
from compress.data.tables import DataError

NAMED = {"id2label": {"0": "NEGATIVE", "1": "POSITIVE"}}
GENERIC = {"id2label": {"0": "LABEL_0", "1": "LABEL_1"}}


def test_a_head_naming_the_data_classes_is_used_in_the_models_order():
    choice = choose_head(NAMED, ["positive", "negative"], None)
    assert choice.finetuned and choice.labels == ["negative", "positive"]
    assert "detected" in choice.reason


def test_a_generic_or_foreign_head_gets_a_fresh_one():
    assert not choose_head(GENERIC, ["neg", "pos"], None).finetuned
    foreign = choose_head({"id2label": {"0": "entailment", "1": "contradiction"}}, ["a", "b"], None)
    assert not foreign.finetuned and foreign.labels == ["a", "b"]
    assert not choose_head(NAMED, ["negative", "positive"], False).finetuned


def test_finetuned_true_with_other_labels_is_one_line():
    with pytest.raises(DataError) as caught:
        choose_head(NAMED, ["spam", "ham"], True)
    assert str(caught.value) == (
        "model.finetuned=true but the model's labels {NEGATIVE, POSITIVE} are not the data's "
        "{ham, spam}, accepted: a model whose id2label names the data's classes, or "
        "model.finetuned=false"
    )
