"""Multi-objective search over sweep overrides with Optuna, independent of Hydra: the space
(``prune=0.3,0.5,0.7``, ``quant.keep_float=range(0,17,4)``, ``prune=interval(0.1,0.7)``), the
objectives read from a job's record, and the ask-and-tell loop.

The loop counts jobs, not proposals: a proposal that repeats a recipe already measured (or
already refused, or already failed) is answered with that recipe's outcome and runs nothing,
so ``n_trials`` jobs measure ``n_trials`` distinct recipes (or every recipe of a smaller
space). A failed or refused recipe is told to the study as failed, never as a value.

The leading underscore keeps Hydra's plugin scanner out (it imports every public module under
``hydra_plugins`` on every start); optuna is imported inside the functions that use it.
"""

from __future__ import annotations

import itertools
import math
import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.override_parser.types import IntervalSweep, Override


class SearchError(ValueError):
    """A search that cannot start as declared; the message is one line."""


class Sampler(Enum):
    nsga2 = "nsga2"  # NSGA-II: a genetic algorithm over generations of population_size recipes
    tpe = "tpe"  # multi-objective TPE: random start-up trials, then a density model
    random = "random"  # uniform, seeded: the baseline any sampler should beat


@dataclass
class SearchSettings:
    """What ``hydra.sweeper.*`` says about the search; the sweeper's config extends it."""

    # TPE by default: on budgets of tens of jobs it finds more of the front than NSGA-II,
    # which needs several generations (docs/search.md).
    sampler: Sampler = Sampler.tpe
    # Jobs to run: distinct recipes measured (a smaller space ends when every recipe ran).
    n_trials: int = 20
    seed: int = 0
    # Objectives, each a key of the record's ``ratios`` (compressed / baseline) or
    # ``quality``: the task's headline metric against the baseline. Directions follow.
    objectives: list[str] = field(default_factory=lambda: ["quality", "latency_p50", "disk_bytes"])
    # NSGA-II: recipes per generation; None = n_trials // 3, between 4 and 50.
    population_size: int | None = None
    # TPE: random trials before the model; None = n_trials // 3, at least 4.
    n_startup_trials: int | None = None
    # Recipes proposed and launched together (a parallel launcher runs them at once).
    batch_size: int = 1


# Ratio keys (compressed / baseline) an objective may name, and whether higher is better.
RATIO_OBJECTIVES = {
    "latency_p50": False, "latency_mean": False, "throughput": True, "disk_bytes": False,
    "weight_bytes": False, "nonzero_params": False, "cold_load_s": False,
    "cold_peak_rss_bytes": False,
}  # fmt: skip
QUALITY = "quality"


@dataclass(frozen=True)
class Objective:
    """``name`` as declared, the ``ratios`` key it reads, and its direction."""

    name: str
    key: str
    maximize: bool

    @property
    def direction(self) -> str:
        return "maximize" if self.maximize else "minimize"


def objectives(names: Sequence[str], quality_key: str, quality_higher: bool) -> list[Objective]:
    """The declared objectives; ``quality`` becomes the task's headline comparison."""
    if not names:
        raise SearchError("no objective: hydra.sweeper.objectives=[quality,latency_p50,...]")
    resolved = []
    for name in names:
        if name == QUALITY:
            resolved.append(Objective(name, quality_key, quality_higher))
        elif name in RATIO_OBJECTIVES:
            resolved.append(Objective(name, name, RATIO_OBJECTIVES[name]))
        else:
            accepted = ", ".join([QUALITY, *RATIO_OBJECTIVES])
            raise SearchError(f"objective {name} is unknown, accepted: {accepted}")
    if len({o.key for o in resolved}) < len(resolved):
        raise SearchError(f"objectives {', '.join(names)} name one figure twice")
    return resolved


def _spell(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Parameter:
    """One searched config key: levels as Hydra spells them (``quant=fp32,int8``,
    ``range(0,17,4)``), or a numeric range: ``interval(0.1,0.7)`` (floats; Hydra reads
    ``interval(1,16)`` as floats too), ``int(interval(1,16))`` (integers),
    ``tag(log,int(interval(8,512)))`` (sampled on a log scale)."""

    name: str  # the config key, as Optuna's parameter name
    key: str  # the override's key element (``+`` and ``@package`` kept)
    levels: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None
    integer: bool = False
    log: bool = False

    @classmethod
    def from_override(cls, override: Override) -> Parameter:
        value, name, key = override.value(), override.key_or_group, override.get_key_element()
        if isinstance(value, IntervalSweep):
            low, high = value.start, value.end
            integer = all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high))
            return cls(name, key, low=low, high=high, integer=integer, log="log" in value.tags)
        return cls(name, key, levels=tuple(dict.fromkeys(override.sweep_string_iterator())))

    @property
    def size(self) -> int | None:
        if self.levels is not None:
            return len(self.levels)
        return int(self.high - self.low) + 1 if self.integer else None

    def distribution(self):
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.levels is not None:
            return CategoricalDistribution(self.levels)
        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(float(self.low), float(self.high), log=self.log)

    def override(self, value: Any) -> str:
        return f"{self.key}={_spell(value)}"

    def describe(self) -> dict:
        if self.levels is not None:
            return {"name": self.name, "levels": list(self.levels)}
        return {"name": self.name, "low": self.low, "high": self.high, "log": self.log,
                "integer": self.integer}  # fmt: skip


