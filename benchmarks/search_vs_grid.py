"""Does a search with half the jobs find the front of the full grid?

Runs the full grid of a space (Hydra's basic sweeper), then a search of the same space with
``--jobs`` jobs (``hydra/sweeper=search``), and compares their Pareto fronts by hypervolume:
quality against the baseline (maximised), latency and size ratios (minimised), one reference
point for both (the grid's worst value on each objective, 10% of its range beyond).

    python benchmarks/search_vs_grid.py --out multirun/search_vs_grid
    python benchmarks/search_vs_grid.py --out multirun/search_vs_grid --grid multirun/grid

Three ratios are written (``search_vs_grid.json`` and ``.md`` in ``--out``):

- ``measured``: the search's front by its own jobs' records over the grid's front by the
  grid's records (each side's timing noise included);
- ``recipes found``: the recipes the search ran, valued by the grid's records of the same
  recipes (the search's choices alone, timing noise aside);
- ``replayed``: the search replayed ``--replays`` times per sampler, seeds 0, 1, ..., each
  proposal answered by the grid's record of that recipe (no job runs): how the ratio spreads
  over seeds, TPE, NSGA-II and random sampling side by side.

Any job override after ``--`` replaces the default space and settings (the default space is
24 recipes of MiniLM on SST-2: two structured pruning methods x two ratios x three levels x
two counts of Linears kept float).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from hydra.core.override_parser.overrides_parser import OverridesParser

from analysis.pareto import hypervolume
from compress.record import ok_records
from hydra_plugins.search_sweeper._search import (
    Outcome,
    SearchSettings,
    Space,
    TrialState,
    parse_space,
    run_search,
)

SPACE = [
    "prune_method=neurons,heads",
    "prune=0.25,0.5",
    "quant=int8,int4,int8_weight_only",
    "quant.keep_float=0,4",
]
OBJECTIVES = {"accuracy_delta": True, "latency_p50": False, "disk_bytes": False}
SAMPLERS = ("tpe", "nsga2", "random")


def sweep(folder: Path, arguments: Sequence[str]) -> None:
    command = [sys.executable, "-m", "compress.main", "-m", *arguments,
               f"hydra.sweep.dir={folder}"]  # fmt: skip
    subprocess.run(command, check=False)  # a failed job is a failed recipe, not the end


def _recipe_key(values: dict) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in values.items()))


def recipe_values(folder: Path, space: Space, objectives: dict[str, bool]) -> dict[tuple, list]:
    """The objectives (each minimised: maximised ones negated) of every ok job of a sweep, by
    its recipe (the searched keys as its ``.hydra/overrides.yaml`` sets them)."""
    names = [p.name for p in space.parameters]
    table = {}
    for record in ok_records(folder):
        overrides = dict(line.split("=", 1) for line in record["overrides"])
        recipe = {name: overrides[name] for name in names}
        ratios = record["ratios"]
        if all(ratios.get(key) is not None for key in objectives):
            table[_recipe_key(recipe)] = [
                -ratios[key] if up else ratios[key] for key, up in objectives.items()
            ]
    return table


def reference_point(values: Sequence[Sequence[float]]) -> np.ndarray:
    """The grid's worst value on each objective, 10% of its range beyond (1 beyond where the
    objective does not vary: any margin then scales both volumes alike)."""
    points = np.asarray(values, dtype=float)
    spread = np.ptp(points, axis=0)
    return points.max(axis=0) + np.where(spread > 0, 0.1 * spread, 1.0)


def hv_ratio(found: Sequence[Sequence[float]], grid: dict[tuple, list]) -> float:
    reference = reference_point(list(grid.values()))
    whole = hypervolume(np.asarray(list(grid.values())), reference)
    return hypervolume(np.asarray(found), reference) / whole


def replay(space: Space, grid: dict[tuple, list], sampler: str, jobs: int, seed: int) -> float:
    """The hypervolume ratio of a search whose jobs are answered from the grid's records."""
    names = [p.name for p in space.parameters]
    directions = ["minimize"] * len(next(iter(grid.values())))

    def evaluate(batch: list[dict]) -> list[Outcome]:
        return [
            Outcome(grid.get(_recipe_key({n: p[n] for n in names})), "no ok record in the grid")
            for p in batch
        ]

    settings = SearchSettings(sampler=sampler, n_trials=jobs, seed=seed)
    state = run_search(space, settings, directions, evaluate, lambda params: None)
    found = [t.values for t in state.trials if t.state is TrialState.complete]
    return hv_ratio(found, grid) if found else 0.0


