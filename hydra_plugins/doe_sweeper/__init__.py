"""Hydra sweeper plugin ``hydra/sweeper=doe``: designed experiments instead of full grids."""