@dataclass(frozen=True)
class Space:
    parameters: list[Parameter]

    @property
    def size(self) -> int | None:
        """How many recipes; None where a parameter is continuous."""
        sizes = [p.size for p in self.parameters]
        return None if None in sizes else math.prod(sizes)

    def distributions(self) -> dict:
        return {p.name: p.distribution() for p in self.parameters}

    def overrides(self, params: dict[str, Any]) -> list[str]:
        return [p.override(params[p.name]) for p in self.parameters]

    def first(self) -> dict[str, Any]:
        """One recipe: every parameter at its first level (or its low end)."""
        return {p.name: p.levels[0] if p.levels else p.low for p in self.parameters}

    def random_recipe(self, rng: random.Random) -> dict[str, Any]:
        recipe = {}
        for p in self.parameters:
            if p.levels is not None:
                recipe[p.name] = rng.choice(p.levels)
            else:  # only finite spaces get here: integer ranges
                recipe[p.name] = rng.randint(int(p.low), int(p.high))
        return recipe

    def each_level(self) -> list[dict[str, Any]]:
        """Recipes that between them hold every level of every parameter (the others at their
        first level): composing them catches a misspelt level before anything runs."""
        recipes = [self.first()]
        for p in self.parameters:
            values = p.levels[1:] if p.levels else (p.high,)
            recipes += [self.first() | {p.name: v} for v in values]
        return recipes


def parse_space(overrides: Sequence[Override]) -> tuple[Space, list[str]]:
    """The searched parameters (sweep overrides) and the fixed overrides."""
    parameters = [Parameter.from_override(o) for o in overrides if o.is_sweep_override()]
    fixed = [o.input_line for o in overrides if not o.is_sweep_override()]
    if not parameters:
        raise SearchError(
            "nothing to search: declare factors as sweep overrides, e.g. prune=0.3,0.5,0.7 "
            "quant=fp32,int8 or prune=interval(0.1,0.7)"
        )
    for p in parameters:
        if p.levels is not None and len(p.levels) < 2:
            raise SearchError(f"{p.name} has one level ({p.levels[0]}): fix it instead")
    return Space(parameters), fixed


@dataclass
class Outcome:
    """What running (or checking) one recipe gave: the objective values, or why none."""

    values: list[float] | None
    reason: str | None = None
    job: int | None = None


class TrialState(Enum):
    complete = "complete"  # a job measured it
    failed = "failed"  # its job failed, or its record lacks an objective
    refused = "refused"  # its config is refused before a job starts: nothing ran
    repeat = "repeat"  # a recipe already tried: answered from that trial, nothing ran


@dataclass
class Trial:
    number: int
    params: dict[str, Any]
    state: TrialState
    values: list[float] | None = None
    job: int | None = None
    reason: str | None = None
    repeat_of: int | None = None

    def to_dict(self) -> dict:
        return {"number": self.number, "params": self.params, "state": self.state.value,
                "values": self.values, "job": self.job, "reason": self.reason,
                "repeat_of": self.repeat_of}  # fmt: skip


