"""Whether the jobs of a report can be compared with one baseline at all: every recipe is paired
with the baseline item by item, so one report holds one baseline (model, task, data) and one
evaluation set. Sweeps over several are refused in one line: analyse each on its own."""

from __future__ import annotations

import pandas as pd

from analysis import AnalysisError
from analysis.load import Runs, level_label

BASELINE_KEY = "pairing.baseline_key"
FINGERPRINT = "pairing.eval_fingerprint"
# Records without ``pairing`` (older sweeps): the factors that change the baseline.
STRATA = ("model", "model.name_or_path", "task")


def _distinct(ok: pd.DataFrame, column: str) -> list[str]:
    if column not in ok:
        return []
    return sorted(ok[column].dropna().map(level_label).unique())


def _strata(runs: Runs) -> list[str]:
    """Factors of an older sweep that change the baseline or the evaluation items."""
    return [f for f in runs.factors if f in STRATA or f.startswith(("task.data", "model."))]


def check_pairing(runs: Runs) -> None:
    """An AnalysisError naming what differs when the ok jobs compare against more than one
    baseline or were evaluated on different items."""
    ok = runs.ok
    baselines = _distinct(ok, BASELINE_KEY)
    if len(baselines) > 1:
        raise AnalysisError(
            f"these jobs compare against {len(baselines)} different baselines "
            f"({', '.join(baselines)}): a report pairs the recipes of one (model, task, data); "
            "analyse each separately"
        )
    fingerprints = _distinct(ok, FINGERPRINT)
    if len(fingerprints) > 1:
        raise AnalysisError(
            f"these jobs were evaluated on {len(fingerprints)} different item sets "
            f"(pairing.eval_fingerprint {', '.join(fingerprints)}): their items cannot be "
            "paired; analyse each evaluation set separately"
        )
    strata = _strata(runs) if not baselines else []
    if strata:
        levels = "; ".join(f"{f}={', '.join(_distinct(ok, f))}" for f in strata)
        raise AnalysisError(
            f"these jobs vary {', '.join(strata)} ({levels}): each has its own baseline and "
            "items, so a report pairs the recipes of one (model, task, data); analyse each "
            "separately"
        )
