"""Every recipe against the baseline with its uncertainty, ranked by its paired latency ratio,
and the best recipe by non-inferiority with the error of that claim controlled.

A recipe's figures come from its runs' own data, never from averaged interval bounds: its
latency ratio is the geometric mean of its runs' paired ratios (one run: the interval over its
timing rounds; several: Student's t over the runs), its accuracy difference Tango's interval on
its runs' mean discordant counts (:mod:`compress.stats.replicates`). A recipe is faster only
when its latency interval lies below 1, and a recipe that changes nothing is the baseline.
The best recipe is the fastest one found non-inferior by the fixed-sequence procedure over the
recipes that are faster (:mod:`compress.stats.multiplicity`). Records of older sweeps hold no
intervals; then the choice falls back to the point estimates (``analysis.pareto.best_recipe``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.pareto import TOLERANCE, recipe_labels
from analysis.responses import LATENCY, QUALITY, SIZE, baseline_column, label, metric_of
from analysis.unchanged import unchanged
from compress.record import Comparison, QualityMetric
from compress.stats.multiplicity import fixed_sequence
from compress.stats.paired import Interval, holm, min_detectable_difference
from compress.stats.replicates import accuracy_over_runs, ratio_over_runs

INTERVALS = "ratios.intervals."
MCNEMAR = "ratios.tests.mcnemar."
# Corpus BLEU (ratios.bleu_delta) has no per-prompt form: jobs record sentence BLEU's interval,
# and that is the metric the non-inferiority test is about.
INTERVAL_KEYS = {"bleu_delta": "sentence_bleu_delta"}
TESTED_NAMES = {"sentence_bleu_delta": "sentence-BLEU (mean over prompts)"}
ACCURACY_INTERVAL = INTERVALS + "accuracy_delta"
POWER = 0.8
MB = 1e6
ONE_SIDED = 0.025  # of each non-inferiority test: the worse end of a two-sided 95% interval

RUNS, SIZE_MB, SIZE_RATIO, LATENCY_MS = "runs", "size (MB)", "size ratio", "latency p50 (ms)"
SPEED = ("latency ratio", "latency ratio low", "latency ratio high")
DELTA = ("delta", "delta low", "delta high")
DROP, DROP_HIGH = "drop", "drop upper bound"
P, HOLM, DISCORDANT, ITEMS = "McNemar p", "Holm p", "discordant", "items"
FLIPS, FASTER, UNCHANGED = "flips", "faster", "unchanged"
# Fidelity to the baseline beside the headline (causal LMs): the record's quality key, and the
# column base name in the recipe table (with " low" / " high" for its interval).
FIDELITY = {
    "kl_divergence": "KL",
    "top1_agreement": "top-1 agreement",
    "answers_changed": "answers changed",
}


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
        if key in TESTED_NAMES:
            return f"Δ {TESTED_NAMES[key]}"
        return f"{key} ratio" if self.ratio else f"Δ {key.removesuffix('_delta')}"

    @property
    def tested(self) -> str:
        """The metric the interval and the non-inferiority test are about: ``accuracy``, or
        ``sentence-BLEU (mean over prompts)`` beside a corpus-BLEU column."""
        key = self.interval.removeprefix(INTERVALS)
        return TESTED_NAMES.get(key, label(self.column))

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
    """The fastest recipe the fixed sequence found non-inferior, or else the closest to it.

    ``sequence``: the recipes tested, those faster than the baseline, slowest first;
    ``passed``: how many of them passed before the first failure."""

    recipe: str | None
    closest: str | None = None  # when no recipe is: the smallest upper bound of the drop
    sequence: tuple[str, ...] = ()
    passed: int = 0

    @property
    def named(self) -> str | None:
        return self.recipe or self.closest

    @property
    def stopped_at(self) -> str | None:
        """The recipe whose failure ended the sequence, if one did."""
        return self.sequence[self.passed] if self.passed < len(self.sequence) else None


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
    mcnemar = {P: "p_value", DISCORDANT: "discordant", ITEMS: "n", "b": "b", "c": "c"}
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


def best_case_drops(table: pd.DataFrame, headline: Headline) -> pd.Series:
    """The quality drop at the interval's better end: above the allowed drop, the recipe loses
    more than allowed even in the most favourable case its interval admits."""
    better = table[DELTA[2] if headline.metric.higher_is_better else DELTA[1]]
    return headline.sign * (headline.reference - better)


def _holm(p: pd.Series) -> pd.Series:
    tested = p.dropna()
    return pd.Series(holm(tested.tolist()), index=tested.index).reindex(p.index)


def _figures(interval: Interval | None) -> list[float]:
    if interval is None:
        return [np.nan] * 3
    return [interval.estimate, interval.low, interval.high]


def _one_run(runs: pd.DataFrame, columns: tuple[str, str, str]) -> list[float] | None:
    """The recorded figures of a single run, or of runs that all recorded the same ones
    (copies); None otherwise."""
    figures = runs[list(columns)].drop_duplicates()
    return figures.iloc[0].tolist() if len(figures) == 1 else None


def pooled_speed(runs: pd.DataFrame) -> list[float]:
    """A recipe's latency ratio and interval from its runs (rows of ``per_job``)."""
    if len(runs) == 1:
        return runs[list(SPEED)].iloc[0].tolist()
    ratios = runs[SPEED[0]]
    if ratios.isna().any() or (ratios <= 0).any():
        return [np.nan] * 3
    return _figures(ratio_over_runs(ratios))


