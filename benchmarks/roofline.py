"""How far a measured forward pass is from what the CPU's arithmetic could do.

``forward_flops`` counts the multiply-adds of a transformer encoder's forward pass from the
model itself (every Linear's shape, and the two attention matrix products per block with the
heads that are left), so pruned models count what they really compute. ``isa_peak`` is the
arithmetic peak of the cores in use for a dtype, from the instructions the CPU flags show:
fp32 FMA (two 256-bit FMA pipes: 16 multiply-adds per cycle; AVX-512 on Zen 4 runs as two
256-bit halves, so no more), bf16 dot products (avx512_bf16: twice fp32), int8 dot products
(avx512_vnni or avx_vnni: four times fp32; without VNNI the AVX2 int8 sequence reaches about
twice fp32). The floor is FLOPs / peak; a variant's fraction of it is floor / measured time.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

# multiply-adds per cycle per core, by dtype and the CPU feature that provides them
_MACS_PER_CYCLE = {
    "fp32": (("avx512f", 16), ("avx2", 16)),
    "bf16": (("avx512_bf16", 32), ("amx_bf16", 32), ("avx2", 16)),
    "int8": (("avx512_vnni", 64), ("avx_vnni", 64), ("avx2", 32)),
}


def forward_flops(model: nn.Module, batch: int, seq_len: int) -> float:
    """FLOPs (2 per multiply-add) of one forward pass of ``batch`` sequences."""
    tokens = batch * seq_len
    linear = sum(m.in_features * m.out_features for m in model.modules()
                 if isinstance(m, nn.Linear))  # fmt: skip
    queries = [m for name, m in model.named_modules() if name.endswith(("query", "q_proj", ".q"))]
    attention = sum(2 * seq_len * q.out_features for q in queries)  # QK^T and AV per token
    return 2.0 * tokens * (linear + attention)


def clock_hz() -> float:
    """The cores' maximum clock (cpufreq), else the clock /proc/cpuinfo reports now."""
    limit = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if limit.exists():
        return int(limit.read_text()) * 1e3
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("cpu MHz"):
            return float(line.split(":")[1]) * 1e6
    raise RuntimeError("no clock rate in cpufreq or /proc/cpuinfo")


def isa_peak(dtype: str, flags: tuple[str, ...], cores: int, clock: float) -> float:
    """Peak FLOP/s (or OP/s for int8) of ``cores`` cores at ``clock`` Hz for ``dtype``."""
    macs = next(per_cycle for flag, per_cycle in _MACS_PER_CYCLE[dtype] if flag in flags)
    return 2.0 * macs * clock * cores
