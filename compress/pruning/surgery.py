"""Physical surgery on transformer blocks: cut attention heads, feed-forward neurons and whole
blocks out of the weight tensors, so the model really gets smaller and faster.

Where a block keeps its parts is architecture data (:data:`LAYOUTS`), not code per model.
The same functions replay a recorded structure onto a freshly built skeleton when a saved
artifact is loaded (:func:`apply_structure`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from huggingface_hub.errors import StrictDataclassError
from torch import nn

from compress.models.layers import transformer_blocks


@dataclass(frozen=True)
class BlockLayout:
    """Dotted paths, inside one transformer block, of the parts structured pruning cuts.

    ``head_bias_kwarg`` names a per-head bias passed into the attention module on every call
    (MPNet's relative position bias, shared by all blocks): it is sliced to the kept heads.
    ``head_config`` names the config fields (query heads, key/value heads, head size) that
    describe the kept heads when every block keeps as many (Llama's config can; BERT derives
    its head size from the head count, so its config keeps the original numbers).
    """

    attention: str
    query: str
    key: str
    value: str
    output: str
    up: tuple[str, ...]
    down: str
    head_bias_kwarg: str | None = None
    head_config: tuple[str, str, str] | None = None


# fmt: off
LAYOUTS: dict[str, BlockLayout] = {
    "BertLayer": BlockLayout(
        attention="attention.self", query="attention.self.query", key="attention.self.key",
        value="attention.self.value", output="attention.output.dense",
        up=("intermediate.dense",), down="output.dense",
    ),
    "MPNetLayer": BlockLayout(
        attention="attention.attn", query="attention.attn.q", key="attention.attn.k",
        value="attention.attn.v", output="attention.attn.o",
        up=("intermediate.dense",), down="output.dense", head_bias_kwarg="position_bias",
    ),
    # grouped KV heads: query head h reads key/value head h // (query heads / KV heads)
    "LlamaDecoderLayer": BlockLayout(
        attention="self_attn", query="self_attn.q_proj", key="self_attn.k_proj",
        value="self_attn.v_proj", output="self_attn.o_proj",
        up=("mlp.gate_proj", "mlp.up_proj"), down="mlp.down_proj",
        head_config=("num_attention_heads", "num_key_value_heads", "head_dim"),
    ),
}
# fmt: on


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


def kv_head_count(block: nn.Module) -> int:
    """Key/value heads: fewer than query heads with grouped-query attention."""
    layout = layout_of(block)
    return block.get_submodule(layout.key).out_features // head_size(block)


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


def _head_rows(heads: Sequence[int], size: int) -> torch.Tensor:
    return torch.cat([torch.arange(h * size, (h + 1) * size) for h in heads])


def keep_heads(block: nn.Module, keep: Sequence[int]) -> None:
    """Keep only the attention heads numbered ``keep`` (in the block's current numbering).
    With grouped key/value heads, ``keep`` numbers query heads; the KV heads they read stay
    (:func:`kv_heads_serving`), the others go.

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
    kv_keep = kv_heads_serving(block, keep)
    rows = _head_rows(keep, size)
    kv_rows = _head_rows(kv_keep, size)
    _replace(block, layout.query, _sliced(block.get_submodule(layout.query), rows, None))
    for path in (layout.key, layout.value):
        _replace(block, path, _sliced(block.get_submodule(path), kv_rows, None))
    _replace(block, layout.output, _sliced(block.get_submodule(layout.output), None, rows))
    for attr in ("num_attention_heads", "num_heads"):
        if hasattr(attention, attr):
            setattr(attention, attr, len(keep))
    if hasattr(attention, "num_key_value_groups"):
        attention.num_key_value_groups = len(keep) // len(kv_keep)
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
    before = [getattr(config, attr) for attr in layout.head_config]
    for attr, value in zip(layout.head_config, counts.pop(), strict=True):
        setattr(config, attr, value)
    try:
        getattr(config, "validate", lambda: None)()
    except (ValueError, StrictDataclassError):
        for attr, value in zip(layout.head_config, before, strict=True):
            setattr(config, attr, value)


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
        block = blocks[int(index)]
        if head_count(block) == len(keep):  # the config already built the kept heads
            block.get_submodule(layout_of(block).attention)._compress_heads = list(keep)
        else:
            keep_heads(block, keep)
