"""The integer grids weights are rounded to, shared by every method that chooses values on
them (round-to-nearest, GPTQ, SmoothQuant): symmetric int8 per output channel, and
asymmetric int4 per group of consecutive input channels."""

from __future__ import annotations

import torch

INT4_LEVELS = 15  # the largest of the 16 levels 0..15


def int8_per_channel(
    weight: torch.Tensor, scale_dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 (-127..127) with one scale per output row, in ``scale_dtype`` (the
    dtype the kernel reads; weights are rounded to the scale as stored): the weight is
    ``q * scale[:, None]``."""
    scale = (weight.detach().abs().amax(dim=1).float().clamp(min=1e-12) / 127).to(scale_dtype)
    q = (weight.detach().float() / scale.float()[:, None]).round().clamp(-127, 127)
    return q.to(torch.int8), scale


def int4_params(groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and integer zero point of each row of ``groups`` (the last dimension is one
    group), such that zero is a level of the grid: a pruned weight stays exactly zero.

    Scales are rounded to bfloat16, the precision they are stored in (and the int4 kernel
    reads), before anything is rounded to them; an all-zero group gets the grid -1..1."""
    low = groups.amin(dim=-1).clamp(max=0)
    high = groups.amax(dim=-1).clamp(min=0)
    flat = (low == 0) & (high == 0)
    low, high = low.masked_fill(flat, -1.0), high.masked_fill(flat, 1.0)
    scale = ((high - low) / INT4_LEVELS).clamp(min=1e-20).bfloat16().float()
    zero = (-low / scale).round().clamp(0, INT4_LEVELS)
    return scale, zero


def int4_round(weight: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
    """The level (0..15, as float) nearest to each weight; ``scale`` and ``zero`` broadcast."""
    return (weight / scale).round().add(zero).clamp(0, INT4_LEVELS)


def int4_rtn(weight: torch.Tensor, group_size: int) -> tuple[torch.Tensor, ...]:
    """Round-to-nearest int4 of an ``[out, in]`` weight in groups of ``group_size`` inputs:
    levels ``[out, in]`` (uint8), scales ``[out, in / group_size]`` (bfloat16) and zero
    points (uint8 levels)."""
    rows, columns = weight.shape
    groups = weight.detach().float().reshape(rows, columns // group_size, group_size)
    scale, zero = int4_params(groups)
    levels = int4_round(groups, scale[..., None], zero[..., None]).reshape(rows, columns)
    return levels.to(torch.uint8), scale.bfloat16(), zero.to(torch.uint8)


def int4_dequantize(
    levels: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, group_size: int
) -> torch.Tensor:
    """The float32 weight ``scale * (level - zero)`` of each group."""
    expand = {"repeats": group_size, "dim": 1}
    return scale.float().repeat_interleave(**expand) * (
        levels.float() - zero.float().repeat_interleave(**expand)
    )


def pack_nibbles(levels: torch.Tensor) -> torch.Tensor:
    """Two 4-bit levels per byte, the even input column in the low nibble: a layout that is
    the same on every CPU (the int4 kernel's own tile layout depends on the vector width)."""
    return (levels[:, 0::2] | (levels[:, 1::2] << 4)).to(torch.uint8)


def unpack_nibbles(packed: torch.Tensor) -> torch.Tensor:
    """The ``[out, in]`` uint8 levels of :func:`pack_nibbles`."""
    return torch.stack([packed & 0x0F, packed >> 4], dim=-1).reshape(packed.shape[0], -1)
