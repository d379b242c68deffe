"""``hydra/sweeper=doe``: run a designed experiment instead of Hydra's Cartesian product.

Factors are ordinary sweep overrides (``prune=0.3,0.7 quant=fp32,int8``; numeric ranges for
the continuous designs as ``prune=interval(0.1,0.7)``); ``hydra.sweeper.*`` chooses the design.
The sweep dir receives ``design.json`` (design matrix, aliases, run order), and every job
gets plain ``key=value`` overrides, so its ``.hydra/overrides.yaml`` looks like a grid job's.
Job numbers follow the seeded run order, so re-running the same command into the same
``hydra.sweep.dir`` maps every job to the same folder: finished jobs are skipped by the task.
"""

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from compress.config.refusal import refuse
from compress.infra.atomic import write_json_atomic
from compress.pipeline.preflight import sweep_problems
from hydra_plugins.doe_sweeper._design import (
    Design,
    DesignError,
    DesignSettings,
    build_design,
    design_record,
    factor_from_override,
    run_order,
)

log = logging.getLogger(__name__)

DESIGN_NAME = "design.json"
_ROMAN = {2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI", 7: "VII", 8: "VIII"}


@dataclass
class DoeSweeperConf(DesignSettings):
    _target_: str = "hydra_plugins.doe_sweeper.doe_sweeper.DoeSweeper"
    # Print the design table and job count, launch nothing.
    dry_run: bool = False
    # Stop at the first failed job (jobs then run one at a time unless max_batch_size is set).
    fail_fast: bool = False
    # Jobs handed to the launcher at once; None = all (or 1 with fail_fast).
    max_batch_size: int | None = None
    # Factors declared in config instead of the command line, as in the basic sweeper.
    params: dict[str, str] | None = None


ConfigStore.instance().store(group="hydra/sweeper", name="doe", node=DoeSweeperConf)


def _batches(jobs: list[list[str]], size: int | None) -> list[tuple[int, list[list[str]]]]:
    size = size or len(jobs)
    return [(start, jobs[start : start + size]) for start in range(0, len(jobs), size)]


def _failures(results: Sequence[JobReturn], first_job: int, labels: list[str]) -> list[str]:
    failed = []
    for number, result in enumerate(results, start=first_job):
        if result.status is JobStatus.FAILED:
            error = result._return_value  # the exception the job raised
            failed.append(f"job {number} ({labels[number]}): {error}")
    return failed


def describe(design: Design, order: Sequence[int]) -> str:
    """The dry-run preview: design summary, aliases and one line per job in run order."""
    kind = design.kind.value
    if design.resolution is not None:
        kind += f", resolution {_ROMAN.get(design.resolution, design.resolution)}"
    if design.generators is not None:
        kind += f" (generators: {design.generators})"
    rows, jobs = len(design.points), len(order)
    summary = f"{kind}: {rows} design points x {jobs // rows} replicate(s) = {jobs} jobs"
    if design.full_factorial_runs is not None:
        summary += f" (full factorial of the declared levels: {design.full_factorial_runs})"
    lines = [summary]
    lines += [f"aliased: {' = '.join(group)}" for group in design.aliases]
    header = ["job", "row", *(f.name for f in design.factors)]
    table = [[str(job), str(row), *(v.split("=", 1)[1] for v in design.overrides[row])]
             for job, row in enumerate(order)]  # fmt: skip
    widths = [max(len(cell) for cell in column) for column in zip(header, *table, strict=True)]
    for cells in [header, *table]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _sweep_dir_override(sweep_dir: Path) -> str:
    """Every job gets the sweep dir as an absolute path: a launcher that runs jobs on other
    nodes (Ray) would resolve a relative one against the worker's directory. It is a Hydra
    override, so the job's ``.hydra/overrides.yaml`` (task overrides) does not list it."""
    quoted = str(sweep_dir).replace("'", "\\'")
    return f"hydra.sweep.dir='{quoted}'"


def _record_design(path: Path, record: dict) -> None:
    """Write ``design.json``; a sweep dir that holds another design is refused, since its job
    folders would then mix two studies."""
    record = json.loads(json.dumps(record))
    if path.exists() and json.loads(path.read_text()) != record:
        raise CompactHydraException(
            f"{path} holds a different design: sweep into a new hydra.sweep.dir "
            "(or delete that folder) to run this one"
        )
    write_json_atomic(path, record)


class DoeSweeper(Sweeper):
    def __init__(
        self,
        dry_run: bool,
        fail_fast: bool,
        max_batch_size: int | None,
        params: dict[str, str] | None,
        **design: Any,
    ) -> None:
        self.settings = DesignSettings(**design)
        self.dry_run = dry_run
        self.fail_fast = fail_fast
        self.max_batch_size = max_batch_size or (1 if fail_fast else None)
        self.params = dict(params or {})
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def plan(self, arguments: list[str]) -> tuple[Design, list[int], list[list[str]]]:
        """The design, its run order and the overrides of every job, in job order."""
        assert self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        declared = [f"{key}={value}" for key, value in self.params.items()] + list(arguments)
        overrides = parser.parse_overrides(declared)
        factors = [factor_from_override(o) for o in overrides if o.is_sweep_override()]
        fixed = [o.input_line for o in overrides if not o.is_sweep_override()]
        settings = self.settings
        try:
            design = build_design(factors, settings)
            order = run_order(len(design.points), settings.replicates, settings.randomize,
                              settings.seed)  # fmt: skip
        except DesignError as error:
            raise CompactHydraException(f"DoE sweeper: {error}") from None
        return design, order, [[*fixed, *design.overrides[row]] for row in order]

    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
        assert self.config is not None and self.launcher is not None
        design, order, jobs = self.plan(arguments)
        sweep_dir = Path(self.config.hydra.sweep.dir).absolute()
        jobs = [[_sweep_dir_override(sweep_dir), *job] for job in jobs]
        loader = self.hydra_context.config_loader
        problems = sweep_problems(lambda o: loader.load_sweep_config(self.config, o), jobs)
        if problems:
            refuse(problems)
        if self.dry_run:
            print(describe(design, order))
            return []
        sweep_dir.mkdir(parents=True, exist_ok=True)
        _record_design(sweep_dir / DESIGN_NAME, design_record(design, self.settings, order))
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        log.info(
            "DoE sweep: %s, %d design points, %d jobs; design in %s",
            design.kind.value, len(design.points), len(jobs), sweep_dir / DESIGN_NAME,
        )  # fmt: skip
        return self._launch(jobs, [" ".join(design.overrides[row]) for row in order])

    def _launch(self, jobs: list[list[str]], labels: list[str]) -> list[Sequence[JobReturn]]:
        assert self.launcher is not None
        returns, failed = [], []
        for first_job, batch in _batches(jobs, self.max_batch_size):
            results = self.launcher.launch(batch, initial_job_idx=first_job)
            returns.append(results)
            failed += _failures(results, first_job, labels)
            if failed and self.fail_fast:
                skipped = len(jobs) - first_job - len(batch)
                raise CompactHydraException(
                    f"fail_fast: {failed[0]}; {skipped} jobs not started "
                    "(re-run the same command to resume)"
                )
        if failed:
            raise CompactHydraException(
                f"{len(failed)} of {len(jobs)} jobs failed: {'; '.join(failed)}"
            )
        return returns