def make_sampler(settings: SearchSettings):
    import optuna

    n, kind = settings.n_trials, Sampler(settings.sampler)
    if kind is Sampler.nsga2:
        size = settings.population_size or max(4, min(50, n // 3))
        return optuna.samplers.NSGAIISampler(population_size=size, seed=settings.seed)
    if kind is Sampler.tpe:
        startup = settings.n_startup_trials or max(4, n // 3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # multivariate TPE is marked experimental
            return optuna.samplers.TPESampler(
                n_startup_trials=startup, multivariate=True, seed=settings.seed
            )
    return optuna.samplers.RandomSampler(seed=settings.seed)


# Repeats in a row after which a finite space's next recipe is an untried one, drawn at random
# (seeded): a sampler that has converged keeps proposing its front.
STUCK = 25


def _key(params: dict[str, Any]) -> tuple:
    return tuple(sorted((name, _spell(value)) for name, value in params.items()))


@dataclass
class SearchState:
    """The study and what each trial was; ``jobs`` counts the recipes run."""

    study: Any
    trials: list[Trial] = field(default_factory=list)
    tried: dict[tuple, Trial] = field(default_factory=dict)
    jobs: int = 0

    def front(self) -> list[int]:
        """Trials on the Pareto front of the complete, distinct recipes."""
        best = {t.number for t in self.study.best_trials}
        return [t.number for t in self.trials
                if t.number in best and t.state is TrialState.complete]  # fmt: skip


def run_search(
    space: Space,
    settings: SearchSettings,
    directions: list[str],
    evaluate: Callable[[list[dict[str, Any]]], list[Outcome]],
    refusal: Callable[[dict[str, Any]], str | None],
    progress: Callable[[SearchState], None] | None = None,
) -> SearchState:
    """Ask, check, run and tell until ``settings.n_trials`` jobs ran or the space is spent.

    ``evaluate`` runs recipes (one job each) and returns their outcomes in order; ``refusal``
    says why a recipe cannot run (None: it can). ``progress`` sees the state after every batch.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=directions, sampler=make_sampler(settings))
    state = SearchState(study)
    max_asks = 50 * settings.n_trials + 200
    while (
        state.jobs < settings.n_trials and len(state.trials) < max_asks and not _spent(space, state)
    ):
        batch, twins = _propose(space, settings, state, refusal, max_asks)
        if not batch:
            continue
        outcomes = evaluate([params for _, params in batch])
        for (trial, params), outcome in zip(batch, outcomes, strict=True):
            state.jobs += 1
            failed = outcome.values is None
            _tell(state, trial, params, outcome,
                  TrialState.failed if failed else TrialState.complete)  # fmt: skip
        for trial, params in twins:  # proposed twice in one batch: now it has an outcome
            _tell_repeat(state, trial, params, state.tried[_key(params)])
        if progress is not None:
            progress(state)
    if progress is not None:
        progress(state)
    return state


def _spent(space: Space, state: SearchState) -> bool:
    return space.size is not None and len(state.tried) >= space.size


def _propose(
    space: Space,
    settings: SearchSettings,
    state: SearchState,
    refusal: Callable[[dict[str, Any]], str | None],
    max_asks: int,
) -> tuple[list[tuple[Any, dict]], list[tuple[Any, dict]]]:
    """The next batch of untried recipes to run, and the proposals that repeat one of them.
    Repeats of earlier recipes and refused recipes are told at once; a finite space whose
    sampler keeps repeating itself gets an untried recipe drawn at random (seeded)."""
    batch: list[tuple[Any, dict]] = []
    twins: list[tuple[Any, dict]] = []
    wanted = min(settings.batch_size, settings.n_trials - state.jobs)
    size, rng = space.size, random.Random(settings.seed + len(state.trials))
    in_a_row = 0
    while len(batch) < wanted and len(state.trials) + len(twins) < max_asks:
        if size is not None and len(state.tried) + len(batch) >= size:
            break
        if size is not None and in_a_row >= STUCK:
            state.study.enqueue_trial(_untried(space, rng, state.tried, batch))
            in_a_row = 0
        trial = state.study.ask(space.distributions())
        params = dict(trial.params)
        key = _key(params)
        if key in state.tried:
            in_a_row += 1
            _tell_repeat(state, trial, params, state.tried[key])
        elif any(_key(p) == key for _, p in batch):
            in_a_row += 1
            twins.append((trial, params))
        elif (reason := refusal(params)) is not None:
            _tell(state, trial, params, Outcome(None, reason), TrialState.refused)
        else:
            in_a_row = 0
            batch.append((trial, params))
    return batch, twins


def _untried(space: Space, rng: random.Random, tried: dict, batch: list) -> dict[str, Any]:
    taken = set(tried) | {_key(p) for _, p in batch}
    for _ in range(10_000):
        recipe = space.random_recipe(rng)
        if _key(recipe) not in taken:
            return recipe
    names = [p.name for p in space.parameters]
    every = itertools.product(*(_levels(p) for p in space.parameters))
    untried = (dict(zip(names, values, strict=True)) for values in every)
    return next(r for r in untried if _key(r) not in taken)


def _levels(p: Parameter) -> Sequence[Any]:
    return p.levels if p.levels is not None else range(int(p.low), int(p.high) + 1)


def _tell(state: SearchState, trial, params: dict, outcome: Outcome, kind: TrialState) -> None:
    from optuna.trial import TrialState as OptunaState

    if outcome.values is None:
        state.study.tell(trial, state=OptunaState.FAIL)
    else:
        state.study.tell(trial, outcome.values)
    record = Trial(trial.number, params, kind, outcome.values, outcome.job, outcome.reason)
    state.trials.append(record)
    state.tried.setdefault(_key(params), record)


def _tell_repeat(state: SearchState, trial, params: dict, earlier: Trial) -> None:
    """A recipe tried before gets the earlier outcome; nothing runs."""
    from optuna.trial import TrialState as OptunaState

    if earlier.values is None:
        state.study.tell(trial, state=OptunaState.FAIL)
    else:
        state.study.tell(trial, earlier.values)
    repeat = Trial(trial.number, params, TrialState.repeat, earlier.values,
                   repeat_of=earlier.number)  # fmt: skip
    state.trials.append(repeat)
