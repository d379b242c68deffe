"""The search sweeper's space and ask-and-tell loop, on synthetic recipes (no job runs): the job
budget, repeats answered without a job, failed and refused recipes told as failed, seeding,
and a space of 216 recipes searched with 40 jobs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from analysis.pareto import hypervolume
from hydra_plugins.search_sweeper._search import (
    Outcome,
    SearchError,
    SearchSettings,
    TrialState,
    objectives,
    parse_space,
    run_search,
)
from hydra_plugins.search_sweeper.search_sweeper import _record_values

optuna = pytest.importorskip("optuna")
DIRECTIONS = ["maximize", "minimize", "minimize"]
BITS = {"fp32": 32, "int8": 8, "int4": 4.5, "int8_weight_only": 8, "int8_static": 8, "bf16": 16}
HARM = {"fp32": 0.0, "int8": 0.01, "int4": 0.05, "int8_weight_only": 0.004, "int8_static": 0.02,
        "bf16": 0.002}  # fmt: skip
SPEED = {"fp32": 1.0, "int8": 0.55, "int4": 0.8, "int8_weight_only": 0.9, "int8_static": 0.5,
         "bf16": 1.3}  # fmt: skip


def space_of(*overrides: str):
    return parse_space(OverridesParser.create().parse_overrides(list(overrides)))


def synthetic(params: dict) -> list[float]:
    """Quality delta, latency ratio and size ratio of a recipe, the way compression trades
    them: pruning and lower bits cost quality and save time and bytes; a Linear kept float
    buys back part of the quality at some time and size."""
    prune, quant, keep = float(params["prune"]), params["quant"], int(params["quant.keep_float"])
    recovered = 1 - min(keep, 8) / 10
    quality = -(0.3 * prune**2 + HARM[quant] * recovered)
    latency = (1 - 0.6 * prune) * (SPEED[quant] + (1 - SPEED[quant]) * keep / 30)
    size = (1 - 0.7 * prune) * (BITS[quant] + (32 - BITS[quant]) * keep / 30) / 32
    return [quality, latency, size]


LARGE = (
    "prune=0,0.15,0.3,0.45,0.6,0.75",
    "quant=fp32,int8,int4,int8_weight_only,int8_static,bf16",
    "quant.keep_float=0,1,2,4,8,16",
)


def _evaluate(batch: list[dict]) -> list[Outcome]:
    return [Outcome(synthetic(p)) for p in batch]


def _never(params: dict) -> None:
    return None


def _minimised(values) -> np.ndarray:
    return np.array([[-q, t, s] for q, t, s in values])


def _ratio(state, space) -> float:
    """Hypervolume of the search's front over that of every recipe, one reference point."""
    names = [p.name for p in space.parameters]
    grid = [synthetic(dict(zip(names, levels, strict=True)))
            for levels in itertools.product(*(p.levels for p in space.parameters))]  # fmt: skip
    everything = _minimised(grid)
    reference = everything.max(axis=0) + 0.1 * np.ptp(everything, axis=0)
    found = _minimised([t.values for t in state.trials if t.state is TrialState.complete])
    return hypervolume(found, reference) / hypervolume(everything, reference)


@pytest.mark.parametrize("sampler", ["nsga2", "tpe"])
def test_a_space_of_216_recipes_is_searched_with_40_jobs(sampler):
    space, fixed = space_of(*LARGE)
    assert space.size == 216 and fixed == []
    settings = SearchSettings(sampler=sampler, n_trials=40, seed=0)
    ran: list[dict] = []

    def evaluate(batch):
        ran.extend(batch)
        return _evaluate(batch)

    state = run_search(space, settings, DIRECTIONS, evaluate, _never)
    assert state.jobs == len(ran) == 40
    assert len({tuple(sorted(p.items())) for p in ran}) == 40  # 40 distinct recipes
    complete = [t for t in state.trials if t.state is TrialState.complete]
    assert len(complete) == 40
    assert state.front() and set(state.front()) <= {t.number for t in complete}
    # 40 of 216 recipes find most of the grid's front (a random 40 reach about as much here:
    # this checks the loop and the bookkeeping, not which sampler is better)
    assert _ratio(state, space) > 0.8


def test_repeats_run_nothing_and_a_small_space_ends_when_every_recipe_ran():
    space, _ = space_of("prune=0.3,0.6", "quant=fp32,int8", "quant.keep_float=0")
    assert space.size is None or space.size == 4  # one level: refused below
    with pytest.raises(SearchError, match="quant.keep_float has one level"):
        space_of("prune=0.3,0.6", "quant.keep_float=0,0")
    space, fixed = space_of("prune=0.3,0.6", "quant=fp32,int8", "quant.keep_float=2")
    assert fixed == ["quant.keep_float=2"] and space.size == 4
    runs: list[dict] = []

    def evaluate(batch):
        runs.extend(batch)
        return [Outcome(synthetic(p | {"quant.keep_float": 2})) for p in batch]

    state = run_search(space, SearchSettings(n_trials=10), DIRECTIONS, evaluate, _never)
    assert state.jobs == len(runs) == 4
    repeats = [t for t in state.trials if t.state is TrialState.repeat]
    for trial in repeats:
        earlier = state.trials[trial.repeat_of]
        assert earlier.params == trial.params and earlier.values == trial.values


