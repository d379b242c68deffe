"""How a refused config reaches the user: one line per problem, ``error: <what>, accepted:
<what>`` on stderr, exit status 2 — a Hydra composition error, a value out of range or a rule
broken between groups alike. A job that fails while running says so in one line, exit 1.
``HYDRA_FULL_ERROR=1`` keeps the traceback.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from omegaconf.errors import OmegaConfBaseException

from compress.config.errors import ConfigError
from compress.config.job import Config
from compress.config.rules import unknown_key


class ConfigRefused(Exception):
    """A job (or sweep) the tool will not start; ``lines`` say why, one problem each."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


def first_line(error: BaseException) -> str:
    """The first line of an error's message (its type when it has none)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


_CHOICE = re.compile(r"Invalid value '(?P<value>.*)', expected one of \[(?P<accepted>.*)\]")
_CONVERSION = re.compile(
    r"Value '(?P<value>.*)' of type '\w+' could not be converted to (?P<t>\w+)"
)
_OVERRIDE = re.compile(r"(?:Error merging override |Could not override ')(?P<override>[^'\s]+)")


def _composition_line(error: BaseException) -> str:
    """One line for a Hydra composition error and the OmegaConf error behind it."""
    cause = error.__cause__ if isinstance(error.__cause__, OmegaConfBaseException) else None
    found = _OVERRIDE.search(first_line(error))
    override = found["override"] if found else first_line(error)
    reason = first_line(cause) if cause else ""
    if match := _CHOICE.search(reason):
        return f"{override} is not a choice, accepted: {match['accepted']}"
    if match := _CONVERSION.search(reason):
        return f"{override} is not of type {match['t'].lower()}, accepted: a {match['t'].lower()}"
    if "is not in struct" in reason or "Key '" in reason:
        key = override.partition("=")[0]
        return unknown_key(key, [spec.name for spec in dataclasses.fields(Config)])
    return f"{first_line(error)}{': ' + reason if reason else ''}"


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
                f"error: job failed: {type(error).__name__}: {first_line(error)}", file=sys.stderr
            )
            raise SystemExit(1) from None
        _print_and_exit(lines)
