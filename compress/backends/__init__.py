"""Backends: the runtime a compressed model is executed by, one package each.

``compress_on(backend, model, quant, context, folder)`` quantizes the (already pruned) float
model for that runtime, saves it into ``folder`` and returns what to run and measure;
``load_artifact(folder)`` opens a saved model with the backend that wrote it.
"""

from compress.backends import compiled, llama_cpp, onnxruntime, torch  # noqa: F401  (each registers)
from compress.backends.registry import CompressedModel, compress_on, import_runtime, load_artifact

__all__ = ["CompressedModel", "compress_on", "import_runtime", "load_artifact"]
