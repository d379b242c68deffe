"""``hydra/sweeper=search``: find the recipes on the quality / latency / size front without
running the whole grid, by a seeded multi-objective Optuna search (NSGA-II, TPE or random).

Factors are ordinary sweep overrides (``prune=0.3,0.5,0.7 quant=int8,int4``, numeric ranges as
``prune=interval(0.1,0.7)``); ``hydra.sweeper.*`` sets the sampler, the number of jobs and the
objectives. Each job is an ordinary job (its folder, ``.hydra/overrides.yaml`` and record look
like a grid job's); its objectives are read from its record's ``ratios``. A job that fails, a
record without an objective and a recipe refused before it starts are told to the study as
failed, never as values. The sweep dir receives ``search.json`` (settings, objectives, every
trial and the front), rewritten after every batch. Job numbers follow the seeded proposals, so
re-running the same command into the same ``hydra.sweep.dir`` skips the finished jobs and
proposes the same recipes again.

The ``hydra-optuna-sweeper`` plugin is not used: its 1.3.0 release requires optuna<3, reads
objectives from the task function's return value, and a recipe refused inside a job stops the
whole sweep.
"""

import importlib.util
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, ListConfig, OmegaConf

from compress.config.refusal import first_line, refusal_lines, refuse
from compress.infra.atomic import write_json_atomic
from compress.pipeline.preflight import config_problems
from compress.record import RECORD_NAME, RecordError, read_record
from hydra_plugins.search_sweeper._search import (
    Outcome,
    Sampler,
    SearchError,
    SearchSettings,
    SearchState,
    Space,
    TrialState,
    objectives,
    parse_space,
    run_search,
)

log = logging.getLogger(__name__)

SEARCH_NAME = "search.json"


class JobsFailed(RuntimeError):
    """Jobs of the search failed: the command exits 1 (a refused search exits 2)."""


@dataclass
class SearchSweeperConf(SearchSettings):
    _target_: str = "hydra_plugins.search_sweeper.search_sweeper.SearchSweeper"
    # Print the space, its size and the settings; launch nothing.
    dry_run: bool = False
    # Factors declared in config instead of the command line, as in the basic sweeper.
    params: dict[str, str] | None = None


ConfigStore.instance().store(group="hydra/sweeper", name="search", node=SearchSweeperConf)


def _sweep_dir_override(sweep_dir: Path) -> str:
    """The sweep dir as an absolute path: a launcher that runs jobs elsewhere (Ray) would
    resolve a relative one against the worker's directory."""
    quoted = str(sweep_dir).replace("'", "\\'")
    return f"hydra.sweep.dir='{quoted}'"


def _record_values(record: dict, keys: Sequence[str]) -> Outcome:
    """The objectives of an ok record, or why there are none."""
    if record.get("status") != "ok":
        return Outcome(None, first_line(Exception(record.get("error") or "status failed")))
    ratios = record.get("ratios") or {}
    values = []
    for key in keys:
        value = ratios.get(key)
        if not isinstance(value, int | float) or not math.isfinite(value):
            return Outcome(None, f"the record has no finite ratios.{key} ({value!r})")
        values.append(float(value))
    return Outcome(values)


def job_outcome(result: JobReturn, keys: Sequence[str], job: int) -> Outcome:
    """A launched job's objectives: from the record it returned or wrote; a failed job, or
    a record without one of them, is a failure with its reason."""
    if result.status is JobStatus.FAILED:
        error = result._return_value  # the exception the job raised
        return Outcome(None, f"{type(error).__name__}: {first_line(error)}", job)
    record = result.return_value
    if not isinstance(record, dict):
        path = Path(result.hydra_cfg.hydra.runtime.output_dir) / RECORD_NAME
        try:
            record = read_record(path)
        except (OSError, RecordError) as error:
            return Outcome(None, f"no readable record: {first_line(error)}", job)
    outcome = _record_values(record, keys)
    outcome.job = job
    return outcome


def search_record(
    settings: dict, space: Space, objectives_: list, state: SearchState | None
) -> dict:
    """What ``search.json`` holds."""
    record = {
        "settings": settings,
        "objectives": [asdict(o) | {"direction": o.direction} for o in objectives_],
        "space": [p.describe() for p in space.parameters],
        "recipes": space.size,
    }
    if state is not None:
        counts = {kind.value: 0 for kind in TrialState}
        for trial in state.trials:
            counts[trial.state.value] += 1
        record |= {"jobs": state.jobs, "counts": counts, "front": state.front(),
                   "trials": [t.to_dict() for t in state.trials]}  # fmt: skip
    return json.loads(json.dumps(record))