def compare(grid_dir: Path, search_dir: Path, space: Space, jobs: int, replays: int) -> dict:
    grid = recipe_values(grid_dir, space, OBJECTIVES)
    searched = recipe_values(search_dir, space, OBJECTIVES)
    found = [grid[k] for k in searched if k in grid]
    result = {
        "recipes": space.size, "grid_ok_jobs": len(grid), "search_jobs": jobs,
        "search_ok_jobs": len(searched),
        "measured": hv_ratio(list(searched.values()), grid) if searched else 0.0,
        "recipes_found": hv_ratio(found, grid) if found else 0.0,
        "replayed": {},
    }  # fmt: skip
    for sampler in SAMPLERS:
        ratios = [replay(space, grid, sampler, jobs, seed) for seed in range(replays)]
        result["replayed"][sampler] = {
            "seeds": replays, "min": min(ratios), "median": statistics.median(ratios),
            "mean": statistics.fmean(ratios),
            "at_least_0.9": sum(r >= 0.9 for r in ratios) / replays,
        }  # fmt: skip
    return result


def markdown(result: dict, command: str) -> str:
    lines = [
        "# Search with half the jobs vs the full grid",
        "",
        f"`{command}`",
        "",
        f"{result['recipes']} recipes; grid: {result['grid_ok_jobs']} ok jobs; search: "
        f"{result['search_jobs']} jobs ({result['search_ok_jobs']} ok). Hypervolume of the "
        "search's front over the grid's (quality delta maximised, latency and size ratios "
        "minimised; one reference point: the grid's worst + 10% of its range):",
        "",
        f"- measured (each side's own records): {result['measured']:.3f}",
        f"- recipes found, valued by the grid's records: {result['recipes_found']:.3f}",
        "",
        "| sampler (replayed on the grid's records) | seeds | min | median | mean | >= 0.9 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for sampler, r in result["replayed"].items():
        lines.append(f"| {sampler} | {r['seeds']} | {r['min']:.3f} | {r['median']:.3f} | "
                     f"{r['mean']:.3f} | {r['at_least_0.9']:.0%} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of both sweeps")
    parser.add_argument("--grid", type=Path, help="an existing grid sweep of the same space")
    parser.add_argument("--jobs", type=int, help="search jobs (default: half the grid)")
    parser.add_argument("--sampler", default="tpe", choices=SAMPLERS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replays", type=int, default=20)
    parser.add_argument("overrides", nargs="*", help="space and settings (default: SPACE)")
    args = parser.parse_args(argv)
    overrides = args.overrides or SPACE
    space, _ = parse_space(OverridesParser.create().parse_overrides(overrides))
    jobs = args.jobs or space.size // 2
    grid_dir = args.grid or args.out / "grid"
    if args.grid is None:
        sweep(grid_dir, overrides)
    search = [
        "hydra/sweeper=search", f"hydra.sweeper.n_trials={jobs}",
        f"hydra.sweeper.sampler={args.sampler}", f"hydra.sweeper.seed={args.seed}",
    ]  # fmt: skip
    sweep(args.out / "search", [*search, *overrides])
    result = compare(grid_dir, args.out / "search", space, jobs, args.replays)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "search_vs_grid.json").write_text(json.dumps(result, indent=1))
    command = " ".join(["python benchmarks/search_vs_grid.py", *(argv or sys.argv[1:])])
    (args.out / "search_vs_grid.md").write_text(markdown(result, command))
    print(markdown(result, command))
    return result


if __name__ == "__main__":
    main()
