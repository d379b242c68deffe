"""llama.cpp: the GGUF writer (:mod:`.gguf_file`), llama.cpp's quantizer with an importance
matrix (:mod:`.quantize`), the runner (:mod:`.runtime`) and the artifact format. Importing it
needs ``gguf`` only; ``llama_cpp`` (the ``llama`` extra) is imported when a model is quantized
or run."""

from compress.backends.llama_cpp import backend  # noqa: F401  (registers the backend)
