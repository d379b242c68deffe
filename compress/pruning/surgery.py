"""Physical surgery on transformer blocks: cut attention heads, feed-forward neurons and whole
blocks out of the weight tensors, so the model really gets smaller and faster.

Where a block keeps its parts is family data (:mod:`compress.models.families`), not code per
model. A projection is cut by the rows of its *parts*: a fused projection (GPT-2's
``c_attn``, Phi-3's ``qkv_proj`` and ``gate_up_proj``, ModernBERT's ``Wqkv`` and ``Wi``) is
one module holding several parts one after another, and :func:`_cut_rows` handles every
such module the same way. GPT-2's ``Conv1D`` (a Linear stored transposed) stays a
``Conv1D``. The same functions replay a recorded structure onto a freshly built skeleton
when a saved artifact is loaded (:func:`apply_structure`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch
from huggingface_hub.errors import StrictDataclassError
from torch import nn
from transformers.pytorch_utils import Conv1D

from compress.models.families import BY_BLOCK, BlockLayout
from compress.models.layers import transformer_blocks, weight_rows

Projection = nn.Linear | Conv1D
# attention attributes that say how many heads it runs, and what follows from that
_HEAD_COUNTS = ("num_attention_heads", "num_heads", "n_heads")
_HEAD_WIDTHS = ("all_head_size", "split_size")  # GPT-2 splits c_attn's output by split_size


def layout_of(block: nn.Module) -> BlockLayout:
    name = type(block).__name__
    if name not in BY_BLOCK:
        known = ", ".join(sorted(BY_BLOCK))
        raise ValueError(f"structured pruning does not know {name} blocks; known: {known}")
    return BY_BLOCK[name].layout


def out_features(module: Projection) -> int:
    return weight_rows(module).shape[0]


def in_features(module: Projection) -> int:
    return weight_rows(module).shape[1]


def head_size(block: nn.Module) -> int:
    attention = block.get_submodule(layout_of(block).attention)
    return int(getattr(attention, "attention_head_size", None) or attention.head_dim)


def head_count(block: nn.Module) -> int:
    """Query heads: the output projection reads one column block per head (never fused)."""
    return in_features(block.get_submodule(layout_of(block).output)) // head_size(block)


def kv_head_count(block: nn.Module) -> int:
    """Key/value heads: fewer than query heads with grouped-query attention. In a fused
    ``[query | key | value]`` projection they are what the query rows leave, halved."""
    layout, size = layout_of(block), head_size(block)
    key_rows = out_features(block.get_submodule(layout.key))
    if layout.key == layout.query:
        key_rows = (key_rows - head_count(block) * size) // 2
    return key_rows // size


def ffn_width(block: nn.Module) -> int:
    """Feed-forward neurons: the rows of one part of the (possibly fused) up projections."""
    layout = layout_of(block)
    return out_features(block.get_submodule(layout.up[0])) // layout.up.count(layout.up[0])


def _attention_parts(block: nn.Module) -> list[tuple[str, int]]:
    layout, size = layout_of(block), head_size(block)
    queries, kvs = head_count(block) * size, kv_head_count(block) * size
    return [(layout.query, queries), (layout.key, kvs), (layout.value, kvs)]


def _ffn_parts(block: nn.Module) -> list[tuple[str, int]]:
    width = ffn_width(block)
    return [(path, width) for path in layout_of(block).up]


def part_weights(block: nn.Module, parts: list[tuple[str, int]]) -> list[torch.Tensor]:
    """The ``[rows, in]`` weight of each part, in order (a fused module's parts follow one
    another in its output rows)."""
    weights, offsets = [], Counter()
    for path, size in parts:
        start = offsets[path]
        weights.append(weight_rows(block.get_submodule(path)).detach()[start : start + size])
        offsets[path] += size
    return weights


def query_key_value(block: nn.Module) -> list[torch.Tensor]:
    """The ``[rows, in]`` weights of the query, key and value projections."""
    return part_weights(block, _attention_parts(block))


def up_weights(block: nn.Module) -> list[torch.Tensor]:
    """The ``[width, in]`` weight of each feed-forward input projection (gate, up)."""
    return part_weights(block, _ffn_parts(block))


def _sliced(module: Projection, rows: torch.Tensor | None, cols: torch.Tensor | None):
    """A module of the same kind keeping output ``rows`` and input ``cols``."""
    weight = weight_rows(module).detach()
    bias = None if module.bias is None else module.bias.detach()
    if rows is not None:
        weight = weight[rows]
        bias = None if bias is None else bias[rows]
    if cols is not None:
        weight = weight[:, cols]
    out, inputs = weight.shape
    if isinstance(module, Conv1D):
        sliced = Conv1D(out, inputs).to(weight.dtype)
        weight = weight.t()
    else:
        sliced = nn.Linear(inputs, out, bias=bias is not None, dtype=weight.dtype)
    with torch.no_grad():
        sliced.weight.copy_(weight)
        if bias is not None:
            sliced.bias.copy_(bias)
    return sliced


def _replace(block: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, attr = path.rpartition(".")
    setattr(block.get_submodule(parent) if parent else block, attr, module)


def _cut_rows(block: nn.Module, parts: list[tuple[str, int, torch.Tensor]]) -> None:
    """Keep, of each part ``(path, rows, kept)``, its rows ``kept``; a fused module is named
    once per part, in the order of its output rows, and is cut once, all parts together."""
    kept: dict[str, list[torch.Tensor]] = {}
    offsets = Counter()
    for path, size, rows in parts:
        kept.setdefault(path, []).append(rows + offsets[path])
        offsets[path] += size
    for path, pieces in kept.items():
        module = block.get_submodule(path)
        if offsets[path] != out_features(module):
            raise ValueError(
                f"{type(block).__name__}.{path} has {out_features(module)} output rows, and "
                f"the layout's parts of it {offsets[path]}"
            )
        _replace(block, path, _sliced(module, torch.cat(pieces), None))


def _cut_cols(block: nn.Module, path: str, cols: torch.Tensor) -> None:
    _replace(block, path, _sliced(block.get_submodule(path), None, cols))


def kv_heads_serving(block: nn.Module, keep: Sequence[int]) -> list[int]:
    """The key/value heads that the query heads ``keep`` read. Attention kernels repeat each
    KV head for a fixed number of query heads, so every one of them must serve as many."""
    group = head_count(block) // kv_head_count(block)
    served = Counter(h // group for h in keep)
    if len(set(served.values())) > 1:
        raise ValueError(
            f"query heads {sorted(keep)} keep unequal numbers of heads in their key/value groups "
            f"of {group}: {dict(sorted(served.items()))}"
        )
    return sorted(served)


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


def _head_rows(heads: Sequence[int], size: int) -> torch.Tensor:
    return torch.cat([torch.arange(h * size, (h + 1) * size) for h in heads])


def _has(module: nn.Module, path: str) -> bool:
    try:
        module.get_submodule(path)
    except AttributeError:
        return False
    return True


def _recount_heads(attention: nn.Module, heads: int, kv_heads: int, size: int) -> None:
    """Tell the attention module how many heads it now runs (the attributes it has)."""
    for attr in _HEAD_COUNTS:
        if hasattr(attention, attr):
            setattr(attention, attr, heads)
    for attr in _HEAD_WIDTHS:
        if hasattr(attention, attr):
            setattr(attention, attr, heads * size)
    if hasattr(attention, "num_key_value_heads"):
        attention.num_key_value_heads = kv_heads
    if hasattr(attention, "num_key_value_groups"):
        attention.num_key_value_groups = heads // kv_heads


def keep_heads(block: nn.Module, keep: Sequence[int]) -> None:
    """Keep only the attention heads numbered ``keep`` (in the block's current numbering).
    With grouped key/value heads, ``keep`` numbers query heads; the KV heads they read stay
    (:func:`kv_heads_serving`), the others go.

    The attention module remembers the original numbers of its kept heads
    (``_compress_heads``): saving records them, and a shared per-head bias is sliced by them.
    """
    layout, size = layout_of(block), head_size(block)
    attention = block.get_submodule(layout.attention)
    current = getattr(attention, "_compress_heads", list(range(head_count(block))))
    keep = sorted(keep)
    if not keep:
        raise ValueError("a block needs at least one attention head")
    kv_keep = kv_heads_serving(block, keep)
    rows, kv_rows = _head_rows(keep, size), _head_rows(kv_keep, size)
    kept = [rows, kv_rows, kv_rows]
    parts = [(path, n, r) for (path, n), r in zip(_attention_parts(block), kept, strict=True)]
    _cut_rows(block, parts)
    for path in layout.head_rows:
        if _has(block, path):
            _cut_rows(block, [(path, len(current) * size, rows)])
    _cut_cols(block, layout.output, rows)
    _recount_heads(attention, len(keep), len(kv_keep), size)
    attention._compress_heads = [current[h] for h in keep]
    if layout.head_bias_kwarg:
        previous = getattr(attention, "_compress_hook", None)
        if previous is not None:
            previous.remove()
        attention._compress_hook = attention.register_forward_pre_hook(
            _slice_heads_bias(attention._compress_heads, layout.head_bias_kwarg), with_kwargs=True
        )


def keep_neurons(block: nn.Module, keep: Sequence[int]) -> None:
    """Keep only the feed-forward intermediate neurons numbered ``keep`` (the same rows of
    every part of the up projections, the same columns of the down projection)."""
    index = torch.tensor(sorted(keep))
    _cut_rows(block, [(path, width, index) for path, width in _ffn_parts(block)])
    _cut_cols(block, layout_of(block).down, index)


def describe_ffn_in_config(model: nn.Module) -> None:
    """Write the kept feed-forward width into the config (under the family's own key)."""
    blocks = transformer_blocks(model)
    setattr(model.config, layout_of(blocks[0]).width_config, ffn_width(blocks[0]))


def describe_heads_in_config(model: nn.Module) -> None:
    """Write the kept head counts into the config where its layout can say them, every block
    keeps as many heads and the config stays valid (Llama's wants the hidden size to be a
    multiple of the head count); loading then builds the smaller blocks directly. Otherwise
    the config keeps the original counts and loading cuts the recorded heads out again."""
    blocks = transformer_blocks(model)
    layout = layout_of(blocks[0])
    counts = {(head_count(b), kv_head_count(b), head_size(b)) for b in blocks}
    if layout.head_config is None or len(counts) != 1:
        return
    config = model.config
    before = [getattr(config, attr, None) for attr in layout.head_config]
    for attr, value in zip(layout.head_config, counts.pop(), strict=True):
        setattr(config, attr, value)
    try:
        getattr(config, "validate", lambda: None)()
    except (ValueError, StrictDataclassError):
        for attr, value in zip(layout.head_config, before, strict=True):
            setattr(config, attr, value)


def _module_kinds(block: nn.Module) -> list[str]:
    return [f"{name}:{type(m).__name__}" for name, m in block.named_modules()]


def keep_blocks(model: nn.Module, keep: Sequence[int]) -> None:
    """Keep only the transformer blocks numbered ``keep``; the config's layer count follows.
    A family whose first block is built differently (ModernBERT's has no attention norm)
    keeps its first block: the config could not rebuild another one there."""
    blocks = transformer_blocks(model)
    kept = [blocks[i] for i in sorted(keep)]
    if not kept:
        raise ValueError("a model needs at least one transformer block")
    if _module_kinds(kept[0]) != _module_kinds(blocks[0]):
        raise ValueError(
            f"{type(blocks[0]).__name__} 0 is built unlike the others and must stay first, "
            "accepted: prune_method.drop=top"
        )
    for _ in range(len(blocks)):
        del blocks[0]
    blocks.extend(kept)
    model.config.num_hidden_layers = len(kept)
    # decoders index their KV cache by the block's layer_idx
    for index, block in enumerate(kept):
        for module in block.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = index
    if isinstance(getattr(model.config, "layer_types", None), list):
        model.config.layer_types = [model.config.layer_types[i] for i in sorted(keep)]


def kept_heads(model: nn.Module) -> dict[int, list[int]]:
    """For each block that lost heads: the original numbers of the heads it kept."""
    structure = {}
    for index, block in enumerate(transformer_blocks(model)):
        if type(block).__name__ in BY_BLOCK:
            attention = block.get_submodule(layout_of(block).attention)
            heads = getattr(attention, "_compress_heads", None)
            if heads is not None:
                structure[index] = list(heads)
    return structure


def apply_structure(model: nn.Module, heads: dict[int, list[int]]) -> None:
    """Give a freshly built skeleton the head structure recorded by :func:`kept_heads`."""
    blocks = transformer_blocks(model)
    for index, keep in heads.items():
        block = blocks[int(index)]
        if head_count(block) == len(keep):  # the config already built the kept heads
            block.get_submodule(layout_of(block).attention)._compress_heads = list(keep)
        else:
            keep_heads(block, keep)
