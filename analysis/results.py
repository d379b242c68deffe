"""Options of a run of the analysis, and everything it computes before writing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis import AnalysisError
from analysis.anova import Anova, fit_anova
from analysis.baseline import unlearned
from analysis.comparison import Conclusions, conclude
from analysis.item_tests import ItemTest, item_tests
from analysis.items import Outcomes, load_outcomes
from analysis.load import Runs, load_runs
from analysis.pairing import check_pairing
from analysis.pareto import best_recipe, recipes
from analysis.responses import QUALITY, default_responses, quality_metric, resolve


@dataclass
class Options:
    paths: list[Path]
    out: Path | None = None
    responses: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    typ: int = 2
    alpha: float = 0.05
    max_quality_drop: float = 0.01
    strict: bool = False  # a corrupt job record is an error, not a row of status "corrupt"


@dataclass
class Results:
    runs: Runs
    anovas: list[Anova]
    quality: str | None  # the quality metric of the Pareto front and the constraint
    recipes: pd.DataFrame
    best: pd.Series | None  # by point estimates, for records without intervals
    conclusions: Conclusions
    outcomes: Outcomes
    item_tests: dict[str, ItemTest]
    unlearned: str | None = None  # why no quality conclusion can be drawn (analysis.baseline)


def analyse(options: Options) -> Results:
    runs = load_runs(options.paths, options.strict)
    check_pairing(runs)
    columns = runs.table.columns
    gate = unlearned(runs.ok)
    responses = [resolve(n, columns) for n in options.responses] or [
        r for r in default_responses(columns) if not (gate and r.startswith(QUALITY))
    ]
    if not responses:
        raise AnalysisError("no response to analyse: pass --response with a column of runs.csv")
    for response in responses:
        if not pd.api.types.is_numeric_dtype(runs.ok[response]):
            raise AnalysisError(f"response {response} is not numeric")
    logged = {resolve(n, columns) for n in options.log}
    if not logged <= set(responses):
        raise AnalysisError(f"--log {' '.join(options.log)}: only analysed responses can be logged")
    anovas = [
        fit_anova(
            runs.ok,
            response,
            runs.factors,
            typ=options.typ,
            alpha=options.alpha,
            log=response in logged,
            aliases=runs.aliases,
        )
        for response in responses
    ]
    quality = next((r for r in responses if r.startswith(QUALITY)), quality_metric(columns))
    quality = None if gate else quality
    table = recipes(runs.ok, runs.factors, quality)
    best = best_recipe(table, options.max_quality_drop)
    conclusions = conclude(runs.ok, runs.factors, quality, options.max_quality_drop, options.alpha)
    outcomes = load_outcomes(runs.ok)
    tests = item_tests(runs, outcomes, responses)
    return Results(runs, anovas, quality, table, best, conclusions, outcomes, tests, gate)
