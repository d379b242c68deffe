"""Energy per batch: measured where the machine exposes a counter (RAPL under
/sys/class/powercap), otherwise estimated from CPU time, as codecarbon does without one.

Every figure carries ``method: measured | estimated``; the two are never mixed silently.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

RAPL = Path("/sys/class/powercap/intel-rapl:0")


def rapl_available() -> bool:
    try:
        int((RAPL / "energy_uj").read_text())
    except (OSError, ValueError):
        return False
    return True


def read_rapl_joules() -> float:
    """The CPU package's cumulative energy counter (joules; wraps at max_energy_range_uj)."""
    return int((RAPL / "energy_uj").read_text()) / 1e6


def rapl_wrap_joules() -> float:
    return int((RAPL / "max_energy_range_uj").read_text()) / 1e6


def energy_per_batch(
    cpu_ms: list[float], rapl_joules: list[float] | None, watts_per_core: float, batch_size: int
) -> dict:
    """Median energy of one batch, and per sample.

    ``cpu_ms`` is the process CPU time of each timed call (all threads); the estimate charges
    ``watts_per_core`` for every second a core was busy. ``rapl_joules``, when the counter
    exists, holds the package energy spent during each call: measured, but the package also
    powers whatever else ran at the same time.
    """
    if rapl_joules is not None:
        joules = float(np.median(rapl_joules))
        method, basis = "measured", "RAPL package counter (whole CPU package)"
    else:
        joules = float(np.median(cpu_ms)) / 1000.0 * watts_per_core
        method = "estimated"
        basis = f"process CPU time x {watts_per_core:g} W per busy core (no RAPL counter here)"
    return {
        "method": method,
        "basis": basis,
        "joules_per_batch": joules,
        "joules_per_sample": joules / batch_size,
    }
