"""Everything about a job's config that can be checked before torch is imported (well under
2 s), and how a refusal reaches the user: one line per problem, ``error: <what>, accepted:
<what>`` on stderr, exit status 2.

``config_problems(cfg)`` checks one composed job config: unknown keys (except the free
``tag`` namespace), the schema's ranges and combinations, where the model's weights come
from, and whether ``prune`` leaves at least one unit of what a structured method removes.
``sweep_problems`` does that for every job of a sweep before the first one starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from compress.data.checks import data_problems
from compress.models import sources
from compress.schema import (
    Config,
    ConfigError,
    HeadAndNeuronPruningConfig,
    HeadPruningConfig,
    LayerPruningConfig,
    NeuronPruningConfig,
    units_to_remove,
)

# Free notes: ``+tag.<name>=<value>`` is kept in the record and never refused.
FREE_NAMESPACE = "tag"


class ConfigRefused(Exception):
    """A job (or sweep) the tool will not start; ``lines`` say why, one problem each."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


def _unknown(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    nearest = f"{close[0]} (the closest key)" if close else "a key that --cfg job lists"
    return f"{key} is not a config key, accepted: {nearest}, or +{FREE_NAMESPACE}.<name>=<note>"


def _unknown_keys(node: DictConfig, schema: type, prefix: str = "") -> list[str]:
    fields = [spec.name for spec in dataclasses.fields(schema)]
    problems = []
    for key in node.keys():
        if not prefix and key in ("hydra", FREE_NAMESPACE):
            continue
        if key not in fields:
            problems.append(_unknown(f"{prefix}{key}", [f"{prefix}{f}" for f in fields]))
            continue
        child = node._get_node(key)
        child_type = OmegaConf.get_type(child) if isinstance(child, DictConfig) else None
        if child_type is not None and dataclasses.is_dataclass(child_type):
            problems += _unknown_keys(child, child_type, f"{prefix}{key}.")
    return problems


# What each structured method removes: (config type, config.json keys of the count, unit).
_NEURONS = (("intermediate_size", "n_inner"), "feed-forward neurons per block")
_UNITS = (
    (HeadPruningConfig, ("num_attention_heads", "n_head"), "attention heads per block"),
    (HeadAndNeuronPruningConfig, *_NEURONS),
    (NeuronPruningConfig, *_NEURONS),
    (LayerPruningConfig, ("num_hidden_layers", "n_layer"), "blocks"),
)


def _structure_problems(config: Config, folder: Path) -> list[str]:
    """Whether ``prune`` leaves at least one of each unit the method removes."""
    try:
        dimensions = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return []  # the job's own loading reports an unreadable model
    problems = []
    for config_type, keys, unit in _UNITS:
        total = next((dimensions[k] for k in keys if dimensions.get(k)), None)
        if isinstance(config.prune_method, config_type) and total and config.prune > 0:
            try:
                units_to_remove(config.prune, int(total), unit)
            except ConfigError as error:
                problems.append(str(error))
    return problems


def _job_config(cfg: DictConfig) -> DictConfig:
    """The job's own config: no ``hydra`` node, and an output dir that needs no running job."""
    job = cfg.copy()
    with open_dict(job):
        job.pop("hydra", None)
        job.paths.output_dir = "."
    return job


def config_problems(cfg: DictConfig) -> list[str]:
    """One line per problem of a composed job config; empty when the job can start."""
    unknown = _unknown_keys(cfg, Config)
    if unknown:
        return unknown
    try:
        config: Config = OmegaConf.to_object(_job_config(cfg))
        folder = sources.locate(config.model.name_or_path, Path(config.paths.cache_dir))
    except ConfigError as error:
        return [str(error)]
    structure = _structure_problems(config, folder) if folder is not None else []
    return structure or data_problems(config, folder)


def sweep_problems(compose: Callable[[list[str]], DictConfig], jobs: list[list[str]]) -> list[str]:
    """Compose and check every job of a sweep; one line per problem, naming its job."""
    problems = []
    for number, overrides in enumerate(jobs):
        label = " ".join(o for o in overrides if not o.startswith("hydra.")) or "defaults"
        try:
            lines = config_problems(compose(list(overrides)))
        except Exception as error:  # composition: Hydra and OmegaConf raise many kinds
            lines = refusal_lines(error) or [_first_line(error)]
        problems += [f"job {number} ({label}): {line}" for line in lines]
    return problems


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


_CHOICE = re.compile(r"Invalid value '(?P<value>.*)', expected one of \[(?P<accepted>.*)\]")
_CONVERSION = re.compile(
    r"Value '(?P<value>.*)' of type '\w+' could not be converted to (?P<t>\w+)"
)
_OVERRIDE = re.compile(r"(?:Error merging override |Could not override ')(?P<override>[^'\s]+)")


def _composition_line(error: BaseException) -> str:
    """One line for a Hydra composition error and the OmegaConf error behind it."""
    cause = error.__cause__ if isinstance(error.__cause__, OmegaConfBaseException) else None
    found = _OVERRIDE.search(_first_line(error))
    override = found["override"] if found else _first_line(error)
    reason = _first_line(cause) if cause else ""
    if match := _CHOICE.search(reason):
        return f"{override} is not a choice, accepted: {match['accepted']}"
    if match := _CONVERSION.search(reason):
        return f"{override} is not of type {match['t'].lower()}, accepted: a {match['t'].lower()}"
    if "is not in struct" in reason or "Key '" in reason:
        key = override.partition("=")[0]
        return _unknown(key, [spec.name for spec in dataclasses.fields(Config)])
    return f"{_first_line(error)}{': ' + reason if reason else ''}"


def refusal_lines(error: BaseException) -> list[str] | None:
    """The lines that explain a refused config, or None for an error of another kind."""
    from hydra.errors import HydraException, MissingConfigException, OverrideParseException

    if isinstance(error, ConfigRefused):
        return error.lines
    if isinstance(error, ConfigError):
        return [str(error)]
    if isinstance(error, MissingConfigException) and error.missing_cfg_file and error.options:
        group, _, option = error.missing_cfg_file.rpartition("/")
        return [f"{group}={option} is not an option of {group}, accepted: "
                f"{', '.join(error.options)}"]  # fmt: skip
    if isinstance(error, OverrideParseException):
        lines = [
            line for line in str(error).splitlines() if line.strip() and not line.startswith("See ")
        ]
        reason = lines[-1].removeprefix(f"Error parsing override '{error.override}'")
        return [f"{error.override} cannot be parsed ({reason.strip(': ') or 'syntax'}), "
                "accepted: key=value in Hydra's override grammar"]  # fmt: skip
    if isinstance(error, HydraException | OmegaConfBaseException):
        return [_composition_line(error)]
    return None


def _print_and_exit(lines: list[str]) -> None:
    for line in lines:
        print(f"error: {line}", file=sys.stderr)
    raise SystemExit(2)


def refuse(lines: list[str]) -> None:
    """Stop here: one line per problem and exit 2 (a traceback under ``HYDRA_FULL_ERROR=1``).
    Exiting, rather than raising, keeps Hydra from reporting the job as a failed one."""
    if _DEBUGGING:
        raise ConfigRefused(lines)
    _print_and_exit(lines)


_DEBUGGING = os.environ.get("HYDRA_FULL_ERROR") == "1"


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Run the command line so that a refused config prints one line per problem and exits
    2, and a failed job one line and exits 1; ``HYDRA_FULL_ERROR=1`` keeps the traceback."""
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises instead of printing its own report
    try:
        yield
    except Exception as error:
        if _DEBUGGING:
            raise
        lines = refusal_lines(error)
        if lines is None:
            print(
                f"error: job failed: {type(error).__name__}: {_first_line(error)}", file=sys.stderr
            )
            raise SystemExit(1) from None
        _print_and_exit(lines)
