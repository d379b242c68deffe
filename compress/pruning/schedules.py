"""Pruning schedules: the cumulative fraction pruned after each pruning step.

``schedule_amounts(schedule, target)`` returns one fraction per step; recovery training (if
any) runs between the steps (:mod:`compress.recovery.recipe`)."""

from __future__ import annotations

from collections.abc import Callable

from compress.config.prune import IterativeScheduleConfig, OneShotScheduleConfig
from compress.infra.registry import Registry

# The cumulative pruned fraction reached after a share ``f`` of the steps, as a share of the
# target.
CURVES: dict[str, Callable[[float], float]] = {
    "cubic": lambda f: 1 - (1 - f) ** 3,
    "linear": lambda f: f,
}

# ``schedule_amounts(schedule, target)``: the cumulative fraction pruned after each step.
schedule_amounts = Registry("pruning schedule")


@schedule_amounts.register(OneShotScheduleConfig)
def _oneshot(schedule: OneShotScheduleConfig, target: float) -> list[float]:
    return [target]


@schedule_amounts.register(IterativeScheduleConfig)
def _iterative(schedule: IterativeScheduleConfig, target: float) -> list[float]:
    curve = CURVES[schedule.curve]
    return [target * curve(i / schedule.steps) for i in range(1, schedule.steps + 1)]
