"""GPTQ (Frantar et al. 2023): 4-bit weights chosen so that the layer's outputs on calibration
inputs change least, not each weight.

For a Linear with inputs X, the output error of quantizing its weight W to Q is
||W X - Q X||^2 = tr((W - Q) H (W - Q)^T) / 2 with H = 2 X X^T. GPTQ quantizes the input
columns one at a time; after each, the rounding error of that column is spread over the
columns not yet quantized along the inverse Hessian (an upper Cholesky factor of H^-1 gives
every step's update), so that later columns compensate for it. Columns go in blocks of 128
whose updates to the remaining columns are applied lazily, once per block.

The Linears are calibrated block by block, as in the paper's implementation: the inputs of
the first block are captured once, each block's Hessians are measured on its inputs, the
block is quantized, and its quantized outputs are the next block's inputs, so later blocks
compensate for the errors of earlier ones (within a block, every Linear sees the block's
float path). Linears outside the blocks (an LM head) are calibrated last, on a forward of
the whole quantized model.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from compress.config.quant import Int4GPTQConfig
from compress.models.layers import transformer_blocks
from compress.quantization.calibration import (
    Batch,
    block_inputs,
    run_batches,
    run_block,
    watching_inputs,
)
from compress.quantization.grid import int4_dequantize, int4_params, int4_round, int4_value

Int4 = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # levels, scales, zeros
_BLOCK = 128  # columns whose updates to the rest are applied at once


def hessians(linears: dict[str, nn.Linear], run: Callable[[], object]) -> dict[str, torch.Tensor]:
    """H = 2 X^T X / tokens of each Linear's input over what ``run()`` computes."""
    sums = {n: torch.zeros(m.in_features, m.in_features) for n, m in linears.items()}
    tokens = dict.fromkeys(linears, 0)

    def observe(name: str, inputs: torch.Tensor) -> None:
        sums[name].addmm_(inputs.t(), inputs, alpha=2.0)
        tokens[name] += inputs.shape[0]

    with watching_inputs(linears, observe):
        run()
    return {name: sums[name] / max(tokens[name], 1) for name in linears}


def _inverse_factor(hessian: torch.Tensor, percdamp: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The upper Cholesky factor of the dampened H^-1 (in float64 for stability), and which
    inputs are dead (never non-zero on the calibration data: their weights do not matter)."""
    h = hessian.double().clone()
    dead = h.diagonal() == 0
    h[dead, dead] = 1.0
    h.diagonal().add_(percdamp * h.diagonal().mean())
    inverse = torch.cholesky_inverse(torch.linalg.cholesky(h))
    return torch.linalg.cholesky(inverse, upper=True).float(), dead


def _quantize_block(
    block: torch.Tensor, factor: torch.Tensor, columns: torch.Tensor, out: Int4, group_size: int
) -> torch.Tensor:
    """Quantize the columns of one block in order, each error spread over the block's later
    columns; returns the scaled errors (what the block owes the columns after it).
    ``columns``: each block column's original index (its group); ``out`` is filled in.
    Groups not yet given parameters (order kept: they start inside this block) get them
    from the weights as updated so far."""
    levels, scale, zero = out
    errors = torch.zeros_like(block)
    for i, column in enumerate(columns.tolist()):
        group = column // group_size
        if column % group_size == 0 and not scale[:, group].any():
            scale[:, group], zero[:, group] = int4_params(block[:, i : i + group_size])
        q = int4_round(block[:, i], scale[:, group], zero[:, group])
        levels[:, column] = q
        error = (block[:, i] - int4_value(q, scale[:, group], zero[:, group])) / factor[i, i]
        block[:, i:].sub_(error[:, None] * factor[i, i:][None, :])
        errors[:, i] = error
    return errors


@torch.no_grad()
def gptq_int4(
    weight: torch.Tensor,
    hessian: torch.Tensor,
    group_size: int,
    percdamp: float = 0.01,
    act_order: bool = False,
) -> Int4:
    """GPTQ's int4 levels of ``weight`` ``[out, in]`` on the grid of
    :func:`compress.quantization.grid.int4_params`: levels (uint8), bfloat16 scales and
    zeros per group of ``group_size`` consecutive inputs, as round-to-nearest gives.

    ``act_order`` visits the inputs of largest H diagonal first; the group parameters are then
    fixed from the weight before the pass, so that groups stay consecutive columns."""
    rows, width = weight.shape
    order = torch.argsort(hessian.diagonal(), descending=True) if act_order else torch.arange(width)
    factor, dead = _inverse_factor(hessian[order][:, order], percdamp)
    w = weight.detach().float().clone()
    w[:, order[dead]] = 0
    groups = width // group_size
    scale, zero = torch.zeros(rows, groups), torch.zeros(rows, groups)
    if act_order:
        scale, zero = int4_params(w.reshape(rows, groups, group_size))
    w = w[:, order]
    levels = torch.zeros(rows, width)
    step = max(_BLOCK, group_size)
    for start in range(0, width, step):
        end = min(start + step, width)
        block = w[:, start:end].clone()
        errors = _quantize_block(block, factor[start:end, start:end], order[start:end],
                                 (levels, scale, zero), group_size)  # fmt: skip
        w[:, end:].sub_(errors @ factor[start:end, end:])
    return levels.to(torch.uint8), scale.bfloat16(), zero.bfloat16()


def _quantize_stage(
    linears: dict[str, nn.Linear], run: Callable[[], object], config: Int4GPTQConfig
) -> dict[str, Int4]:
    """GPTQ on ``linears`` with the Hessians of their inputs over ``run()``; each float weight
    is then replaced by its dequantized int4 (a new parameter, so that a weight tied to an
    embedding is left alone), so that what runs next sees the quantized layer."""
    chosen = {}
    for name, hessian in hessians(linears, run).items():
        levels, scale, zero = gptq_int4(linears[name].weight, hessian, config.group_size,
                                        config.percdamp, config.act_order)  # fmt: skip
        chosen[name] = levels, scale, zero
        quantized = int4_dequantize(levels, scale, zero, config.group_size)
        linears[name].weight = nn.Parameter(quantized, requires_grad=False)
    return chosen


@torch.no_grad()
def gptq_model(
    model: nn.Module, linears: dict[str, nn.Linear], batches: list[Batch], config: Int4GPTQConfig
) -> dict[str, Int4]:
    """GPTQ's int4 levels of every Linear in ``linears``, block by block (see the module)."""
    chosen: dict[str, Int4] = {}
    blocks = transformer_blocks(model)
    inputs = block_inputs(model, blocks[0], batches)
    for block in blocks:
        inside = {id(m) for m in block.modules()}
        stage = {n: m for n, m in linears.items() if id(m) in inside}
        if stage:
            chosen |= _quantize_stage(stage, partial(run_block, block, inputs), config)
        inputs = run_block(block, inputs)
    rest = {n: m for n, m in linears.items() if n not in chosen}
    if rest:
        chosen |= _quantize_stage(rest, lambda: run_batches(model, batches), config)
    return chosen
