"""``bench``: how speed, load time and energy are measured."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from compress.config.errors import ConfigError, check_positive


class LoadMethod(StrEnum):
    """How the cold-load measurement opens an artifact: memory-mapped without copying, read
    into memory (safetensors.load_file), or transformers' from_pretrained (plain float models
    only)."""

    zero_copy = "zero_copy"
    read = "read"
    from_pretrained = "from_pretrained"


class LengthMode(StrEnum):
    """Classification latency on batches padded to ``bench.seq_len`` (fixed) or at the
    held-out texts' own lengths (data: each batch padded to its longest text)."""

    fixed = "fixed"
    data = "data"


@dataclass
class BenchConfig:
    """How latency is measured: sequence length, warm-up runs, timed repeats."""

    seq_len: int = 128
    lengths: LengthMode = LengthMode.fixed
    warmup: int = 5
    repeats: int = 30
    cold_load: bool = True
    load_method: LoadMethod = LoadMethod.zero_copy
    # Power charged per busy core when no energy counter exists (estimate; see energy.py).
    watts_per_core: float = 5.0

    def __post_init__(self) -> None:
        check_positive("bench.seq_len", self.seq_len)
        check_positive("bench.repeats", self.repeats)
        if self.warmup < 0:
            raise ConfigError(f"bench.warmup={self.warmup} is negative", "0, 1, 2, ...")