class SearchSweeper(Sweeper):
    def __init__(self, dry_run: bool, params: dict[str, str] | None, **settings: Any) -> None:
        plain = {k: list(v) if isinstance(v, ListConfig) else v for k, v in settings.items()}
        self.settings = SearchSettings(**plain)
        self.settings.sampler = Sampler(self.settings.sampler)
        self.dry_run = dry_run
        self.params = dict(params or {})
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher = None
        self.job_idx = 0

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    # ------------------------------------------------------------------ composing recipes

    def _compose(self, overrides: list[str]) -> DictConfig:
        assert self.hydra_context is not None and self.config is not None
        return self.hydra_context.config_loader.load_sweep_config(self.config, overrides)

    def plan(self, arguments: list[str]) -> tuple[Space, list[str]]:
        """The space and the fixed overrides; a misspelt level refuses the whole search."""
        assert self.hydra_context is not None
        if importlib.util.find_spec("optuna") is None:
            refuse(["hydra/sweeper=search needs optuna, accepted: pip install 'compress[search]'"])
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        declared = [f"{key}={value}" for key, value in self.params.items()] + list(arguments)
        try:
            space, fixed = parse_space(parser.parse_overrides(declared))
            if self.settings.n_trials < 1:
                raise SearchError(f"n_trials={self.settings.n_trials} is not a positive number")
        except SearchError as error:
            raise CompactHydraException(f"search sweeper: {error}") from None
        problems = []
        for recipe in space.each_level():
            try:
                self._compose([*fixed, *space.overrides(recipe)])
            except Exception as error:  # composition: Hydra and OmegaConf raise many kinds
                problems += refusal_lines(error) or [first_line(error)]
        if problems:
            refuse(list(dict.fromkeys(problems)))
        return space, fixed

    def _objectives(self, fixed: list[str], space: Space) -> list:
        cfg = self._compose([*fixed, *space.overrides(space.first())])
        quality = OmegaConf.get_type(cfg.task).QUALITY_METRICS[0]
        try:
            return objectives(self.settings.objectives, quality.ratio_key, quality.higher_is_better)
        except SearchError as error:
            raise CompactHydraException(f"search sweeper: {error}") from None

    def _refusal(self, fixed: list[str], space: Space, quality_key: str | None):
        def refusal(params: dict[str, Any]) -> str | None:
            try:
                cfg = self._compose([*fixed, *space.overrides(params)])
            except Exception as error:
                return (refusal_lines(error) or [first_line(error)])[0]
            problems = config_problems(cfg)
            if problems:
                return problems[0]
            metric = OmegaConf.get_type(cfg.task).QUALITY_METRICS[0].ratio_key
            if quality_key is not None and metric != quality_key:
                return f"its quality metric ratios.{metric} is not the search's {quality_key}"
            return None

        return refusal

    # ------------------------------------------------------------------------- the sweep

    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
        assert self.config is not None and self.launcher is not None
        space, fixed = self.plan(arguments)
        targets = self._objectives(fixed, space)
        settings = json.loads(json.dumps(asdict(self.settings), default=lambda e: e.value))
        if self.dry_run:
            print(describe(space, targets, self.settings))
            return []
        sweep_dir = Path(self.config.hydra.sweep.dir).absolute()
        sweep_dir.mkdir(parents=True, exist_ok=True)
        path = sweep_dir / SEARCH_NAME
        _check_same_search(path, search_record(settings, space, targets, None))
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        keys = [o.key for o in targets]
        returns: list[Sequence[JobReturn]] = []
        failed: list[str] = []

        def evaluate(batch: list[dict[str, Any]]) -> list[Outcome]:
            jobs = [[_sweep_dir_override(sweep_dir), *fixed, *space.overrides(p)] for p in batch]
            results = self.launcher.launch(jobs, initial_job_idx=self.job_idx)
            returns.append(results)
            outcomes = [job_outcome(r, keys, self.job_idx + i) for i, r in enumerate(results)]
            self.job_idx += len(results)
            failed.extend(f"job {o.job}: {o.reason}" for o in outcomes if o.values is None)
            return outcomes

        def progress(state: SearchState) -> None:
            write_json_atomic(path, search_record(settings, space, targets, state))

        quality = next((o.key for o in targets if o.name == "quality"), None)
        log.info("search: %s over %s recipes, %d jobs; trials in %s", self.settings.sampler.value,
                 space.size or "continuous", self.settings.n_trials, path)  # fmt: skip
        state = run_search(space, self.settings, [o.direction for o in targets], evaluate,
                           self._refusal(fixed, space, quality), progress)  # fmt: skip
        log.info("search: %d jobs, %d on the front", state.jobs, len(state.front()))
        if failed:
            raise JobsFailed(
                f"{len(failed)} of {state.jobs} jobs failed (told to the study as failed): "
                + "; ".join(failed)
            )
        return returns


def _check_same_search(path: Path, record: dict) -> None:
    """A sweep dir that holds another search is refused: its job folders would mix two."""
    if not path.exists():
        return
    earlier = json.loads(path.read_text())
    if {k: earlier.get(k) for k in record} != record:
        raise CompactHydraException(
            f"{path} holds a different search: sweep into a new hydra.sweep.dir "
            "(or delete that folder) to run this one"
        )


def describe(space: Space, targets: list, settings: SearchSettings) -> str:
    """The dry-run preview."""
    size = space.size
    lines = [
        f"search: sampler {settings.sampler.value}, seed {settings.seed}, "
        f"{settings.n_trials} jobs over {size if size is not None else 'a continuous space of'}"
        " recipes",
        "objectives: " + ", ".join(f"{o.direction} ratios.{o.key}" for o in targets),
    ]
    for p in space.parameters:
        if p.levels is not None:
            lines.append(f"  {p.name}: {', '.join(p.levels)}")
        else:
            scale = " (log)" if p.log else ""
            lines.append(f"  {p.name}: {p.low} to {p.high}{scale}")
    return "\n".join(lines)
