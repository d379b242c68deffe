"""Choosing the best non-inferior recipe among K without inflating the error of the claim.

Each recipe's non-inferiority test is one-sided at 2.5% (the worse bound of its two-sided 95%
interval within the allowed drop). Picking the fastest of K recipes that pass separately makes
"this recipe is non-inferior" wrong with probability up to about K x 2.5%. The fixed-sequence
procedure (Maurer, Hothorn & Lehmacher 1995; Westfall & Krishen 2001) keeps it at 2.5%: the
recipes are tested in an order fixed before their quality is looked at (here by their measured
speed, from the slowest to the fastest), each at the full level, and testing stops at the
first that fails; every recipe passed before that is claimed non-inferior, and the
family-wise error rate of all these claims together is at most the one-sided 2.5%.
"""

from __future__ import annotations

from collections.abc import Sequence

PROCEDURE = "fixed-sequence"


def fixed_sequence(upper_bounds: Sequence[float], limit: float) -> int:
    """How many hypotheses, in the given order, are rejected: the length of the leading run of
    upper bounds (of the quality drop) within ``limit``."""
    passed = 0
    for bound in upper_bounds:
        if not bound <= limit:  # NaN fails too
            break
        passed += 1
    return passed
