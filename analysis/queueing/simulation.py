"""Discrete-event simulation (SimPy) of a G/G/c inference server with Poisson arrivals,
service times drawn from measured samples, and optional dynamic batching.

Random numbers are common across arrival rates: the inter-arrival times are one seeded
stream of unit exponentials scaled by 1 / lambda, and service draws come from a second
stream. Raising the rate then only compresses the same arrivals in time, so simulated
percentiles rise monotonically with load and a bisection over the rate is well defined.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import simpy


@dataclass(frozen=True)
class Batching:
    """Dynamic batching: a free worker takes up to ``max_batch`` waiting requests and, while
    the batch is not full, waits at most until the oldest one has waited ``max_wait_ms``."""

    max_batch: int = 1
    max_wait_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_wait_ms < 0:
            raise ValueError(f"invalid batching policy {self}")


NO_BATCHING = Batching()


class ServiceTimes:
    """Measured service-time samples (ms) by batch size. A batch of n requests costs a draw
    from the smallest measured batch size >= n, as on a server that pads to fixed shapes:
    nothing is interpolated between sizes that were not measured."""

    def __init__(self, samples_ms: Mapping[int, Sequence[float]]) -> None:
        if not samples_ms:
            raise ValueError("no service-time samples")
        self.samples_ms = {
            size: np.asarray(samples, dtype=np.float64)
            for size, samples in sorted(samples_ms.items())
        }

    @property
    def largest_batch(self) -> int:
        return max(self.samples_ms)

    def for_batch(self, size: int) -> np.ndarray:
        for measured, samples in self.samples_ms.items():
            if measured >= size:
                return samples
        raise ValueError(f"no batch size >= {size} was measured (have {list(self.samples_ms)})")

    def capacity_per_s(self, workers: int, max_batch: int) -> float:
        """Requests per second the workers complete when every batch is as full as allowed."""
        # The cost is a step function of the batch size: the fullest batch of each step is
        # the best candidate, a measured size or max_batch itself.
        candidates = {min(size, max_batch) for size in self.samples_ms}
        best = max(n / self.for_batch(n).mean() for n in candidates)
        return workers * best * 1000.0


class _ServiceDraws:
    """Service times for successive batches, from uniforms drawn up front (one per request,
    enough for every batch): much faster than a generator call per batch."""

    def __init__(self, service: ServiceTimes, count: int, seed: np.random.SeedSequence) -> None:
        self.service = service
        self.uniforms = np.random.default_rng(seed).random(count).tolist()
        self.drawn = 0

    def next(self, batch_size: int) -> float:
        samples = self.service.for_batch(batch_size)
        uniform = self.uniforms[self.drawn]
        self.drawn += 1
        return float(samples[int(uniform * len(samples))])


def _worker(
    env: simpy.Environment,
    queue: simpy.Store,
    batching: Batching,
    draws: _ServiceDraws,
    finished: np.ndarray,
) -> Iterator[simpy.Event]:
    while True:
        batch = [(yield queue.get())]
        deadline = batch[0][1] + batching.max_wait_ms
        while len(batch) < batching.max_batch:
            if queue.items:
                batch.append((yield queue.get()))
                continue
            if env.now >= deadline:
                break
            take = queue.get()
            yield take | env.timeout(deadline - env.now)
            if not take.triggered:
                take.cancel()
                break
            batch.append(take.value)
        yield env.timeout(draws.next(len(batch)))
        for index, _ in batch:
            finished[index] = env.now


def _arrivals(
    env: simpy.Environment, queue: simpy.Store, gaps_ms: np.ndarray, arrived: np.ndarray
) -> Iterator[simpy.Event]:
    for index, gap in enumerate(gaps_ms):
        yield env.timeout(gap)
        arrived[index] = env.now
        queue.put((index, env.now))


def simulate(
    service: ServiceTimes,
    rate_per_s: float,
    workers: int = 1,
    batching: Batching = NO_BATCHING,
    requests: int = 20_000,
    warmup: float = 0.1,
    seed: int = 0,
) -> np.ndarray:
    """Response times (ms) of ``requests`` Poisson arrivals, less the first ``warmup``
    fraction (the queue starts empty, which under-states waits until it fills)."""
    if batching.max_batch > service.largest_batch:
        raise ValueError(
            f"max_batch={batching.max_batch} exceeds the largest measured batch size "
            f"{service.largest_batch}"
        )
    arrival_seed, service_seed = np.random.SeedSequence(seed).spawn(2)
    gaps_ms = np.random.default_rng(arrival_seed).standard_exponential(requests)
    gaps_ms *= 1000.0 / rate_per_s
    draws = _ServiceDraws(service, requests, service_seed)
    env = simpy.Environment()
    queue = simpy.Store(env)
    arrived, finished = np.zeros(requests), np.full(requests, np.nan)
    env.process(_arrivals(env, queue, gaps_ms, arrived))
    for _ in range(workers):
        env.process(_worker(env, queue, batching, draws, finished))
    env.run()
    return (finished - arrived)[int(warmup * requests) :]
