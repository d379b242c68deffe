"""Every recipe against the baseline with its uncertainty, and the best recipe by
non-inferiority.

The intervals are the ones each job recorded (``ratios.intervals``: paired bootstraps over the
evaluation items and the timing rounds), McNemar's test its ``ratios.tests.mcnemar``. A recipe
is chosen only when the worse end of its quality interval stays within the allowed drop: a
point estimate inside the limit with a wide interval is no evidence that the recipe is as good
as the baseline. Records of older sweeps hold no intervals; then the choice falls back to the
point estimates (``analysis.pareto.best_recipe``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.pareto import TOLERANCE, recipe_labels
from analysis.responses import LATENCY, SIZE, baseline_column, metric_of
from compress.record import Comparison, QualityMetric
from compress.stats.paired import holm, min_detectable_difference

INTERVALS = "ratios.intervals."
MCNEMAR = "ratios.tests.mcnemar."
# Corpus BLEU (ratios.bleu_delta) has no per-prompt form: jobs record sentence BLEU's interval.
INTERVAL_KEYS = {"bleu_delta": "sentence_bleu_delta"}
POWER = 0.8
MB = 1e6

RUNS, SIZE_MB, SIZE_RATIO, LATENCY_MS = "runs", "size (MB)", "size ratio", "latency p50 (ms)"
SPEED = ("latency ratio", "latency ratio low", "latency ratio high")
DELTA = ("delta", "delta low", "delta high")
DROP, DROP_HIGH = "drop", "drop upper bound"
P, HOLM, DISCORDANT, ITEMS = "McNemar p", "Holm p", "discordant", "items"


@dataclass(frozen=True)
class Headline:
    """The quality metric recipes are compared on, and where its record fields live."""

    column: str  # compressed.quality.accuracy
    metric: QualityMetric

    @property
    def interval(self) -> str:
        key = self.metric.ratio_key
        return INTERVALS + INTERVAL_KEYS.get(key, key)

    @property
    def ratio(self) -> bool:
        return self.metric.compared_by == Comparison.ratio

    @property
    def reference(self) -> float:
        """The comparison's value when compression changed nothing."""
        return 1.0 if self.ratio else 0.0

    @property
    def sign(self) -> float:
        """+1 where a higher comparison is better (scores), -1 where lower is (losses)."""
        return 1.0 if self.metric.higher_is_better else -1.0

    def at_drop(self, drop: float) -> float:
        """The comparison's value at a given quality drop (a delta of -drop for a score, a
        ratio of 1 + drop for a loss)."""
        return self.reference - self.sign * drop

    @property
    def name(self) -> str:
        """What the delta columns hold: ``Δ accuracy``, ``perplexity ratio``."""
        key = self.interval.removeprefix(INTERVALS)
        return f"{key} ratio" if self.ratio else f"Δ {key.removesuffix('_delta')}"

    @property
    def symbol(self) -> str:
        """``Δ`` or ``ratio`` beside the metric's own value; the full name when the interval
        is of a related figure (sentence BLEU for corpus BLEU)."""
        if self.interval != INTERVALS + self.metric.ratio_key:
            return self.name
        return "ratio" if self.ratio else "Δ"


def headline_of(quality: str | None, columns: pd.Index) -> Headline | None:
    """The headline of ``quality`` when it is a declared metric with a baseline value."""
    metric = None if quality is None else metric_of(quality)
    if metric is None or baseline_column(quality) not in columns:
        return None
    return Headline(quality, metric)


@dataclass(frozen=True)
class Choice:
    """The fastest recipe provably within the allowed drop, or else the closest to it."""

    recipe: str | None
    closest: str | None = None  # when no recipe is: the smallest upper bound of the drop

    @property
    def named(self) -> str:
        return self.recipe or self.closest


@dataclass(frozen=True)
class Power:
    """The smallest accuracy drop McNemar's test detects at 80% power on these items."""

    recipe: str  # whose discordance it assumes
    role: str  # of that recipe: "chosen" or "closest"
    items: int
    discordance: float
    drop: float  # math.inf when no drop is detectable

    @property
    def reach(self) -> str:
        if math.isinf(self.drop):
            return "no accuracy drop: too few items change their answer to reach that power"
        return f"accuracy drops of {self.drop:.3g} or more"

    @property
    def basis(self) -> str:
        return f"the {self.discordance:.1%} discordance of the {self.role} recipe ({self.recipe})"


@dataclass
class Conclusions:
    headline: Headline | None
    table: pd.DataFrame  # one row per recipe, columns named by the constants above
    baseline: pd.Series  # runs, size, latency, quality: means over the ok jobs
    confidence: float  # of the recorded intervals
    choice: Choice | None  # None without quality intervals: point estimates decide
    power: Power | None  # classification only

    @property
    def intervals(self) -> bool:
        """Whether any recipe has a recorded interval, of quality or latency."""
        bounds = [c for c in (SPEED[1], DELTA[1]) if c in self.table]
        return bool(self.table[bounds].notna().any().any())


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame:
        return pd.Series(np.nan, index=frame.index)
    return pd.to_numeric(frame[name], errors="coerce").astype(float)


def _interval(ok: pd.DataFrame, key: str) -> list[pd.Series]:
    return [_column(ok, f"{key}.{part}") for part in ("estimate", "low", "high")]


