"""Does a fractional design find the same significant main effects as the full factorial?

Run both sweeps over the same factors, then compare them:

    python -m compress.main -m hydra/sweeper=doe hydra.sweeper.design=fullfact \\
        <factors> hydra.sweep.dir=multirun/full
    python -m compress.main -m hydra/sweeper=doe hydra.sweeper.design=fracfact \\
        hydra.sweeper.resolution=4 <factors> hydra.sweep.dir=multirun/fraction
    python benchmarks/doe_fraction_vs_full.py multirun/full multirun/fraction

Prints, per response, each sweep's job count and significant main effects (ANOVA of
``python -m analysis``, latency and size on a log scale) and whether they agree.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis.results import Options, analyse


def significant_main_effects(sweep: Path, alpha: float) -> tuple[int, dict[str, list[str]]]:
    results = analyse(Options(paths=[sweep], log=["latency", "size"], alpha=alpha))
    factors = set(results.runs.factors)
    effects = {
        anova.response: sorted(t for t in anova.significant(alpha) if t in factors)
        for anova in results.anovas
    }
    return len(results.runs.ok), effects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("full", type=Path, help="sweep dir of the full factorial")
    parser.add_argument("fraction", type=Path, help="sweep dir of the fractional design")
    parser.add_argument("--alpha", type=float, default=0.05)
    args = parser.parse_args()
    full_jobs, full = significant_main_effects(args.full, args.alpha)
    fraction_jobs, fraction = significant_main_effects(args.fraction, args.alpha)
    print(f"jobs: full factorial {full_jobs}, fraction {fraction_jobs}")
    for response, effects in full.items():
        found = fraction.get(response, [])
        verdict = "same" if found == effects else "DIFFERENT"
        print(f"{response}: full {effects}, fraction {found} -> {verdict}")


if __name__ == "__main__":
    main()
