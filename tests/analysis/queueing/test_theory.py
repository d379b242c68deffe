"""Erlang C and Pollaczek–Khinchine against textbook values and independent closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.queueing.theory import (
    erlang_c,
    mg1_response_pmf,
    mg1_response_quantiles,
    mmc_mean_wait_ms,
    mmc_response_quantiles,
    pk_mean_wait_ms,
)


def exponential_samples(mean_ms: float, count: int = 100_000) -> np.ndarray:
    """Exponential quantiles at (i + 1/2) / n: an empirical distribution with no sampling
    noise, so that only the numerics are tested."""
    return -mean_ms * np.log(1 - (np.arange(count) + 0.5) / count)


@pytest.mark.parametrize(
    ("workers", "load", "expected"),
    [
        (1, 0.7, 0.7),  # M/M/1: an arrival waits with probability rho
        (2, 1.0, 1 / 3),  # M/M/2: C = a^2 / (2 + a) (Kleinrock, Queueing Systems I, sec. 3.5)
        (3, 2.0, 4 / 9),  # Wolfram Language ErlangC[3, 2] (its basic example), = 4/9 by hand
        # c = 5 agents, a = 3 Erlangs (the call-centre exercise "a call a minute, 3 minutes
        # each, 5 agents"): 5.0625 / (16.375 + 5.0625) by hand.
        (5, 3.0, 5.0625 / 21.4375),
    ],
)
def test_erlang_c_textbook_values(workers, load, expected):
    assert erlang_c(workers, load) == pytest.approx(expected, rel=1e-9)


def test_erlang_c_matches_the_factorial_form_for_many_servers():
    workers, load = 50, 45.0
    top = load**workers / math.factorial(workers) * workers / (workers - load)
    below = sum(load**k / math.factorial(k) for k in range(workers))
    assert erlang_c(workers, load) == pytest.approx(top / (below + top), rel=1e-9)


def test_erlang_c_rejects_an_overloaded_queue():
    with pytest.raises(ValueError, match="not below 1"):
        erlang_c(2, 2.0)


def test_mm1_mean_wait_and_exponential_response_time():
    # M/M/1, mean service 10 ms, 80 requests/s: rho = 0.8, E[W] = rho / (mu - lambda) = 40 ms,
    # and T ~ Exp(mu - lambda) so that its q-quantile is -ln(1 - q) / (mu - lambda).
    assert mmc_mean_wait_ms(10.0, 80.0) == pytest.approx(40.0)
    quantiles = mmc_response_quantiles(10.0, 80.0, 1, [0.5, 0.95])
    assert quantiles == pytest.approx([50 * math.log(2), 50 * math.log(20)], rel=1e-7)


def test_mmc_response_quantile_is_consistent_with_erlang_c():
    # M/M/2: P(T > t) at the median must be 1/2 (survival formula checked at its own answer).
    mean, rate = 10.0, 150.0
    median = mmc_response_quantiles(mean, rate, 2, [0.5])[0]
    theta, mu, waits = 2 / mean - rate / 1000, 1 / mean, erlang_c(2, rate / 1000 * mean)
    survival = (1 - waits) * math.exp(-mu * median) + waits * (
        theta * math.exp(-mu * median) - mu * math.exp(-theta * median)
    ) / (theta - mu)
    assert survival == pytest.approx(0.5, abs=1e-9)


def test_pollaczek_khinchine_mean_wait_for_md1_and_mm1():
    # M/D/1: E[W] = rho D / (2 (1 - rho)); D = 10 ms at 70/s: 0.7 * 10 / 0.6 = 11.67 ms.
    assert pk_mean_wait_ms([10.0], 70.0) == pytest.approx(0.7 * 10 / 0.6)
    # M/M/1 has E[S^2] = 2 E[S]^2, which gives back rho / (mu - lambda).
    assert pk_mean_wait_ms(exponential_samples(10.0), 80.0) == pytest.approx(40.0, rel=2e-3)


def md1_wait_cdf(t: float, rho: float) -> float:
    """Erlang's M/D/1 waiting-time distribution, D = 1 (Erlang 1909; see Franx, Oper. Res.
    Letters 29 (2001) 221): P(W <= t) = (1 - rho) sum_{k <= t} (rho (k - t))^k / k!
    e^{-rho (k - t)}."""
    return (1 - rho) * sum(
        (rho * (k - t)) ** k / math.factorial(k) * math.exp(-rho * (k - t))
        for k in range(int(math.floor(t)) + 1)
    )


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_mg1_distribution_matches_erlangs_md1_formula(rho):
    step, masses = mg1_response_pmf([1.0], rho * 1000.0)  # D = 1 ms
    cdf = np.cumsum(masses)
    for t in (1.0, 1.5, 2.25, 3.0, 5.5):
        assert cdf[round(t / step)] == pytest.approx(md1_wait_cdf(t - 1, rho), abs=2e-3)


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_mg1_quantiles_with_exponential_service_are_mm1(rho):
    rate = rho * 100.0  # mean service 10 ms
    expected = mmc_response_quantiles(10.0, rate, 1, [0.5, 0.95, 0.99])
    actual = mg1_response_quantiles(exponential_samples(10.0), rate, [0.5, 0.95, 0.99])
    assert actual == pytest.approx(expected, rel=3e-3)


def test_mg1_mean_response_is_the_pollaczek_khinchine_mean():
    service = [5.0, 5.0, 5.0, 40.0]  # skewed: mean 13.75, E[S^2] = 418.75
    step, masses = mg1_response_pmf(service, 40.0)
    mean = float(np.sum(np.arange(len(masses)) * step * masses))
    assert mean == pytest.approx(pk_mean_wait_ms(service, 40.0) + 13.75, rel=2e-3)
