"""The report's figures, one PNG each: main effects and interactions of every response, the
normal Q-Q plot of its residuals, and the Pareto front of the recipes."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, FuncFormatter, LogLocator
from scipy import stats

from analysis.load import level_label, ordered_levels
from analysis.pareto import FRONT
from analysis.responses import LATENCY, SIZE, label

matplotlib.use("Agg")
DPI = 100
ERRORBAR = ("se", 1)


def save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=DPI)
    return path


def _format(axis: Axis, values: pd.Series, log: bool = False) -> None:
    """Sizes in kB/MB; on a log axis plain numbers and minor ticks sparse enough to stay
    readable over several decades. Call after setting the scale, which resets both."""
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    formatter = EngFormatter(unit="B") if values.name == SIZE else plain
    if log:
        decades = np.log10(values.max() / values.min())
        subs = np.arange(2, 10) if decades < 1 else (2, 5) if decades < 3 else ()
        axis.set_minor_locator(LogLocator(subs=subs))
        axis.set_minor_formatter(formatter)
    if log or values.name == SIZE:
        axis.set_major_formatter(formatter)


def _levels(data: pd.DataFrame, factor: str) -> tuple[pd.Series, list[str]]:
    return data[factor].map(level_label), ordered_levels(data[factor])


def _mean(log: bool) -> str:
    # seaborn averages in the axis' scale: on a log axis its means are geometric means, the
    # means of the analysed log response
    return "geometric mean" if log else "mean"


def main_effects(
    ok: pd.DataFrame, response: str, factors: list[str], path: Path, log: bool
) -> Path:
    """Mean response at each level of each factor, beside the grand mean."""
    data = ok.dropna(subset=[response])
    values = data[response]
    figure = Figure(figsize=(0.6 + 3.2 * len(factors), 3.6), layout="constrained")
    axes = figure.subplots(1, len(factors), sharey=True, squeeze=False)[0]
    axes[0].set_yscale("log" if log else "linear")  # before plotting, for all shared axes
    grand = np.exp(np.log(values).mean()) if log else values.mean()
    for ax, factor in zip(axes, factors, strict=True):
        levels, order = _levels(data, factor)
        ax.axhline(grand, color="grey", linestyle="--", linewidth=1)
        sns.pointplot(x=levels, y=values, order=order, errorbar=ERRORBAR, ax=ax)
        ax.set(xlabel=factor, ylabel=label(response))
    _format(axes[0].yaxis, values, log)
    figure.suptitle(
        f"Main effects on {label(response)} ({_mean(log)} ± 1 s.e.; dashed: grand {_mean(log)})"
    )
    return save(figure, path)


def interaction(
    ok: pd.DataFrame, response: str, pair: tuple[str, str], path: Path, log: bool
) -> Path:
    """Mean response over the levels of one factor, one line per level of the other:
    parallel lines mean no interaction."""
    data = ok.dropna(subset=[response])
    (x, x_order), (hue, hue_order) = _levels(data, pair[0]), _levels(data, pair[1])
    figure = Figure(figsize=(5.2, 3.8), layout="constrained")
    ax = figure.subplots()
    ax.set_yscale("log" if log else "linear")
    sns.pointplot(
        x=x,
        y=data[response],
        hue=hue,
        order=x_order,
        hue_order=hue_order,
        errorbar=ERRORBAR,
        dodge=0.15,
        palette="colorblind",
        ax=ax,
    )
    ax.set(xlabel=pair[0], ylabel=label(response), title=f"{pair[0]} × {pair[1]} ({_mean(log)}s)")
    ax.legend(title=pair[1], fontsize="small")
    _format(ax.yaxis, data[response], log)
    return save(figure, path)


def qq(residuals: pd.Series, title: str, path: Path) -> Path:
    figure = Figure(figsize=(4.4, 4), layout="constrained")
    ax = figure.subplots()
    stats.probplot(residuals, dist="norm", plot=ax)
    ax.set_title(f"Normal Q-Q plot of the residuals\n{title}", fontsize="medium")
    return save(figure, path)


def pareto(table: pd.DataFrame, quality: str | None, path: Path) -> Path | None:
    """Every recipe; the non-dominated ones in colour and numbered as in the report's table.
    One panel per pair (x, quality) of the recorded objectives; None if fewer than two."""
    if quality in table:
        panels = [(x, quality) for x in (LATENCY, SIZE) if x in table]
    else:
        panels = [(SIZE, LATENCY)] if {SIZE, LATENCY} <= set(table.columns) else []
    if not panels:
        return None
    figure = Figure(figsize=(0.6 + 4.8 * len(panels), 4.2), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    front = table[FRONT].astype(bool)
    for ax, (x, y) in zip(axes, panels, strict=True):
        ax.scatter(
            table.loc[~front, x],
            table.loc[~front, y],
            color="lightgrey",
            edgecolor="grey",
            label="dominated",
        )
        ax.scatter(table.loc[front, x], table.loc[front, y], color="C3", label="Pareto front")
        for number, (_, row) in enumerate(table.iterrows(), start=1):
            if row[FRONT]:
                xy = (row[x], row[y])
                ax.annotate(str(number), xy, xytext=(4, 4), textcoords="offset points", fontsize=8)
        ax.set(xlabel=label(x), ylabel=label(y))
        _format(ax.xaxis, table[x])
        _format(ax.yaxis, table[y])
        ax.legend(fontsize="small")
    figure.suptitle("Recipes: quality vs latency vs size (numbers as in the Pareto table)")
    return save(figure, path)
