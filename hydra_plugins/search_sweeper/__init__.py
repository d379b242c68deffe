"""``hydra/sweeper=search``: a seeded multi-objective Optuna search over sweep overrides."""
