"""What is due at a sweep's end runs once, last queued first, and one failure stops no other."""

from __future__ import annotations

import logging

from compress.infra.sweep_end import at_sweep_end, sweep_ended


def test_queued_work_runs_once_last_first_past_a_failure(caplog):
    ran = []
    at_sweep_end(ran.append, "queued first")
    at_sweep_end(lambda: 1 / 0)
    at_sweep_end(ran.append, "queued last")
    with caplog.at_level(logging.WARNING):
        sweep_ended()
        sweep_ended()  # the interpreter's exit after the command line's own call: nothing left
    assert ran == ["queued last", "queued first"]
    assert "division by zero" in caplog.text
