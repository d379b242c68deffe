"""Work due once the process is done with its sweep, also when the sweep raised (Hydra then
calls no ``on_multirun_end``): the summary, MLflow's closing of the sweep's run.

:func:`at_sweep_end` queues it; :func:`sweep_ended` runs what is queued, last queued first.
``python -m compress.main`` calls it as its ``main`` returns or raises (so whatever runs the
command line, a shell or a harness that runs many in one interpreter, sees it before the
command ends); the interpreter's exit calls it for any other entry point.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

_queued: list[tuple[Callable[..., object], tuple]] = []


def at_sweep_end(function: Callable[..., object], *args: object) -> None:
    _queued.append((function, args))


def sweep_ended() -> None:
    """Run and forget what is queued; one failing is reported and the others still run."""
    while _queued:
        function, args = _queued.pop()
        try:
            function(*args)
        except Exception as error:
            log.warning("at the end of the sweep, %s failed: %s", function.__qualname__, error)


atexit.register(sweep_ended)  # nothing to do where the command line ran it already
