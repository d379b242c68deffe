"""Score a copy of a model that differs from it only from some point of its forward pass on,
without running the blocks before that point again: their outputs on the scoring batches are
recorded once, on the original, and the copy's unchanged leading blocks replay them.

What makes it exact: a block is replayed only if every module with weights that runs before
the block ends (in the order the original ran them) is unchanged in the copy — same type,
equal tensors — so its input, and hence its output, is the original's. A sensitivity scan that
quantizes one Linear at a time then skips, on average, half the blocks of every variant.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

# A block: an element of a ModuleList (``model.layers.3``, ``bert.encoder.layer.3``).
_BLOCK = re.compile(r"^(.+)\.(\d+)$")


def _weighted_leaves(model: nn.Module) -> dict[str, nn.Module]:
    return {
        name: module for name, module in model.named_modules()
        if name and next(module.children(), None) is None
        and next(module.parameters(recurse=False), None) is not None
    }  # fmt: skip


def _blocks(model: nn.Module) -> list[str]:
    return [
        name for name, module in model.named_modules()
        if _BLOCK.match(name) and isinstance(model.get_submodule(name.rsplit(".", 1)[0]),
                                             nn.ModuleList)
    ]  # fmt: skip


def _copy(value: Any) -> Any:
    """A fresh copy of a block's output, so nothing downstream can change the recording."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, tuple | list):
        return type(value)(_copy(item) for item in value)
    return value


def _same(one: nn.Module, other: nn.Module) -> bool:
    if type(one) is not type(other):
        return False
    mine, theirs = one.state_dict(), other.state_dict()
    return mine.keys() == theirs.keys() and all(
        isinstance(mine[k], torch.Tensor) and isinstance(theirs[k], torch.Tensor)
        and mine[k].shape == theirs[k].shape and torch.equal(mine[k], theirs[k])
        for k in mine
    )  # fmt: skip


class _Recorded(nn.Module):
    """Stands in for a block: returns its recorded output on the batch being scored. Other
    attributes are the block's own (a model may read one, e.g. ModernBERT's attention type)."""

    def __init__(self, block: nn.Module, outputs: list[Any], replay: BlockReplay) -> None:
        super().__init__()
        self.outputs, self.replay = outputs, replay
        object.__setattr__(self, "block", block)  # not a submodule: its weights are not run

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.__dict__["block"], name)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return _copy(self.outputs[self.replay.batch])


class BlockReplay:
    """The blocks' outputs and the order its weighted modules ran in, recorded on ``model``
    inside :meth:`recording` (call :meth:`next_batch` before each batch, there and when a
    variant is scored, so a replayed block returns the output of the batch at hand)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.batch = -1
        self.order: list[str] = []  # weighted leaves, in the order they first ran
        self.block_ends: dict[str, int] = {}  # block -> how many leaves had run when it ended
        self.outputs: dict[str, dict[int, list[Any]]] = {}  # block -> batch -> its outputs

    def next_batch(self) -> None:
        self.batch += 1

    @contextmanager
    def recording(self) -> Iterator[BlockReplay]:
        leaves, blocks = _weighted_leaves(self.model), _blocks(self.model)
        handles = [
            module.register_forward_pre_hook(self._ran(name)) for name, module in leaves.items()
        ] + [self.model.get_submodule(name).register_forward_hook(self._ended(name))
             for name in blocks]  # fmt: skip
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()
            self.batch = -1

    def _ran(self, name: str) -> Callable:
        def hook(module: nn.Module, args: Any) -> None:
            if name not in self.order:
                self.order.append(name)

        return hook

    def _ended(self, name: str) -> Callable:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            self.block_ends.setdefault(name, len(self.order))
            self.outputs.setdefault(name, {}).setdefault(self.batch, []).append(_copy(output))

        return hook

    def replay_into(self, variant: nn.Module) -> list[str]:
        """Replace ``variant``'s leading blocks that are unchanged (see the module docstring)
        by their recordings; returns the blocks replaced. ``variant`` is changed in place."""
        unchanged = 0
        for name in self.order:
            try:
                if not _same(variant.get_submodule(name), self.model.get_submodule(name)):
                    break
            except AttributeError:
                break
            unchanged += 1
        replaced = [
            block for block, end in self.block_ends.items()
            # a block run more than once a pass (shared weights, as in ALBERT) is not replayed
            if end <= unchanged and all(len(out) == 1 for out in self.outputs[block].values())
        ]  # fmt: skip
        for block in replaced:
            parent, index = _BLOCK.match(block).groups()
            outputs = [self.outputs[block][batch][0] for batch in sorted(self.outputs[block])]
            blocks = variant.get_submodule(parent)
            blocks[int(index)] = _Recorded(blocks[int(index)], outputs, self)
        self.batch = -1
        return replaced
