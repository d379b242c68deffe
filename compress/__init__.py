"""compress: Hydra sweeps that compress transformer models and measure what each recipe does."""

import logging

__version__ = "0.1.0"

# torchao (imported by transformers when installed) warns at import that its CUDA kernels do
# not load on a CPU-only torch, and torch that it registers enums the old way: harmless, and
# it would open every job's log. Set before anything imports them.
for _name in ("torchao", "torch.utils._pytree"):
    logging.getLogger(_name).setLevel(logging.ERROR)
