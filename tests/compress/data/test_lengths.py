"""The token length from the data: the 95th percentile of the train rows, capped by the model's
positions; and the share of held-out texts it cuts, noted when large."""

from __future__ import annotations

import numpy as np

from compress.data.lengths import (
    choose_max_length,
    position_limit,
    truncation_facts,
    truncation_note,
)


class _Tokenizer:
    model_max_length = 512


def test_the_length_covers_95_percent_of_the_train_rows_in_multiples_of_8():
    lengths = np.arange(1, 101)  # 95th percentile 95.05
    choice = choose_max_length(None, lengths, 512)
    assert choice.max_length == 96 and choice.source.startswith("data: 95%")


def test_the_model_positions_cap_it_and_a_configured_length_stays():
    assert choose_max_length(None, np.full(10, 900), 512).max_length == 512
    assert (
        "capped by the model's 512 positions"
        in choose_max_length(None, np.full(10, 900), 512).source
    )
    assert choose_max_length(64, np.full(10, 900), 512).max_length == 64
    assert position_limit({"max_position_embeddings": 514}, _Tokenizer()) == 512


def test_the_share_cut_is_counted_and_noted_when_large():
    facts = {"max_length": 64} | truncation_facts(np.array([10, 20, 70, 300]), 64)
    assert facts["eval_truncated"] == 2 and facts["eval_truncated_share"] == 0.5
    assert "cuts 50% of the held-out texts" in truncation_note(facts)
    few = {"max_length": 64} | truncation_facts(np.array([10] * 19 + [70]), 64)
    assert truncation_note(few) is None
