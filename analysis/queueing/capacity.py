"""Response-time percentiles against arrival rate, and the largest rate that meets an SLO.

Three models answer "what are the response-time percentiles at rate lambda?":
``simulated`` (SimPy, any worker count, dynamic batching, the measured distribution),
``mmc`` (Erlang C: exponential service with the measured mean; no batching) and ``pk``
(M/G/1 with the measured distribution; one worker, no batching).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from analysis.queueing.simulation import NO_BATCHING, Batching, ServiceTimes, simulate
from analysis.queueing.theory import mg1_response_quantiles, mmc_response_quantiles

PERCENTILES = (50, 95, 99)
SLO_PERCENTILE = 95
# The unbatched request is one model call at the smallest measured batch size.
_SINGLE = 1


@dataclass(frozen=True)
class Scenario:
    """How the server is run (workers, batching) and how long each simulation is."""

    workers: int = 1
    batching: Batching = NO_BATCHING
    requests: int = 20_000
    seed: int = 0

    def models(self) -> tuple[str, ...]:
        if self.batching.max_batch > 1:
            return ("simulated",)
        return ("simulated", "mmc", "pk") if self.workers == 1 else ("simulated", "mmc")


def _quantiles() -> list[float]:
    return [p / 100 for p in PERCENTILES]


def _mmc(service: ServiceTimes, rate_per_s: float, scenario: Scenario) -> list[float]:
    mean_ms = service.for_batch(_SINGLE).mean()
    return mmc_response_quantiles(mean_ms, rate_per_s, scenario.workers, _quantiles())


def _pk(service: ServiceTimes, rate_per_s: float, scenario: Scenario) -> list[float]:
    return mg1_response_quantiles(service.for_batch(_SINGLE), rate_per_s, _quantiles())


def _simulated(service: ServiceTimes, rate_per_s: float, scenario: Scenario) -> list[float]:
    times = simulate(
        service, rate_per_s, scenario.workers, scenario.batching, scenario.requests,
        seed=scenario.seed,
    )  # fmt: skip
    return np.percentile(times, PERCENTILES).tolist()


_MODELS: dict[str, Callable[[ServiceTimes, float, Scenario], list[float]]] = {
    "simulated": _simulated,
    "mmc": _mmc,
    "pk": _pk,
}


def predict(service: ServiceTimes, rate_per_s: float, scenario: Scenario) -> dict[str, dict]:
    """Response-time percentiles (ms) at one arrival rate, by model: ``{"p95_ms": ...}``."""
    return {
        model: dict(
            zip(
                (f"p{p}_ms" for p in PERCENTILES),
                _MODELS[model](service, rate_per_s, scenario),
                strict=True,
            )
        )
        for model in scenario.models()
    }


def capacity_per_s(service: ServiceTimes, scenario: Scenario) -> float:
    return service.capacity_per_s(scenario.workers, scenario.batching.max_batch)


def load_curve(
    service: ServiceTimes, scenario: Scenario, utilisations: Sequence[float]
) -> list[dict]:
    """Percentiles at each utilisation (arrival rate / capacity), one row per model."""
    capacity = capacity_per_s(service, scenario)
    rows = []
    for rho in utilisations:
        rate = rho * capacity
        for model, values in predict(service, rate, scenario).items():
            rows.append({"utilisation": rho, "rate_per_s": rate, "model": model, **values})
    return rows


def max_rate_meeting_slo(
    percentile_at: Callable[[float], float],
    slo_ms: float,
    capacity: float,
    tolerance: float = 0.005,
) -> float:
    """Largest arrival rate whose percentile stays within ``slo_ms``, by bisection over
    (0, 0.99 capacity]; ``percentile_at`` must rise with the rate. 0 when even a lone request
    misses the SLO; no answer above 99% utilisation, where no real server should run (nor
    is that end evaluated: it is the costliest point of every model)."""
    low, high = 1e-3 * capacity, 0.99 * capacity
    if percentile_at(low) > slo_ms:
        return 0.0
    while high - low > tolerance * capacity:
        middle = (low + high) / 2
        if percentile_at(middle) <= slo_ms:
            low = middle
        else:
            high = middle
    return low


def max_rates(service: ServiceTimes, scenario: Scenario, slo_ms: float) -> dict[str, float]:
    """Per model, the largest arrival rate (requests/s) whose p95 meets ``slo_ms``."""
    index = PERCENTILES.index(SLO_PERCENTILE)
    capacity = capacity_per_s(service, scenario)
    return {
        model: max_rate_meeting_slo(
            lambda rate, model=model: _MODELS[model](service, rate, scenario)[index],
            slo_ms,
            capacity,
        )
        for model in scenario.models()
    }
