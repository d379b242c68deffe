"""Compile a captured program ahead of time with AOTInductor (one shared library per recipe,
any batch size and length), load it, and run it like a transformers model."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import torch

# what every package is compiled with (part of its cache key)
INDUCTOR_OPTIONS = {"freezing": True}
# transformers' defaults for inputs a caller may leave out, made explicit for the program
_DEFAULTS = {"token_type_ids": torch.zeros_like, "attention_mask": torch.ones_like}


def compile_package(program: torch.export.ExportedProgram, path: Path) -> float:
    """Compile ``program`` into an AOTInductor package at ``path`` with its weights frozen into
    the compiled graph (what lets Inductor prepack int8 weights for oneDNN); returns the
    seconds it took (tens of seconds: never inside a timed region)."""
    start = time.perf_counter()
    # Inductor freezes only a graph compiled without autograd: with grad enabled the int8
    # patterns stay dequantize + float32 linear (measured: slower than float32 itself)
    with torch.no_grad(), torch._inductor.config.patch(INDUCTOR_OPTIONS):
        torch._inductor.aoti_compile_and_package(program, package_path=str(path))
    return time.perf_counter() - start


class CompiledModel:
    """``model(**inputs).logits`` from an AOTInductor package: no compilation at load time."""

    def __init__(self, package: Path, config, input_names: list[str]) -> None:
        self.runner = torch._inductor.aoti_load_package(str(package))
        self.config = config
        self.input_names = input_names

    def __call__(self, **inputs: torch.Tensor) -> SimpleNamespace:
        # the compiled code indexes its inputs as dense row-major arrays: a strided view
        # (a slice of a batch) must be made contiguous first, or it reads the wrong elements
        complete = {
            name: (
                inputs[name] if name in inputs else _DEFAULTS[name](inputs["input_ids"])
            ).contiguous()
            for name in self.input_names
        }
        with torch.no_grad():
            return SimpleNamespace(logits=self.runner(**complete))

    def eval(self) -> CompiledModel:
        return self
