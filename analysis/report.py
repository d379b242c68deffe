"""Everything ``python -m analysis`` writes: runs.csv, the figures, report.md and report.html."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from analysis import plots
from analysis.anova import Anova
from analysis.load import EXCLUDED, Runs, level_label, ordered_levels
from analysis.pareto import FRONT, RUNS
from analysis.render import Block, Bullets, Heading, Image, Table, Text, markdown, page
from analysis.responses import LATENCY, SIZE, cli_name, label
from analysis.results import Options, Results, analyse
from analysis.search import search_section
from analysis.sections import item_figures, item_model_blocks, recipes_section
from analysis.summary import response_name, summary
from compress.pipeline.tracking import log_report

ANOVA_COLUMNS = {
    "df": "df",
    "sum_sq": "sum of squares",
    "mean_sq": "mean square",
    "F": "F",
    "PR(>F)": "p",
    "eta_sq": "eta²",
    "partial_eta_sq": "partial eta²",
}
SUMS_OF_SQUARES = {
    2: "type II sums of squares",
    3: "type III sums of squares, sum-to-zero contrasts",
}
EFFECT_SIZES = "eta² = SS(term) / SS(total); partial eta² = SS(term) / (SS(term) + SS(residual))."
PARETO_COLUMNS = {
    RUNS: "runs",
    "ratios.latency_p50": "latency ratio",
    "ratios.disk_bytes": "size ratio",
    FRONT: "on the front",
}


def _slug(name: str) -> str:
    return re.sub(r"\W+", "_", name).strip("_")


def _excluded(table: pd.DataFrame) -> Table:
    """Failed and missing jobs with their reasons, named relative to their sweeps' parent."""
    common = os.path.commonpath([Path(job).parent for job in table["job"]])
    excluded = table[table["status"] != "ok"]
    jobs = [os.path.relpath(job, common) for job in excluded["job"]]
    return Table(excluded.assign(job=jobs).set_index("job")[["status", "reason"]])


def _design(runs: Runs) -> list[Block]:
    ok, factors = runs.ok, runs.factors
    if not factors:
        return [Text("No factor varies across the successful runs.")]
    sizes = ok.groupby(factors, dropna=False).size()
    each = f"{sizes.min()}" if sizes.min() == sizes.max() else f"{sizes.min()} to {sizes.max()}"
    blocks: list[Block] = [
        Text(f"Factors and their levels ({len(sizes)} recipes, {each} run(s) each):"),
        Bullets([f"{f}: {', '.join(ordered_levels(ok[f]))}" for f in factors]),
    ]
    if runs.aliases:
        blocks.append(Text("Aliased effects of the fractional design (design.json):"))
        blocks.append(Bullets([" = ".join(group) for group in runs.aliases]))
    return blocks


def _runs_section(runs: Runs) -> list[Block]:
    counts = runs.table["status"].value_counts()
    found = ", ".join(f"{counts[s]} {s}" for s in ("ok", *EXCLUDED) if s in counts)
    blocks: list[Block] = [
        Heading("Runs"),
        Text(
            f"{len(runs.table)} jobs: {found}. Jobs without an ok record are left out of the "
            "fits; every job is a row of runs.csv."
        ),
    ]
    if counts.get("ok", 0) < len(runs.table):
        blocks.append(_excluded(runs.table))
    blocks += _design(runs)
    if runs.fixed:
        fixed = ", ".join(f"`{k}={level_label(v)}`" for k, v in runs.fixed.items())
        blocks.append(Text(f"Fixed settings (overridden, the same in every run): {fixed}."))
    return blocks


def _anova_table(anova: Anova) -> Table:
    names = {t: " = ".join([t, *a]) + " (aliased)" for t, a in anova.aliases.items()}
    frame = anova.table.rename(index=names, columns=ANOVA_COLUMNS)
    frame.index.name = "term"
    return Table(frame)


