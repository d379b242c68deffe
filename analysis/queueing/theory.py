"""Closed-form queueing results: M/M/c (Erlang C) and M/G/1 (Pollaczek–Khinchine).

Units throughout the package: times in milliseconds, arrival rates in requests per second.

M/M/c uses only the mean service time (it assumes exponential service); M/G/1 uses the whole
measured service-time distribution but only one worker. The M/G/1 response-time distribution
comes from the Pollaczek–Khinchine transform formula: the FCFS waiting time is a geometric
sum of residual service times (P(N = n) = (1 - rho) rho^n, the Beneš series), computed here
on a fine grid with FFTs, then convolved with the service time itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.optimize import brentq

_GRID_CELLS_PER_MEAN = 1000  # grid step = mean service / 1000: quantile error <= 0.1 % of it
_MAX_GRID = 1 << 23
_ALIASED_MASS = 1e-9


def _per_ms(rate_per_s: float) -> float:
    return rate_per_s / 1000.0


def utilisation(rate_per_s: float, mean_service_ms: float, workers: int = 1) -> float:
    """rho = lambda E[S] / c."""
    return _per_ms(rate_per_s) * mean_service_ms / workers


def _check_stable(rho: float) -> None:
    if not 0 <= rho < 1:
        raise ValueError(f"utilisation {rho:.3f} is not below 1: the queue grows without bound")


def erlang_c(workers: int, offered_load: float) -> float:
    """Probability that an arrival waits in M/M/c, offered load a = lambda/mu in Erlangs.

    Uses the Erlang B recursion B(k) = a B(k-1) / (k + a B(k-1)) and
    C = c B / (c - a (1 - B)), which stays stable for large c (no factorials).
    """
    _check_stable(offered_load / workers)
    blocking = 1.0
    for k in range(1, workers + 1):
        blocking = offered_load * blocking / (k + offered_load * blocking)
    return workers * blocking / (workers - offered_load * (1 - blocking))


def mmc_mean_wait_ms(mean_service_ms: float, rate_per_s: float, workers: int = 1) -> float:
    """E[W] = C(c, a) / (c mu - lambda)."""
    offered = _per_ms(rate_per_s) * mean_service_ms
    return erlang_c(workers, offered) / (workers / mean_service_ms - _per_ms(rate_per_s))


def _sum_of_exponentials_survival(t: float, theta: float, mu: float) -> float:
    """P(X + Y > t) for independent X ~ Exp(theta), Y ~ Exp(mu)."""
    if math.isclose(theta, mu, rel_tol=1e-9):
        return (1 + mu * t) * math.exp(-mu * t)
    return (theta * math.exp(-mu * t) - mu * math.exp(-theta * t)) / (theta - mu)


def mmc_response_survival(
    t_ms: float, mean_service_ms: float, rate_per_s: float, workers: int = 1
) -> float:
    """P(T > t) in M/M/c FCFS: T = W + S, where W = 0 with probability 1 - C and is
    Exp(c mu - lambda) otherwise (Kleinrock, Queueing Systems I, eq. 3.40), S ~ Exp(mu)."""
    mu, lam = 1 / mean_service_ms, _per_ms(rate_per_s)
    waits = erlang_c(workers, lam / mu)
    theta = workers * mu - lam
    return (1 - waits) * math.exp(-mu * t_ms) + waits * _sum_of_exponentials_survival(
        t_ms, theta, mu
    )


def mmc_response_quantiles(
    mean_service_ms: float, rate_per_s: float, workers: int, quantiles: Sequence[float]
) -> list[float]:
    """Response-time quantiles (ms) of M/M/c FCFS."""
    rho = utilisation(rate_per_s, mean_service_ms, workers)
    _check_stable(rho)
    upper = mean_service_ms * (10 + 100 / (1 - rho))
    return [
        brentq(
            lambda t, q=q: 1 - q - mmc_response_survival(t, mean_service_ms, rate_per_s, workers),
            0.0,
            upper,
            xtol=mean_service_ms * 1e-9,
        )
        for q in quantiles
    ]


def pk_mean_wait_ms(service_ms: Sequence[float], rate_per_s: float) -> float:
    """Pollaczek–Khinchine mean wait of M/G/1: E[W] = lambda E[S^2] / (2 (1 - rho))."""
    service = np.asarray(service_ms, dtype=np.float64)
    lam = _per_ms(rate_per_s)
    rho = lam * service.mean()
    _check_stable(rho)
    return lam * float(np.mean(service**2)) / (2 * (1 - rho))


def _rounded_masses(points: np.ndarray, step: float, size: int) -> np.ndarray:
    """Probability masses of ``points`` (equally likely) on the grid 0, step, 2 step, ..."""
    cells = np.minimum(np.rint(points / step).astype(np.int64), size - 1)
    return np.bincount(cells, minlength=size) / len(points)


def _residual_masses(service: np.ndarray, step: float, size: int) -> np.ndarray:
    """Masses of the equilibrium residual service time, density (1 - B(x)) / E[S], rounded to
    the nearest grid point. Exact for the empirical B: its integral is E[min(S, x)] / E[S]."""
    edges = np.clip((np.arange(size + 1) - 0.5) * step, 0, None)
    below = np.searchsorted(service, edges)  # service is sorted
    partial_sums = np.concatenate([[0.0], np.cumsum(service)])[below]
    expected_min = (partial_sums + edges * (len(service) - below)) / len(service)
    return np.diff(expected_min) / service.mean()


def mg1_response_pmf(service_ms: Sequence[float], rate_per_s: float) -> tuple[float, np.ndarray]:
    """Response-time distribution of M/G/1 FCFS whose service time is drawn from the
    measured ``service_ms`` samples: (grid step in ms, masses at 0, step, 2 step, ...)."""
    service = np.sort(np.asarray(service_ms, dtype=np.float64))
    rho = _per_ms(rate_per_s) * service.mean()
    _check_stable(rho)
    step = service.mean() / _GRID_CELLS_PER_MEAN
    size = 1 << math.ceil(math.log2(2 * service[-1] / step + 10 * _GRID_CELLS_PER_MEAN))
    while size <= _MAX_GRID:
        residual = np.fft.rfft(_residual_masses(service, step, size))
        served = np.fft.rfft(_rounded_masses(service, step, size))
        response = np.fft.irfft((1 - rho) / (1 - rho * residual) * served, size)
        # A circular FFT wraps the mass beyond the grid onto its start; an empty second half
        # shows that nothing is left to wrap.
        if response[size // 2 :].sum() < _ALIASED_MASS:
            return step, np.clip(response, 0, None)
        size *= 2
    raise ValueError(f"utilisation {rho:.4f} is too close to 1 for the M/G/1 grid")


def mg1_response_quantiles(
    service_ms: Sequence[float], rate_per_s: float, quantiles: Sequence[float]
) -> list[float]:
    """Response-time quantiles (ms) of M/G/1 FCFS with the measured service distribution."""
    step, masses = mg1_response_pmf(service_ms, rate_per_s)
    cdf = np.cumsum(masses)
    return [float(np.searchsorted(cdf, q) * step) for q in quantiles]
