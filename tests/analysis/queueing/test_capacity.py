"""The largest arrival rate that meets a p95 SLO."""

from __future__ import annotations

import math

import pytest

from analysis.queueing.capacity import Scenario, max_rate_meeting_slo, max_rates, predict
from analysis.queueing.simulation import Batching, ServiceTimes
from tests.analysis.queueing.test_theory import exponential_samples

EXPONENTIAL = ServiceTimes({1: exponential_samples(10.0, 20_000)})


def test_bisection_finds_the_rate_where_a_known_curve_crosses_the_slo():
    # M/M/1 with mean service 10 ms: p95 = 1000 ln 20 / (100 - lambda) ms, lambda per second.
    def p95(rate: float) -> float:
        return 1000 * math.log(20) / (100 - rate)

    slo = 100.0
    found = max_rate_meeting_slo(p95, slo, capacity=100.0, tolerance=1e-4)
    assert found == pytest.approx(100 - 10 * math.log(20), abs=0.02)
    assert p95(found) <= slo


def test_every_model_agrees_on_mm1_capacity():
    expected = 100 - 10 * math.log(20)  # lambda where ln 20 / (mu - lambda) = 100 ms
    rates = max_rates(EXPONENTIAL, Scenario(requests=20_000), slo_ms=100.0)
    assert set(rates) == {"simulated", "mmc", "pk"}
    assert rates["mmc"] == pytest.approx(expected, rel=0.01)
    assert rates["pk"] == pytest.approx(expected, rel=0.01)
    assert rates["simulated"] == pytest.approx(expected, rel=0.05)


def test_no_rate_meets_an_slo_below_the_service_time():
    service = ServiceTimes({1: [50.0, 60.0]})
    assert max_rates(service, Scenario(requests=1_000), slo_ms=40.0)["simulated"] == 0.0


def test_analytic_models_only_where_they_apply():
    batched = Scenario(batching=Batching(4, 5.0), requests=500)
    service = ServiceTimes({1: [10.0], 4: [16.0]})
    assert set(predict(service, 50.0, batched)) == {"simulated"}
    assert set(predict(service, 50.0, Scenario(workers=2, requests=500))) == {"simulated", "mmc"}