def _figures(anova: Anova, runs: Runs, out: Path) -> list[Block]:
    response, log, slug = anova.response, anova.log, _slug(cli_name(anova.response))
    data = runs.ok.dropna(subset=[response])
    factors = [f for f in runs.factors if data[f].map(level_label).nunique() > 1]
    if not factors:
        return []
    path = out / f"main_effects_{slug}.png"
    blocks: list[Block] = [
        Image(plots.main_effects(data, response, factors, path, log), f"Main effects: {slug}")
    ]
    for i, a in enumerate(factors):
        for b in factors[i + 1 :]:
            path = out / f"interaction_{slug}_{_slug(a)}_x_{_slug(b)}.png"
            image = plots.interaction(data, response, (a, b), path, log)
            blocks.append(Image(image, f"Interaction {a} × {b}: {slug}"))
    if anova.residuals is not None:
        path = plots.qq(anova.residuals, response_name(anova), out / f"qq_{slug}.png")
        blocks.append(Image(path, f"Normal Q-Q plot of the residuals: {slug}"))
    return blocks


def _response_section(anova: Anova, results: Results, options: Options, out: Path) -> list[Block]:
    df = "" if anova.table is None else f", residual df = {anova.table.at['Residual', 'df']:g}"
    blocks: list[Block] = [
        Heading(f"Response: {response_name(anova)}"),
        Text(f"Model `{anova.formula}`, {SUMS_OF_SQUARES[options.typ]}, n = {anova.n}{df}."),
    ]
    blocks += [Bullets(anova.notes)] if anova.notes else []
    if anova.table is not None:
        blocks.append(_anova_table(anova))
        blocks.append(Text(EFFECT_SIZES))
    blocks += item_model_blocks(anova.response, results)
    for factor, tukey in anova.tukey.items():
        blocks.append(
            Text(
                f"Tukey HSD for {factor}: differences of its level means, "
                f"family-wise alpha = {options.alpha:g}."
            )
        )
        blocks.append(Table(tukey.set_index("comparison")))
    if anova.checks is not None and len(anova.checks):
        blocks.append(Text("ANOVA assumptions, tested on the residuals:"))
        blocks.append(Table(anova.checks.set_index("test")))
    blocks += [Bullets([f"Warning: {w}" for w in anova.warnings])] if anova.warnings else []
    return blocks + _figures(anova, results.runs, out)


def _pareto_section(results: Results, out: Path) -> list[Block]:
    table = results.recipes.reset_index()
    table.index = pd.RangeIndex(1, len(table) + 1, name="#")
    table[FRONT] = table[FRONT].map({True: "yes", False: ""})
    names = {c: label(c) for c in (results.quality, LATENCY, SIZE) if c is not None}
    figure = plots.pareto(results.recipes, results.quality, out / "pareto.png")
    blocks: list[Block] = [
        Heading("Pareto front: quality, latency and size"),
        Text(
            "A recipe is on the front when no other recipe is at least as good on every "
            "objective and better on one. Values are means over the recipe's runs; ratios are "
            "compressed / baseline within each job."
        ),
        Table(table.rename(columns=names | PARETO_COLUMNS)),
    ]
    if figure is not None:
        blocks.append(Image(figure, "Recipes on the Pareto front (red) and dominated ones (grey)"))
    return blocks


def write_report(options: Options) -> tuple[Path, str]:
    """Analyse the runs under ``options.paths``; returns the output folder and the summary."""
    results = analyse(options)
    out = options.out or options.paths[0] / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    results.runs.table.to_csv(out / "runs.csv", index=False)
    text = summary(results, options)
    title = "Sweep analysis: " + ", ".join(str(p) for p in options.paths)
    blocks: list[Block] = [Heading(title, 1), Text(text), *recipes_section(results, options)]
    blocks += _runs_section(results.runs)
    for anova in results.anovas:
        blocks += _response_section(anova, results, options, out)
    blocks += item_figures(results, options, out)
    blocks += _pareto_section(results, out)
    blocks += search_section(results.runs, results.recipes)
    (out / "report.md").write_text(markdown(blocks, out))
    (out / "report.html").write_text(page(blocks, title))
    for sweep in dict.fromkeys(Path(job).parent for job in results.runs.table["job"]):
        log_report(sweep, out)  # tracked sweeps (hydra/callbacks=mlflow): to the sweep's run
    return out, text
