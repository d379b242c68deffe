"""compress: Hydra sweeps that compress transformer models and measure what each recipe does."""

__version__ = "0.1.0"
