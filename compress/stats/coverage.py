"""Coverage of the paired accuracy-difference intervals, by simulation: how often each method's
95% interval holds the true difference when few or many items change.

Each simulated evaluation draws the discordant counts of n items from a multinomial: a share
``discordance`` of the items changes its answer, all from right to wrong (one-directional: the
true difference is -discordance) or half each way (balanced: the true difference is 0). Only
the discordant counts enter either method, so drawing them is drawing whole datasets.
``python -m compress.stats.coverage`` prints the table of ``docs/statistics.md``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from compress.stats.proportions import tango_bounds

DIRECTIONS = ("one-directional", "balanced")
METHODS = ("Tango score", "percentile bootstrap")


@dataclass(frozen=True)
class Scenario:
    n: int
    discordance: float
    direction: str

    @property
    def cells(self) -> tuple[float, float]:
        """Probabilities of an item going right to wrong (b) and wrong to right (c)."""
        if self.direction == DIRECTIONS[0]:
            return self.discordance, 0.0
        return self.discordance / 2, self.discordance / 2

    @property
    def truth(self) -> float:
        to_wrong, to_right = self.cells
        return to_right - to_wrong


def _counts(scenario: Scenario, datasets: int, rng: np.random.Generator) -> np.ndarray:
    to_wrong, to_right = scenario.cells
    return rng.multinomial(scenario.n, [to_wrong, to_right, 1 - to_wrong - to_right], datasets)


def _bootstrap_bounds(
    counts: np.ndarray, n: int, resamples: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The percentile bootstrap of mean(compressed) - mean(baseline) over items: resampling
    items is drawing the discordant counts again from the observed shares."""
    shares = counts / n
    drawn = rng.multinomial(n, shares, size=(resamples, len(counts)))
    replicates = (drawn[..., 1] - drawn[..., 0]) / n
    low, high = np.quantile(replicates, [0.025, 0.975], axis=0)
    return low, high


def bounds(
    method: str, counts: np.ndarray, n: int, rng: np.random.Generator, resamples: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """95% bounds of ``method`` for each row (b, c, rest) of ``counts``."""
    if method == METHODS[0]:
        return tango_bounds(counts[:, 0], counts[:, 1], n)
    if method == METHODS[1]:
        return _bootstrap_bounds(counts, n, resamples, rng)
    raise ValueError(f"unknown method {method!r}; use one of {METHODS}")


def simulated_coverage(
    method: str, scenario: Scenario, datasets: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Share of ``datasets`` simulated evaluations whose interval holds the truth, and the
    intervals' mean width."""
    rng = np.random.default_rng(seed)
    counts = _counts(scenario, datasets, rng)
    low, high = bounds(method, counts, scenario.n, rng)
    tolerance = 1e-12  # a bound computed at the truth itself counts as holding it
    covered = (low <= scenario.truth + tolerance) & (scenario.truth - tolerance <= high)
    return float(covered.mean()), float((high - low).mean())


def exact_coverage(scenario: Scenario) -> float:
    """Tango's coverage summed over every outcome (b, c) weighted by its multinomial
    probability: no simulation error."""
    to_wrong, to_right = scenario.cells
    n, expected = scenario.n, scenario.n * scenario.discordance
    top = min(n, int(expected + 12 * np.sqrt(expected + 1) + 20))
    b, c = (axis.ravel() for axis in np.meshgrid(np.arange(top + 1), np.arange(top + 1)))
    b, c = b[b + c <= n], c[b + c <= n]
    if scenario.discordance == 0:
        weights = ((b == 0) & (c == 0)).astype(float)
    else:
        cells = np.stack([b, c, n - b - c], axis=1)
        weights = stats.multinomial.pmf(cells, n, [to_wrong, to_right, 1 - to_wrong - to_right])
    low, high = tango_bounds(b, c, n)
    covered = (low <= scenario.truth + 1e-12) & (scenario.truth - 1e-12 <= high)
    return float((weights * covered).sum())


def scenarios(
    sizes: tuple[int, ...] = (200, 1000), discordances: tuple[float, ...] = (0.0, 0.01, 0.1)
) -> list[Scenario]:
    return [
        Scenario(n, discordance, direction)
        for n in sizes
        for discordance in discordances
        for direction in (DIRECTIONS if discordance else DIRECTIONS[:1])
    ]


def coverage_table(datasets: int = 2000, seed: int = 0) -> pd.DataFrame:
    """One row per method and scenario: simulated coverage and mean width (and Tango's exact
    coverage)."""
    rows = []
    for index, scenario in enumerate(scenarios()):
        for method in METHODS:
            coverage, width = simulated_coverage(method, scenario, datasets, seed + index)
            exact = exact_coverage(scenario) if method == METHODS[0] else np.nan
            rows.append({"method": method, "n": scenario.n,
                         "discordance": scenario.discordance,
                         "direction": scenario.direction if scenario.discordance else "none",
                         "coverage": coverage, "exact coverage": exact, "mean width": width,
                         "datasets": datasets})  # fmt: skip
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    formats = {"coverage": "{:.3f}", "exact coverage": "{:.3f}", "mean width": "{:.4f}"}
    shown = table.assign(discordance=table["discordance"].map("{:.0%}".format))
    for column, fmt in formats.items():
        shown[column] = table[column].map(lambda v, f=fmt: "" if np.isnan(v) else f.format(v))
    return shown.to_markdown(index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(markdown(coverage_table(args.datasets, args.seed)))


if __name__ == "__main__":
    main()
