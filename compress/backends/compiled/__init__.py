"""Compiled PyTorch: the pruned model captured with ``torch.export``, quantized with PT2E
(the x86 Inductor quantizer of torchao, successor of ``torch.ao`` eager quantization) and
compiled by Inductor with weights frozen (:mod:`.export`, :mod:`.quantize`,
:mod:`.runtime`, :mod:`.backend`)."""

from compress.backends.compiled import backend  # noqa: F401  (registers the backend)
