"""Statistics for conclusions with their uncertainty: paired intervals and tests."""
