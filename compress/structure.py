"""Physical surgery on transformer blocks: cut attention heads, feed-forward neurons and whole
blocks out of the weight tensors, so the model really gets smaller and faster.

Where a block keeps its parts is architecture data (:data:`LAYOUTS`), not code per model.
The same functions replay a recorded structure onto a freshly built skeleton when a saved
artifact is loaded (:func:`apply_structure`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from compress.layers import transformer_blocks


@dataclass(frozen=True)
class BlockLayout:
    """Dotted paths, inside one transformer block, of the parts structured pruning cuts.

    ``head_bias_kwarg`` names a per-head bias passed into the attention module on every call
    (MPNet's relative position bias, shared by all blocks): it is sliced to the kept heads.
    """

    attention: str
    query: str
    key: str
    value: str
    output: str
    up: tuple[str, ...]
    down: str
    head_bias_kwarg: str | None = None


LAYOUTS: dict[str, BlockLayout] = {
    "BertLayer": BlockLayout(
        attention="attention.self",
        query="attention.self.query",
        key="attention.self.key",
        value="attention.self.value",
        output="attention.output.dense",
        up=("intermediate.dense",),
        down="output.dense",
    ),
    "MPNetLayer": BlockLayout(
        attention="attention.attn",
        query="attention.attn.q",
        key="attention.attn.k",
        value="attention.attn.v",
        output="attention.attn.o",
        up=("intermediate.dense",),
        down="output.dense",
        head_bias_kwarg="position_bias",
    ),
}


def layout_of(block: nn.Module) -> BlockLayout:
    name = type(block).__name__
    if name not in LAYOUTS:
        known = ", ".join(sorted(LAYOUTS))
        raise ValueError(f"structured pruning does not know {name} blocks; known: {known}")
    return LAYOUTS[name]


def head_size(block: nn.Module) -> int:
    attention = block.get_submodule(layout_of(block).attention)
    return int(getattr(attention, "attention_head_size", None) or attention.head_dim)


def head_count(block: nn.Module) -> int:
    layout = layout_of(block)
    return block.get_submodule(layout.query).out_features // head_size(block)


def _sliced(linear: nn.Linear, rows: torch.Tensor | None, cols: torch.Tensor | None) -> nn.Linear:
    weight = linear.weight.detach()
    bias = None if linear.bias is None else linear.bias.detach()
    if rows is not None:
        weight = weight[rows]
        bias = None if bias is None else bias[rows]
    if cols is not None:
        weight = weight[:, cols]
    out_features, in_features = weight.shape
    sliced = nn.Linear(in_features, out_features, bias=bias is not None, dtype=weight.dtype)
    with torch.no_grad():
        sliced.weight.copy_(weight)
        if bias is not None:
            sliced.bias.copy_(bias)
    return sliced


def _replace(block: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, attr = path.rpartition(".")
    setattr(block.get_submodule(parent) if parent else block, attr, module)


def _slice_heads_bias(kept: list[int], kwarg: str):
    index = torch.tensor(kept)

    def hook(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        bias = kwargs.get(kwarg)
        if bias is None and len(args) > 2:  # passed positionally (hidden, mask, bias)
            args = (*args[:2], args[2][:, index], *args[3:])
        elif bias is not None:
            kwargs = {**kwargs, kwarg: bias[:, index]}
        return args, kwargs

    return hook


def keep_heads(block: nn.Module, keep: Sequence[int]) -> None:
    """Keep only the attention heads numbered ``keep`` (in the block's current numbering).

    The attention module remembers the original numbers of its kept heads
    (``_compress_heads``): saving records them, and a shared per-head bias is sliced by them.
    """
    layout = layout_of(block)
    size = head_size(block)
    attention = block.get_submodule(layout.attention)
    current = getattr(attention, "_compress_heads", list(range(head_count(block))))
    keep = sorted(keep)
    if not keep:
        raise ValueError("a block needs at least one attention head")
    rows = torch.cat([torch.arange(h * size, (h + 1) * size) for h in keep])
    for path in (layout.query, layout.key, layout.value):
        _replace(block, path, _sliced(block.get_submodule(path), rows, None))
    _replace(block, layout.output, _sliced(block.get_submodule(layout.output), None, rows))
    for attr in ("num_attention_heads", "num_heads"):
        if hasattr(attention, attr):
            setattr(attention, attr, len(keep))
    if hasattr(attention, "all_head_size"):
        attention.all_head_size = len(keep) * size
    attention._compress_heads = [current[h] for h in keep]
    if layout.head_bias_kwarg:
        previous = getattr(attention, "_compress_hook", None)
        if previous is not None:
            previous.remove()
        attention._compress_hook = attention.register_forward_pre_hook(
            _slice_heads_bias(attention._compress_heads, layout.head_bias_kwarg), with_kwargs=True
        )


def keep_neurons(block: nn.Module, keep: Sequence[int]) -> None:
    """Keep only the feed-forward intermediate neurons numbered ``keep``."""
    layout = layout_of(block)
    index = torch.tensor(sorted(keep))
    for path in layout.up:
        _replace(block, path, _sliced(block.get_submodule(path), index, None))
    _replace(block, layout.down, _sliced(block.get_submodule(layout.down), None, index))


def keep_blocks(model: nn.Module, keep: Sequence[int]) -> None:
    """Keep only the transformer blocks numbered ``keep``; the config's layer count follows."""
    blocks = transformer_blocks(model)
    kept = [blocks[i] for i in sorted(keep)]
    if not kept:
        raise ValueError("a model needs at least one transformer block")
    for _ in range(len(blocks)):
        del blocks[0]
    blocks.extend(kept)
    model.config.num_hidden_layers = len(kept)


def kept_heads(model: nn.Module) -> dict[int, list[int]]:
    """For each block that lost heads: the original numbers of the heads it kept."""
    structure = {}
    for index, block in enumerate(transformer_blocks(model)):
        if type(block).__name__ in LAYOUTS:
            attention = block.get_submodule(layout_of(block).attention)
            heads = getattr(attention, "_compress_heads", None)
            if heads is not None:
                structure[index] = list(heads)
    return structure


def apply_structure(model: nn.Module, heads: dict[int, list[int]]) -> None:
    """Give a freshly built skeleton the head structure recorded by :func:`kept_heads`."""
    blocks = transformer_blocks(model)
    for index, keep in heads.items():
        keep_heads(blocks[int(index)], keep)
