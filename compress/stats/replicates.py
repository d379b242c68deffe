"""One interval for a recipe that ran several times, from its runs' own data: never an average of
the runs' interval bounds (which is no interval of anything).

Timing: every run times fresh rounds, so its paired latency ratio carries the run's own noise
and state of the machine; the runs are the independent units. The recipe's ratio is the
geometric mean of its runs' ratios, with Student's t over their logs (rounds clustered by run).

Accuracy: every run answers the same items, so more runs do not make more items. Each item's
compressed correctness is averaged over the runs, which averages the discordant counts b and c;
Tango's interval on those mean counts over the n items is conservative, since the variance of
an item's averaged difference never exceeds the variance Tango assumes for 0/1 differences
with the same discordant shares. Runs that are copies give exactly the single run's interval.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from compress.stats.paired import Interval
from compress.stats.proportions import tango_interval


def ratio_over_runs(ratios: ArrayLike, confidence: float = 0.95) -> Interval:
    """Geometric mean of two or more runs' paired ratios (compressed / baseline), with Student's
    t interval over their logs, ``n`` = runs."""
    logs = np.log(np.asarray(ratios, dtype=float))
    if logs.ndim != 1 or len(logs) < 2 or not np.isfinite(logs).all():
        raise ValueError("need two or more positive ratios, one per run")
    runs = len(logs)
    error = logs.std(ddof=1) / math.sqrt(runs)
    quantile = stats.t.ppf(0.5 + confidence / 2, runs - 1)
    mean = logs.mean()
    method = (
        f"geometric mean of {runs} runs' paired ratios, Student t over their logs "
        f"({runs - 1} df): timing rounds clustered by run"
    )
    return Interval(math.exp(mean), math.exp(mean - quantile * error),
                    math.exp(mean + quantile * error), runs, method, confidence)  # fmt: skip


def accuracy_over_runs(b: ArrayLike, c: ArrayLike, n: int, confidence: float = 0.95) -> Interval:
    """Tango's interval of the accuracy difference from each run's discordant counts on the
    same ``n`` items (each item's correctness averaged over the runs)."""
    b, c = np.asarray(b, dtype=float), np.asarray(c, dtype=float)
    if b.ndim != 1 or b.shape != c.shape or len(b) == 0:
        raise ValueError("need the discordant counts b and c of every run")
    interval = tango_interval(b.mean(), c.mean(), n, confidence)
    if len(b) == 1:
        return interval
    method = f"{interval.method}, on the mean discordant counts of {len(b)} runs of {n} items"
    return Interval(interval.estimate, interval.low, interval.high, n, method, confidence)
