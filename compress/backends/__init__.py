"""Backends: the runtime a compressed model is executed by. ``compress_on(backend, model,
quant, context, folder)`` quantizes the (already pruned) float model for that runtime, saves
it into ``folder`` and returns what to run and measure."""

from compress.registry import Registry

compress_on = Registry("backend")

from compress.backends import onnxruntime_backend, torch_backend  # noqa: E402,F401
