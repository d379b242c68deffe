"""Calibration: run a few batches of calibration data through the model while hooks watch the
inputs of chosen modules (activation ranges, SmoothQuant's channel maxima, GPTQ's Hessians)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from compress.infra.context import Batch, model_inputs

Inputs = list[tuple[tuple, dict]]  # the positional and keyword arguments of each call


class _Stop(Exception):
    """Raised once what calibration needs is seen: the rest of the forward is not needed."""


@contextmanager
def _without_kv_cache(model: nn.Module) -> Iterator[None]:
    """A causal LM keeps no key/value cache meanwhile: a block run twice on the same inputs
    (GPTQ) would otherwise attend to its own earlier keys."""
    config = getattr(model, "config", None)
    used = getattr(config, "use_cache", None)
    if used is not None:
        config.use_cache = False
    try:
        yield
    finally:
        if used is not None:
            config.use_cache = used


@torch.no_grad()
def run_batches(model: nn.Module, batches: Iterable[Batch]) -> None:
    """Run every batch (a hook may end a forward early by raising :class:`_Stop`)."""
    with _without_kv_cache(model):
        for batch in batches:
            try:
                model(**model_inputs(batch))
            except _Stop:
                pass


def block_inputs(model: nn.Module, block: nn.Module, batches: Iterable[Batch]) -> Inputs:
    """The arguments ``block`` is called with on each batch (the forward stops there)."""
    captured = []

    def capture(module: nn.Module, args: tuple, kwargs: dict) -> None:
        captured.append((args, kwargs))
        raise _Stop

    handle = block.register_forward_pre_hook(capture, with_kwargs=True)
    try:
        run_batches(model, batches)
    finally:
        handle.remove()
    if not all(args for args, _ in captured):
        raise ValueError(f"{type(block).__name__} takes its hidden states by keyword")
    return captured


@torch.no_grad()
def run_block(block: nn.Module, inputs: Inputs) -> Inputs:
    """Call ``block`` on each of ``inputs``; returns the next block's arguments (the hidden
    states replaced by this block's output, the rest as they were)."""
    outputs = []
    for args, kwargs in inputs:
        out = block(*args, **kwargs)
        outputs.append(((out[0] if isinstance(out, tuple) else out, *args[1:]), kwargs))
    return outputs


@contextmanager
def watching_inputs(
    modules: dict[str, nn.Module], observe: Callable[[str, torch.Tensor], None]
) -> Iterator[None]:
    """While inside, every call of a module in ``modules`` passes its input, flattened to
    ``[tokens, features]`` float32, to ``observe(name, input)``."""

    def hook(name: str) -> Callable:
        def call(module: nn.Module, args: tuple) -> None:
            observe(name, args[0].detach().reshape(-1, args[0].shape[-1]).float())

        return call

    handles = [m.register_forward_pre_hook(hook(name)) for name, m in modules.items()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