def pooled_quality(runs: pd.DataFrame, headline: Headline) -> list[float]:
    """A recipe's quality comparison and interval from its runs: accuracy from their
    discordant counts (Tango), another metric from a single run or identical runs."""
    counts = runs[["b", "c", ITEMS]]
    if headline.interval == ACCURACY_INTERVAL and counts.notna().all().all():
        if runs[ITEMS].nunique() == 1:
            return _figures(accuracy_over_runs(runs["b"], runs["c"], int(runs[ITEMS].iloc[0])))
    return _one_run(runs, DELTA) or [runs[DELTA[0]].mean(), np.nan, np.nan]


def fidelity_columns(name: str) -> tuple[str, str, str]:
    return name, f"{name} low", f"{name} high"


def _fidelity(ok: pd.DataFrame, recipes: pd.Series) -> pd.DataFrame:
    """Per recipe, each recorded fidelity figure with its interval (a single run's, or the
    same of identical runs); the mean over runs, without interval, otherwise."""
    frames = []
    for key, name in FIDELITY.items():
        if QUALITY + key not in ok:
            continue
        columns = fidelity_columns(name)
        estimate, low, high = _interval(ok, INTERVALS + key)
        values = pd.DataFrame(
            dict(zip(columns, (estimate.fillna(_column(ok, QUALITY + key)), low, high),
                     strict=True)), index=ok.index,
        )  # fmt: skip
        pooled = {
            recipe: _one_run(runs, columns) or [runs[name].mean(), np.nan, np.nan]
            for recipe, runs in values.groupby(recipes, sort=False)
        }
        frames.append(pd.DataFrame.from_dict(pooled, orient="index", columns=list(columns)))
    return pd.concat(frames, axis=1) if frames else pd.DataFrame()


def recipe_table(ok: pd.DataFrame, factors: list[str], headline: Headline | None) -> pd.DataFrame:
    """One row per recipe, fastest first by its paired latency ratio: size and absolute
    latency are means over its runs (descriptions), the ratio and the quality comparison with
    their intervals come from the pooled runs; McNemar's p is the largest of its runs (a
    conservative summary: averaging p-values has no meaning), Holm-adjusted over all recipes,
    the family of this report's comparisons with the baseline; ``flips`` the mean share of
    items whose correctness changed; causal LMs add their fidelity to the baseline
    (``FIDELITY``: KL divergence and top-1 agreement of the next-token distributions, the
    share of changed answers) with its interval."""
    values = per_job(ok, headline).assign(**{UNCHANGED: unchanged(ok)})
    grouped = values.groupby(recipe_labels(ok, factors), sort=False)
    table = grouped[[SIZE_MB, SIZE_RATIO, LATENCY_MS]].mean()
    table.insert(0, RUNS, grouped.size())
    speeds = {recipe: pooled_speed(runs) for recipe, runs in grouped}
    table[list(SPEED)] = pd.DataFrame.from_dict(speeds, orient="index", columns=list(SPEED))
    table[FASTER] = table[SPEED[2]].lt(1).where(table[SPEED[2]].notna())  # NaN: no interval
    table[UNCHANGED] = grouped[UNCHANGED].all()
    if headline is not None:
        table[headline.column] = grouped[headline.column].mean()
        quality = {recipe: pooled_quality(runs, headline) for recipe, runs in grouped}
        table[list(DELTA)] = pd.DataFrame.from_dict(quality, orient="index", columns=list(DELTA))
        table[P] = grouped[P].max()
        table[HOLM] = _holm(table[P])
        table[[DISCORDANT, ITEMS]] = grouped[[DISCORDANT, ITEMS]].mean()
        table[FLIPS] = table[DISCORDANT] / table[ITEMS]
        table[DROP], table[DROP_HIGH] = drops(table, headline)
    fidelity = _fidelity(ok, recipe_labels(ok, factors))
    if not fidelity.empty:
        table[fidelity.columns] = fidelity
    table.index.name = "recipe"
    return table.sort_values(SPEED[0], kind="stable")


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
    """The fixed-sequence choice: the recipes that change something and are faster than the
    baseline, tested from the slowest to the fastest (larger first on ties) until one's drop
    bound exceeds ``max_drop``; the last that passed is chosen. If none passes, the recipe with
    the smallest bound is named as the closest. None without bounds."""
    bounds = table[DROP_HIGH].dropna() if DROP_HIGH in table else pd.Series(dtype=float)
    if bounds.empty:
        return None
    candidates = table.loc[bounds.index]
    candidates = candidates[~candidates[UNCHANGED].eq(True)]
    faster = candidates[candidates[FASTER].eq(True)]
    order = faster.sort_values([SPEED[0], SIZE_MB], ascending=False, kind="stable").index
    passed = fixed_sequence(faster.loc[order, DROP_HIGH].tolist(), max_drop + TOLERANCE)
    sequence = tuple(order)
    if passed:
        return Choice(sequence[passed - 1], sequence=sequence, passed=passed)
    closest = candidates[DROP_HIGH].idxmin() if len(candidates) else None
    return Choice(None, closest, sequence, 0)


def detectable_drop(table: pd.DataFrame, choice: Choice, alpha: float) -> Power | None:
    """The power of this eval set, from the discordance McNemar's test saw for the chosen (or
    else the closest) recipe: the more items the two models disagree on, the noisier."""
    recipe, role = choice.named, "chosen" if choice.recipe else "closest"
    if recipe is None:
        return None
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
