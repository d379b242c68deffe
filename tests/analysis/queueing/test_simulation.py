"""The SimPy server against queueing theory, and the dynamic-batching policy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.queueing.simulation import NO_BATCHING, Batching, ServiceTimes, simulate
from analysis.queueing.theory import mmc_mean_wait_ms
from tests.analysis.queueing.test_theory import exponential_samples

EXPONENTIAL = ServiceTimes({1: exponential_samples(10.0)})


def test_simulation_converges_to_mm1_theory_at_half_load():
    # rho = 0.5, mean service 10 ms: T ~ Exp(1/20 per ms): mean 20, p50 20 ln 2, p95 20 ln 20.
    times = simulate(EXPONENTIAL, 50.0, requests=50_000, seed=0)
    assert times.mean() == pytest.approx(20.0, rel=0.05)
    assert np.percentile(times, 50) == pytest.approx(20 * math.log(2), rel=0.05)
    assert np.percentile(times, 95) == pytest.approx(20 * math.log(20), rel=0.05)


def test_two_workers_wait_as_erlang_c_predicts():
    times = simulate(EXPONENTIAL, 150.0, workers=2, requests=50_000, seed=1)
    assert times.mean() - 10.0 == pytest.approx(mmc_mean_wait_ms(10.0, 150.0, 2), rel=0.05)


def test_same_seed_same_answer_and_load_only_adds_waiting():
    low = simulate(EXPONENTIAL, 30.0, requests=2_000, seed=7)
    assert np.array_equal(low, simulate(EXPONENTIAL, 30.0, requests=2_000, seed=7))
    high = simulate(EXPONENTIAL, 60.0, requests=2_000, seed=7)
    assert np.all(high >= low - 1e-9)  # common random numbers: the same requests, closer


def test_a_batch_of_one_is_no_batching():
    one = simulate(EXPONENTIAL, 60.0, batching=Batching(1, 25.0), requests=2_000)
    assert np.array_equal(one, simulate(EXPONENTIAL, 60.0, batching=NO_BATCHING, requests=2_000))


FIXED = ServiceTimes({1: [10.0], 4: [16.0]})


def test_a_lone_request_waits_for_the_batch_at_most_max_wait():
    times = simulate(FIXED, 1.0, batching=Batching(4, 5.0), requests=500)
    assert np.median(times) == pytest.approx(5.0 + 10.0)
    assert times.min() >= 10.0


def test_batching_serves_a_load_that_single_requests_cannot():
    # 150 requests/s need 1.5 s of single calls per second; batches of 4 take 16 ms.
    assert FIXED.capacity_per_s(1, 1) == pytest.approx(100.0)
    assert FIXED.capacity_per_s(1, 4) == pytest.approx(250.0)
    times = simulate(FIXED, 150.0, batching=Batching(4, 5.0), requests=5_000)
    assert np.percentile(times, 95) < 5.0 + 2 * 16.0 + 16.0


def test_partial_batches_cost_the_next_measured_size():
    service = ServiceTimes({1: [10.0], 8: [40.0]})
    assert service.for_batch(3).tolist() == [40.0]
    assert service.capacity_per_s(1, 4) == pytest.approx(4 / 40.0 * 1000)  # padded to 8
    assert service.capacity_per_s(1, 2) == pytest.approx(1 / 10.0 * 1000)  # 2/40 is worse
    with pytest.raises(ValueError, match="no batch size >= 9"):
        service.for_batch(9)
    with pytest.raises(ValueError, match="exceeds the largest measured batch size"):
        simulate(service, 10.0, batching=Batching(16, 1.0))
