"""Eager PyTorch on the CPU: quantization handlers (:mod:`.quantize`), the quantized module
kinds torch lacks (:mod:`.modules`), how they are stored (:mod:`.codecs`) and the artifact
format (:mod:`.artifact`)."""

from compress.backends.torch import backend  # noqa: F401  (registers the backend)
