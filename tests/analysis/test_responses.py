"""Response names, defaults and which way is better."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import AnalysisError
from analysis.responses import (
    LATENCY,
    SIZE,
    default_responses,
    higher_is_better,
    quality_drop,
    resolve,
)

COLUMNS = ["compressed.quality.accuracy", "compressed.quality.f1", LATENCY, SIZE,
           "ratios.latency_p50"]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "column"),
    [("accuracy", "compressed.quality.accuracy"), ("f1", "compressed.quality.f1"),
     ("latency", LATENCY), ("size", SIZE), ("latency_p50", "ratios.latency_p50"),
     (SIZE, SIZE)],
)  # fmt: skip
def test_shorthands_resolve_to_columns(name: str, column: str):
    assert resolve(name, COLUMNS) == column


def test_an_unknown_response_is_an_error():
    with pytest.raises(AnalysisError, match="unknown response 'bleu'"):
        resolve("bleu", COLUMNS)


def test_defaults_are_accuracy_or_perplexity_then_latency_and_size():
    assert default_responses(COLUMNS) == ["compressed.quality.accuracy", LATENCY, SIZE]
    language = ["compressed.quality.perplexity", LATENCY]
    assert default_responses(language) == ["compressed.quality.perplexity", LATENCY]


def test_perplexity_is_lower_is_better_and_drops_relatively():
    assert not higher_is_better("compressed.quality.perplexity")
    assert higher_is_better("compressed.quality.roc_auc")
    assert not higher_is_better("compressed.quality.perplexity_vs_baseline")
    assert higher_is_better("compressed.quality.bleu_vs_baseline")
    frame = pd.DataFrame(
        {"compressed.quality.perplexity": [22.0], "baseline.quality.perplexity": [20.0],
         "compressed.quality.f1": [0.7], "baseline.quality.f1": [0.75]}
    )  # fmt: skip
    assert quality_drop(frame, "compressed.quality.perplexity")[0] == pytest.approx(0.1)
    assert quality_drop(frame, "compressed.quality.f1")[0] == pytest.approx(0.05)
