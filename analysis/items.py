"""Per-item outcomes and timing rounds of the successful jobs, as long tables over the sweep.

Recent jobs write, beside ``metrics.json``, ``items.parquet`` (both models' outcomes on every
held-out item) and ``rounds.parquet`` (both models' milliseconds in every timing round). Jobs
of older sweeps have neither: they are simply absent from these tables, and the report falls
back to their records' point estimates."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow

from analysis import AnalysisError
from compress.record import ITEMS, ROUNDS

# The columns that make an items table a classification one.
CLASSIFICATION = ("item", "label", "baseline_prediction", "compressed_prediction")
SCORE = "_score_"  # class k's probability: baseline_score_k, compressed_score_k


@dataclass
class Outcomes:
    """The item and round tables of the ok jobs that wrote them, by job folder."""

    items: dict[str, pd.DataFrame] = field(default_factory=dict)
    rounds: dict[str, pd.DataFrame] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)  # why a table was left out

    @property
    def classification(self) -> bool:
        """Whether every job with items holds classification items (labels, predictions)."""
        tables = self.items.values()
        return bool(self.items) and all(set(CLASSIFICATION) <= set(t.columns) for t in tables)

    @property
    def classes(self) -> int:
        """Number of classes: the class-score columns of one model, or the labels seen."""
        table = next(iter(self.items.values()))
        scores = [c for c in table.columns if c.startswith(f"compressed{SCORE}")]
        if scores:
            return len(scores)
        tables = self.items.values()
        return 1 + max(int(t[list(CLASSIFICATION[1:])].max().max()) for t in tables)


def _read(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, pyarrow.ArrowException) as error:
        raise AnalysisError(f"corrupt {path}: {str(error).splitlines()[0]}") from error


def load_outcomes(ok: pd.DataFrame) -> Outcomes:
    """The tables of each successful job (``ok``: rows of the runs table) that has them; an
    unreadable table is left out with the reason, as if the job had not written it."""
    outcomes = Outcomes()
    for job in ok["job"]:
        for name, tables in ((ITEMS, outcomes.items), (ROUNDS, outcomes.rounds)):
            try:
                table = _read(Path(job) / name)
            except AnalysisError as error:
                outcomes.unreadable.append(str(error))
                continue
            if table is not None:
                tables[job] = table
    return outcomes


def long_table(tables: dict[str, pd.DataFrame], ok: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Every job's table stacked, each row with its job and the job's ``keys`` columns of
    ``ok`` (factor levels, recipe label)."""
    levels = ok.set_index("job")[keys]
    frames = [
        table.assign(job=job, **levels.loc[job].to_dict())
        for job, table in tables.items()
        if job in levels.index
    ]
    return pd.concat(frames, ignore_index=True)


def correctness(outcomes: Outcomes, ok: pd.DataFrame, factors: list[str]) -> pd.DataFrame:
    """One row per classification item and job: ``job``, the factors, ``item`` and
    ``correct`` (the compressed model's prediction equals the label)."""
    long = long_table(outcomes.items, ok, factors)
    long["correct"] = long["compressed_prediction"] == long["label"]
    return long[["job", *factors, "item", "correct"]]


def timings(outcomes: Outcomes, ok: pd.DataFrame, factors: list[str]) -> pd.DataFrame:
    """One row per timing round and job: ``job``, the factors, ``round``, ``baseline_ms`` and
    ``compressed_ms`` (both models' times in that round)."""
    long = long_table(outcomes.rounds, ok, factors)
    return long[["job", *factors, "round", "baseline_ms", "compressed_ms"]]


def side(items: pd.DataFrame, model: str) -> pd.DataFrame:
    """One model's view of classification items: ``label``, ``prediction``, ``score_k``."""
    prefix = f"{model}_"
    scores = [c for c in items.columns if c.startswith(f"{model}{SCORE}")]
    names = {c: c.removeprefix(prefix) for c in [f"{prefix}prediction", *scores]}
    return items[["label", *names]].rename(columns=names)


def by_recipe(outcomes: Outcomes, ok: pd.DataFrame, recipes: pd.Series) -> dict[str, pd.DataFrame]:
    """The baseline's items, then each recipe's (``recipes``: its label per row of ``ok``)
    pooled over its runs, each as ``side`` gives them. Every job evaluates the same baseline
    on the same items, so the first job's baseline stands for all."""
    long = long_table(outcomes.items, ok.assign(recipe=recipes), ["recipe"])
    groups = {"baseline": side(next(iter(outcomes.items.values())), "baseline")}
    for recipe, items in long.groupby("recipe", sort=False):
        groups[recipe] = side(items, "compressed")
    return groups
