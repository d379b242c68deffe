"""ONNX Runtime: export (:mod:`.export`), ONNX Runtime's quantization tools
(:mod:`.quantize`), the session wrapper (:mod:`.runtime`) and the artifact format."""

from compress.backends.onnxruntime import backend  # noqa: F401  (registers the backend)