def _quality(ok: pd.DataFrame, headline: Headline) -> dict[str, pd.Series]:
    """The compressed model's quality, its comparison with the baseline (the interval's own
    estimate where recorded) and McNemar's test, per job."""
    compressed = _column(ok, headline.column)
    baseline = _column(ok, baseline_column(headline.column))
    point = compressed / baseline if headline.ratio else compressed - baseline
    estimate, low, high = _interval(ok, headline.interval)
    mcnemar = {P: "p_value", DISCORDANT: "discordant", ITEMS: "n"}
    return {
        headline.column: compressed,
        **dict(zip(DELTA, (estimate.fillna(point), low, high), strict=True)),
        **{name: _column(ok, MCNEMAR + field) for name, field in mcnemar.items()},
    }


def per_job(ok: pd.DataFrame, headline: Headline | None) -> pd.DataFrame:
    """The comparison figures of each job; NaN where its record lacks them (older sweeps)."""
    _, low, high = _interval(ok, INTERVALS + "latency_p50")
    values = {
        SIZE_MB: _column(ok, SIZE) / MB,
        SIZE_RATIO: _column(ok, "ratios.disk_bytes"),
        LATENCY_MS: _column(ok, LATENCY),
        **dict(zip(SPEED, (_column(ok, "ratios.latency_p50"), low, high), strict=True)),
    }
    return pd.DataFrame(values | (_quality(ok, headline) if headline else {}), index=ok.index)


def drops(table: pd.DataFrame, headline: Headline) -> tuple[pd.Series, pd.Series]:
    """Quality lost against the baseline and the upper confidence bound of that loss: the
    absolute drop of a score (-delta), the relative rise of a loss (ratio - 1); the bound comes
    from the interval's worse end. The inverse of ``Headline.at_drop``."""
    worse = table[DELTA[1] if headline.metric.higher_is_better else DELTA[2]]
    reference, sign = headline.reference, headline.sign
    return sign * (reference - table[DELTA[0]]), sign * (reference - worse)


def _holm(p: pd.Series) -> pd.Series:
    tested = p.dropna()
    return pd.Series(holm(tested.tolist()), index=tested.index).reindex(p.index)


def recipe_table(ok: pd.DataFrame, factors: list[str], headline: Headline | None) -> pd.DataFrame:
    """One row per recipe: means over its runs, except McNemar's p, the largest of its runs
    (a conservative summary: averaging p-values has no meaning); Holm-adjusted p over all
    recipes, the family of this report's comparisons with the baseline."""
    values = per_job(ok, headline)
    grouped = values.groupby(recipe_labels(ok, factors), sort=False)
    table = grouped.mean()
    table.insert(0, RUNS, grouped.size())
    if headline is not None:
        table[P] = grouped[P].max()
        table[HOLM] = _holm(table[P])
        table[DROP], table[DROP_HIGH] = drops(table, headline)
    table.index.name = "recipe"
    return table


def baseline_row(ok: pd.DataFrame, headline: Headline | None) -> pd.Series:
    """The uncompressed model, averaged over the jobs (each measured it anew)."""
    row = {
        RUNS: len(ok),
        SIZE_MB: _column(ok, baseline_column(SIZE)).mean() / MB,
        SIZE_RATIO: 1.0,
        LATENCY_MS: _column(ok, baseline_column(LATENCY)).mean(),
        SPEED[0]: 1.0,
    }
    if headline is not None:
        row[headline.column] = _column(ok, baseline_column(headline.column)).mean()
    return pd.Series(row, name="baseline")


def non_inferior(table: pd.DataFrame, max_drop: float) -> Choice | None:
    """The fastest (then smallest) recipe whose drop's upper bound is within ``max_drop``; if
    none is, the one with the smallest upper bound as the closest. None without bounds."""
    bounds = table[DROP_HIGH].dropna() if DROP_HIGH in table else pd.Series(dtype=float)
    if bounds.empty:
        return None
    within = table.loc[bounds.index[bounds <= max_drop + TOLERANCE]]
    if len(within):
        return Choice(within.sort_values([LATENCY_MS, SIZE_MB]).index[0])
    return Choice(None, bounds.idxmin())


def detectable_drop(table: pd.DataFrame, choice: Choice, alpha: float) -> Power | None:
    """The power of this eval set, from the discordance McNemar's test saw for the chosen (or
    else the closest) recipe: the more items the two models disagree on, the noisier."""
    recipe, role = choice.named, "chosen" if choice.recipe else "closest"
    n = table.at[recipe, ITEMS] if ITEMS in table else np.nan
    if not n > 0:
        return None
    items, discordance = round(n), table.at[recipe, DISCORDANT] / n
    drop = min_detectable_difference(items, discordance, alpha, POWER)
    return Power(recipe, role, items, discordance, drop)


def _confidence(ok: pd.DataFrame, headline: Headline | None) -> float:
    key = headline.interval if headline else INTERVALS + "latency_p50"
    recorded = _column(ok, f"{key}.confidence").dropna()
    return float(recorded.iloc[0]) if len(recorded) else 0.95


def conclude(
    ok: pd.DataFrame, factors: list[str], quality: str | None, max_drop: float, alpha: float
) -> Conclusions:
    headline = headline_of(quality, ok.columns)
    table = recipe_table(ok, factors, headline)
    choice = non_inferior(table, max_drop)
    power = None if choice is None else detectable_drop(table, choice, alpha)
    baseline = baseline_row(ok, headline)
    return Conclusions(headline, table, baseline, _confidence(ok, headline), choice, power)