def test_failed_and_refused_recipes_are_told_to_the_study_as_failed():
    space, _ = space_of("prune=0,0.3,0.6", "quant=fp32,int8,int4", "quant.keep_float=0,4")

    def evaluate(batch):
        return [Outcome(None, "RuntimeError: out of memory") if p["quant"] == "int4"
                else Outcome(synthetic(p)) for p in batch]  # fmt: skip

    def refusal(params):
        if params["quant"] == "fp32" and params["quant.keep_float"] == "4":
            return "quant=fp32 keeps every module float"
        return None

    state = run_search(space, SearchSettings(n_trials=18, seed=3), DIRECTIONS, evaluate, refusal)
    by_number = {t.number: t for t in state.study.trials}
    kinds = {t.state for t in state.trials}
    assert {TrialState.failed, TrialState.refused, TrialState.complete} <= kinds
    for trial in state.trials:
        told = by_number[trial.number]
        bad = trial.params["quant"] == "int4" or (
            trial.params["quant"] == "fp32" and trial.params["quant.keep_float"] == "4"
        )
        assert (told.state is optuna.trial.TrialState.FAIL) == bad
        assert (told.values is None) == bad and (trial.values is None) == bad
        if trial.state is TrialState.refused:
            assert trial.job is None and trial.reason.startswith("quant=fp32")
    assert all(not by_number[n].params["quant"] == "int4" for n in state.front())
    # refused recipes ran no job: 18 recipes less 3 refused ones
    assert state.jobs == 15


def test_the_same_seed_proposes_the_same_recipes_and_another_seed_others():
    space, _ = space_of(*LARGE)

    def proposals(seed: int, sampler: str = "nsga2") -> list[dict]:
        settings = SearchSettings(sampler=sampler, n_trials=12, seed=seed)
        state = run_search(space, settings, DIRECTIONS, _evaluate, _never)
        return [t.params for t in state.trials]

    assert proposals(1) == proposals(1)
    assert proposals(1) != proposals(2)
    assert proposals(5, "tpe") == proposals(5, "tpe")


def test_a_batch_runs_together_and_a_recipe_proposed_twice_runs_once():
    space, _ = space_of("prune=0,0.3", "quant=fp32,int8")
    batches: list[int] = []

    def evaluate(batch):
        batches.append(len(batch))
        return _evaluate([p | {"quant.keep_float": 0} for p in batch])

    settings = SearchSettings(sampler="random", n_trials=4, batch_size=3, seed=0)
    state = run_search(space, settings, DIRECTIONS, evaluate, _never)
    assert sum(batches) == state.jobs == 4 and max(batches) <= 3
    for trial in state.trials:
        if trial.state is TrialState.repeat:
            assert trial.values == state.trials[trial.repeat_of].values


def test_continuous_ranges_become_optuna_distributions():
    space, _ = space_of("prune=interval(0.1,0.7)", "batch_size=int(interval(1,16))",
                        "bench.seq_len=tag(log,int(interval(8,512)))")  # fmt: skip
    prune, batch, seq = space.parameters
    assert space.size is None
    assert (prune.low, prune.high, prune.integer) == (0.1, 0.7, False)
    assert batch.integer and batch.size == 16
    assert seq.log and seq.integer and seq.distribution().log
    state = run_search(
        space,
        SearchSettings(sampler="tpe", n_trials=6),
        ["minimize"],
        lambda batch: [Outcome([float(p["prune"])]) for p in batch],
        _never,
    )
    assert state.jobs == 6
    assert all(0.1 <= t.params["prune"] <= 0.7 for t in state.trials)
    assert space.overrides(state.trials[0].params)[0].startswith("prune=0.")


def test_objectives_read_directions_from_the_task_and_the_ratio():
    found = objectives(["quality", "latency_p50", "throughput"], "perplexity", False)
    assert [(o.key, o.direction) for o in found] == [
        ("perplexity", "minimize"), ("latency_p50", "minimize"), ("throughput", "maximize"),
    ]  # fmt: skip
    with pytest.raises(SearchError, match="objective speed is unknown, accepted: quality"):
        objectives(["speed"], "accuracy_delta", True)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"status": "failed", "error": "RuntimeError: boom\nmore"}, "RuntimeError: boom"),
        ({"status": "ok", "ratios": {"accuracy_delta": 0.0}}, "no finite ratios.latency_p50"),
        ({"status": "ok", "ratios": {"accuracy_delta": math.nan, "latency_p50": 1.0}},
         "no finite ratios.accuracy_delta"),
    ],
)  # fmt: skip
def test_a_record_without_an_objective_is_a_failure(record, reason):
    outcome = _record_values(record, ["accuracy_delta", "latency_p50"])
    assert outcome.values is None and reason in outcome.reason
    ok = {"status": "ok", "ratios": {"accuracy_delta": -0.01, "latency_p50": 0.5}}
    assert _record_values(ok, ["accuracy_delta", "latency_p50"]).values == [-0.01, 0.5]
