"""Command line of ``python -m analysis``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis import AnalysisError

DESCRIPTION = """\
Which factors of a compress sweep matter, and which recipe provably stays within the allowed
quality drop? Reads every job's .hydra/overrides.yaml, .hydra/config.yaml and metrics.json under
RUN_DIR (and items.parquet and rounds.parquet where jobs wrote them) and writes runs.csv,
report.md, report.html (self-contained) and one PNG per figure into RUN_DIR/analysis/."""

EPILOG = """\
RUN_DIR may be a sweep (multirun/<date>/<time>), a single job folder, or a folder holding
several sweeps. Responses: accuracy, perplexity, f1, roc_auc, ... (compressed.quality.*),
latency (compressed.speed.p50_ms), size (compressed.size.disk_bytes), or any column of
runs.csv. Exit status 2 on unusable input (no successful job, not a sweep; with --strict
also a corrupt metrics.json); 1 when the report was written but left corrupt records out.

example: python -m analysis multirun/2026-01-01/12-00-00 --log latency size"""


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="what to analyse (see below)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="output folder (default: the first RUN_DIR/analysis)",
    )
    for flag, purpose in (
        ("--response", "responses to analyse (default: accuracy or perplexity, latency, size)"),
        ("--log", "log-transform these responses (latency and size usually want it)"),
    ):
        parser.add_argument(
            flag, nargs="+", action="extend", default=[], metavar="NAME", help=purpose
        )
    parser.add_argument(
        "--typ",
        type=int,
        choices=(2, 3),
        default=2,
        help="ANOVA sums of squares: type 2 (default) or type 3 with sum-to-zero contrasts",
    )
    parser.add_argument(
        "--alpha", type=float, default=0.05, help="significance level (default: 0.05)"
    )
    parser.add_argument(
        "--max-quality-drop",
        type=float,
        default=0.01,
        metavar="DROP",
        help="best recipe: the fastest whose quality drop vs the baseline is at most DROP even "
        "at the upper bound of its 95%% CI, by point estimates for records without intervals "
        "(absolute for accuracy/F1, relative for perplexity; default: 0.01)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="a corrupt metrics.json or .hydra file stops the analysis (exit status 2) instead "
        "of becoming a row of status corrupt (exit status 1 after the report)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    if not 0 < args.alpha < 1:
        cli.error("--alpha must lie between 0 and 1")
    from analysis.report import write_report  # heavy imports only after --help
    from analysis.results import Options

    options = Options(
        paths=args.run_dirs,
        out=args.out,
        responses=args.response,
        log=args.log,
        typ=args.typ,
        alpha=args.alpha,
        max_quality_drop=args.max_quality_drop,
        strict=args.strict,
    )
    try:
        out, summary = write_report(options)
    except AnalysisError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary)
    print(f"report: {out / 'report.html'}")
    corrupt = runs_with_status(out, "corrupt")
    if corrupt:
        print(f"warning: {len(corrupt)} corrupt job record(s) left out, first: {corrupt[0]}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def runs_with_status(out: Path, status: str) -> list[str]:
    """The reasons of the jobs of ``status`` in the runs table the report wrote."""
    import pandas as pd

    table = pd.read_csv(out / "runs.csv", usecols=["status", "reason"])
    return table.loc[table["status"] == status, "reason"].astype(str).tolist()
