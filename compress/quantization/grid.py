"""The integer grids weights are rounded to, shared by every method that chooses values on
them (round-to-nearest, GPTQ, SmoothQuant): symmetric int8 per output channel, and
asymmetric int4 per group of consecutive input channels.

Why int4's zero is a float and not an integer level: a weight matrix that was 4-bit already
(SmolLM2 ships as GGUF Q4_1, whose blocks of 32 are ``min + level * step``) re-rounded onto a
grid whose zero must be a level is shifted by up to half a step against its own grid, the
same shift for every weight of the group; that shared error does not average out in the dot
product (measured on SmolLM2: perplexity 1.36x fp32 with integer zeros, see docs/llm.md)."""

from __future__ import annotations

import torch

INT4_LEVELS = 15  # the largest of the 16 levels 0..15
_MIDDLE = 8  # the level the int4 kernel centres its grid on


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
    """Scale and zero of each row of ``groups`` (the last dimension is one group) on the grid
    ``scale * (level - 8) + zero``, levels 0..15: the form torch's int4 CPU kernel computes
    (and torchao's int4 CPU layout stores, its "float zero point domain"), both in bfloat16.

    Level 0 sits at the group's minimum and level 15 at its maximum, up to the bfloat16
    rounding of scale and zero, so no level is wasted on a range the weights do not cover. A
    group that holds exact zeros (pruned weights) is shifted so that zero is a level (within
    1/64 of a step: the bfloat16 rounding of ``zero``); a flat group gets a tiny scale."""
    low, high = groups.amin(dim=-1), groups.amax(dim=-1)
    holds_zero = (groups == 0).any(dim=-1)
    low, high = torch.where(holds_zero, low.clamp(max=0), low), high.clamp(min=low)
    scale = ((high - low) / INT4_LEVELS).clamp(min=1e-8).bfloat16().float()
    snapped = -(-low / scale).round() * scale  # level 0 a whole number of steps below zero
    first = torch.where(holds_zero, snapped, low)
    zero = (first + _MIDDLE * scale).bfloat16().float()
    return scale, zero


def int4_round(weight: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
    """The level (0..15, as float) nearest to each weight; ``scale`` and ``zero`` broadcast."""
    return ((weight - zero) / scale + _MIDDLE).round().clamp(0, INT4_LEVELS)


def int4_value(levels: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
    """The weight a level stands for; ``scale`` and ``zero`` broadcast."""
    return scale * (levels - _MIDDLE) + zero


def int4_rtn(weight: torch.Tensor, group_size: int) -> tuple[torch.Tensor, ...]:
    """Round-to-nearest int4 of an ``[out, in]`` weight in groups of ``group_size`` inputs:
    levels ``[out, in]`` (uint8), scales and zeros ``[out, in / group_size]`` (bfloat16)."""
    rows, columns = weight.shape
    groups = weight.detach().float().reshape(rows, columns // group_size, group_size)
    scale, zero = int4_params(groups)
    levels = int4_round(groups, scale[..., None], zero[..., None]).reshape(rows, columns)
    return levels.to(torch.uint8), scale.bfloat16(), zero.bfloat16()


def int4_dequantize(
    levels: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, group_size: int
) -> torch.Tensor:
    """The float32 weight ``scale * (level - 8) + zero`` of each group: what the kernel
    multiplies by."""
    expand = {"repeats": group_size, "dim": 1}
    return int4_value(levels.float(), scale.float().repeat_interleave(**expand),
                      zero.float().repeat_interleave(**expand))  # fmt: skip


def pack_nibbles(levels: torch.Tensor) -> torch.Tensor:
    """Two 4-bit levels per byte, the even input column in the low nibble: a layout that is
    the same on every CPU (the int4 kernel's own tile layout depends on the vector width)."""
    return (levels[:, 0::2] | (levels[:, 1::2] << 4)).to(torch.uint8)


def unpack_nibbles(packed: torch.Tensor) -> torch.Tensor:
    """The ``[out, in]`` uint8 levels of :func:`pack_nibbles`."""
    return torch.stack([packed & 0x0F, packed >> 4], dim=-1).reshape(packed.shape[0], -1)
