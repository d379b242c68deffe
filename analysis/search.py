"""The trials of a search sweep (``hydra/sweeper=search``, its ``search.json``): what each
proposal became, and whether the recipe it ran is on the report's Pareto front.

Every job a search ran is an ordinary job of the analysis, so the recipe table, the best-recipe
rule and the Pareto front above already cover them all; this section adds what ran nothing
(refused recipes, repeated proposals) and which of the report's recipes came from which trial.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from analysis.load import Runs
from analysis.pareto import FRONT, recipe_labels
from analysis.render import Block, Heading, Table, Text

SEARCH = "search.json"


def search_files(runs: Runs) -> list[Path]:
    """The ``search.json`` of every sweep the analysed jobs belong to."""
    sweeps = dict.fromkeys(Path(job).parent for job in runs.table["job"])
    return [sweep / SEARCH for sweep in sweeps if (sweep / SEARCH).is_file()]


def _job_recipes(runs: Runs) -> dict[Path, str]:
    labels = recipe_labels(runs.ok, runs.factors)
    return {Path(runs.ok.at[i, "job"]): labels[i] for i in runs.ok.index}


def trials_table(path: Path, runs: Runs, recipes: pd.DataFrame) -> pd.DataFrame:
    """One row per trial that ran a job or was refused (repeats are counted, not listed)."""
    search = json.loads(path.read_text())
    names = [f"{o['direction']} {o['key']}" for o in search["objectives"]]
    by_job = _job_recipes(runs)
    rows = []
    for trial in search["trials"]:
        if trial["state"] == "repeat":
            continue
        job = trial["job"]
        recipe = by_job.get((path.parent / str(job)).resolve()) if job is not None else None
        front = recipe is not None and bool(recipes[FRONT].get(recipe, False))
        values = trial["values"] or [None] * len(names)
        rows.append({
            "trial": trial["number"], "state": trial["state"],
            "job": "" if job is None else str(job), **trial["params"],
            **dict(zip(names, values, strict=True)), "on the front": "yes" if front else "",
            "reason": trial["reason"] or "",
        })  # fmt: skip
    return pd.DataFrame(rows).set_index("trial") if rows else pd.DataFrame()


def _summary(path: Path, search: dict) -> str:
    settings, counts = search["settings"], search.get("counts", {})
    recipes = search.get("recipes")
    space = f"{recipes} recipes" if recipes is not None else "a continuous space"
    objectives = ", ".join(f"{o['direction']} ratios.{o['key']}" for o in search["objectives"])
    told = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    return (
        f"`{path.parent.name}`: {settings['sampler']} sampler, seed {settings['seed']}, "
        f"{search.get('jobs', 0)} jobs over {space}; objectives: {objectives}. Proposals: "
        f"{told or 'none'} (a repeat proposes a recipe already tried and runs nothing; a "
        "refused or failed recipe was told to the study as failed). Every job it ran is a "
        "recipe of the tables above: the best-recipe rule and the Pareto front cover them all; "
        "'on the front' marks the recipes on the report's front (quality, latency, size)."
    )


def search_section(runs: Runs, recipes: pd.DataFrame) -> list[Block]:
    """The report's section on the searches among the analysed sweeps (none: no section)."""
    blocks: list[Block] = []
    for path in search_files(runs):
        search = json.loads(path.read_text())
        blocks += [Heading(f"Search: {path.parent.name}"), Text(_summary(path, search))]
        table = trials_table(path, runs, recipes)
        if len(table):
            blocks.append(Table(table))
    return blocks
