"""Text for the causal-LM tasks from any table: running text for perplexity, and prompts
with their reference answers for generation."""

from __future__ import annotations

from dataclasses import dataclass

from compress.config.task import DataConfig
from compress.data.tables import DataError, load_data, text_values


@dataclass(frozen=True)
class LMText:
    eval: str  # scored
    calibration: str  # never scored


def lm_text(data: DataConfig) -> LMText:
    """Rows of ``data.text_column`` joined by blank lines: held out is the eval split, or
    else the second half of the rows (the first half calibrates)."""
    loaded = load_data(data)
    rows = text_values(loaded.train, "text_column", data.text_column, loaded.source)
    if loaded.eval is not None:
        held_out = text_values(loaded.eval, "text_column", data.text_column, loaded.source)
        calibration = rows
    else:
        calibration, held_out = rows[: len(rows) // 2], rows[len(rows) // 2 :]
    if not held_out or not calibration:
        raise DataError(f"{loaded.source} has {len(rows)} text rows: none left to hold out "
                        "or to calibrate on", "two or more rows of text")  # fmt: skip
    return LMText(eval="\n\n".join(held_out), calibration="\n\n".join(calibration))


def prompts_with_references(data: DataConfig) -> dict[str, tuple[str, ...]]:
    """Each distinct prompt (``text_column``, in order of appearance) with every reference
    answer (``reference_column``) the data gives it."""
    loaded = load_data(data)
    if not data.reference_column:
        raise DataError("task.data.reference_column is not set", "the column of answers")
    frame = loaded.train
    prompts = text_values(frame, "text_column", data.text_column, loaded.source)
    answers = text_values(frame, "reference_column", data.reference_column, loaded.source)
    if len(prompts) != len(answers):
        frame = frame.dropna(subset=[data.text_column, data.reference_column])
        prompts, answers = frame[data.text_column].tolist(), frame[data.reference_column].tolist()
    references: dict[str, list[str]] = {}
    for prompt, answer in zip(prompts, answers, strict=True):
        if prompt.strip() and answer.strip():
            references.setdefault(prompt.strip(), []).append(answer.strip())
    return {prompt: tuple(found) for prompt, found in references.items()}
