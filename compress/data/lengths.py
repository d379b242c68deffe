"""How many tokens a classifier reads per text (or pair): ``task.max_length``, or from the
data — the 95th percentile of the train rows' tokenized lengths, capped by the positions the
model has — and how many held-out texts that length cuts."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from compress.models.families import positions_of

# The share of train rows whose whole text the length from the data covers.
COVERED = 0.95
# Above this share of cut held-out texts, the record and the report say so in a note.
CUT_NOTE = 0.10


@dataclass(frozen=True)
class LengthChoice:
    max_length: int
    source: str  # how it was chosen, in words

    def to_dict(self) -> dict:
        return {"max_length": self.max_length, "max_length_source": self.source}


def token_lengths(tokenizer, texts: list[str], pairs: list[str] | None) -> np.ndarray:
    """Tokens of each text (with its pair), special tokens included, uncut."""
    encoded = tokenizer(texts, pairs, truncation=False, verbose=False)["input_ids"]
    return np.asarray([len(ids) for ids in encoded], dtype=np.int64)


def position_limit(model_config: dict, tokenizer) -> int | None:
    """The most tokens the model takes: the smaller of its positions and the
    tokenizer's own maximum (when that is a real number: RoBERTa-like models have two
    positions fewer than embeddings)."""
    limits = [positions_of(model_config)]
    if getattr(tokenizer, "model_max_length", 0) < 1_000_000:
        limits.append(tokenizer.model_max_length)
    limits = [int(limit) for limit in limits if limit]
    return min(limits) if limits else None


def choose_max_length(
    configured: int | None, lengths: np.ndarray, limit: int | None
) -> LengthChoice:
    """``configured`` as it is, or the data's 95th percentile (rounded up to a multiple of 8)
    capped by ``limit``."""
    if configured is not None:
        return LengthChoice(configured, "task.max_length")
    wanted = int(math.ceil(np.quantile(lengths, COVERED) / 8) * 8) if len(lengths) else 128
    source = f"data: {COVERED:.0%} of the train rows' tokenized lengths"
    if limit is not None and wanted > limit:
        return LengthChoice(limit, f"{source} ({wanted}), capped by the model's {limit} positions")
    return LengthChoice(wanted, source)


def truncation_facts(lengths: np.ndarray, max_length: int) -> dict:
    """How many held-out texts ``max_length`` cuts, and their longest."""
    cut = int((lengths > max_length).sum())
    return {
        "eval_truncated": cut,
        "eval_truncated_share": cut / len(lengths) if len(lengths) else 0.0,
        "eval_tokens_p95": float(np.quantile(lengths, COVERED)) if len(lengths) else 0.0,
        "eval_tokens_max": int(lengths.max()) if len(lengths) else 0,
    }


def truncation_note(facts: dict) -> str | None:
    """A note when ``max_length`` cuts more than ``CUT_NOTE`` of the held-out texts."""
    share = facts.get("eval_truncated_share")
    if share is None or share <= CUT_NOTE:
        return None
    return (
        f"task.max_length={facts['max_length']} cuts {share:.0%} of the held-out texts "
        f"(95th percentile {facts['eval_tokens_p95']:.0f} tokens): quality is measured on "
        "their beginnings; task.max_length=null fits the length to the data"
    )
