"""Which factors of a sweep matter: ``python -m analysis <run dir>`` writes every recipe against
the baseline with its intervals, the best one by non-inferiority, per-job and item-level factor
tests, effect and item plots and the Pareto front of the recipes into
``<run dir>/analysis/``."""


class AnalysisError(Exception):
    """A problem with the input that the user must fix; the CLI prints it on one line."""
