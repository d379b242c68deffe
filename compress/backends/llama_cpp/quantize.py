"""llama.cpp's own quantizer (``llama_model_quantize``, what ``llama-quantize`` runs) on the
float32 GGUF, with an importance matrix computed here on the pruned float model.

The importance matrix is what ``llama-imatrix`` collects: for every weight matrix, the mean
square of each input feature over the calibration tokens (its ``in_sum2 / counts``), by the
tensor's GGUF name. Collected in torch on the same float model the GGUF holds (so pruned
shapes match), on the task's calibration batches (never the held-out text), and handed to the
quantizer as ``llama_model_imatrix_data`` entries: no file, no second llama.cpp tool to
build.
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np
import torch
from torch import nn

from compress.backends.llama_cpp.gguf_file import Structure, family_of, structure_of, write_gguf
from compress.config.quant import (
    BFloat16Config,
    Float16Config,
    Float32Config,
    GGUFImatrixQuantConfig,
    GGUFQ4_0Config,
    GGUFQ4_K_MConfig,
    GGUFQ5_K_MConfig,
    GGUFQ6_KConfig,
    GGUFQ8_0Config,
    GGUFQuantConfig,
)
from compress.infra.context import CompressionContext, model_inputs
from compress.infra.registry import Registry

# quant level -> the function that writes the model's GGUF file of that level
gguf_level = Registry("llama.cpp GGUF level")


@dataclass(frozen=True)
class Written:
    """What writing a level did: the model's structure, the tokens of its importance matrix
    (0: none) and the seconds llama.cpp's quantizer took."""

    structure: Structure
    imatrix_tokens: int = 0
    quantize_s: float = 0.0


def _gguf_linear_names(model: nn.Module) -> dict[str, nn.Linear]:
    """Every Linear whose weight is a GGUF tensor, by that tensor's name; the LM head of a
    model with tied embeddings multiplies by ``token_embd``."""
    structure = structure_of(model)
    names = gguf.get_tensor_name_map(family_of(model).arch_for(structure), len(structure.heads))
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    linears = {}
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        if tied and name == "lm_head":
            linears["token_embd.weight"] = module
            continue
        gguf_name = names.get_name(f"{name}.weight", try_suffixes=(".weight",))
        if gguf_name is not None:
            linears[gguf_name] = module
    return linears


@torch.inference_mode()
def importance_matrix(
    model: nn.Module, context: CompressionContext, batches: int
) -> tuple[dict[str, np.ndarray], int]:
    """Mean square of every input feature of every GGUF weight matrix over ``batches``
    calibration batches; and the number of tokens it was averaged over."""
    linears = _gguf_linear_names(model)
    sums = {name: torch.zeros(m.in_features, dtype=torch.float64) for name, m in linears.items()}
    counts = dict.fromkeys(linears, 0)
    handles = []
    for name, module in linears.items():

        def collect(module: nn.Module, args: tuple, name: str = name) -> None:
            rows = args[0].detach().reshape(-1, args[0].shape[-1]).double()
            sums[name] += rows.square().sum(0)
            counts[name] += rows.shape[0]

        handles.append(module.register_forward_pre_hook(collect))
    try:
        for batch in context.calibration_batches(batches, "an importance matrix"):
            model(**model_inputs(batch))
    finally:
        for handle in handles:
            handle.remove()
    tokens = max(counts.values(), default=0)
    if not tokens:
        raise ValueError("the importance matrix saw no calibration tokens")
    return {name: (sums[name] / counts[name]).float().numpy() for name in linears}, tokens


def quantize_gguf(
    source: Path,
    target: Path,
    file_type: str,
    imatrix: dict[str, np.ndarray] | None,
    threads: int,
) -> None:
    """Rewrite the GGUF ``source`` as ``target`` of llama.cpp file type ``file_type`` (a
    ``gguf.LlamaFileType`` name, e.g. ``MOSTLY_Q4_K_M``) with llama.cpp's quantizer."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = int(gguf.LlamaFileType[file_type])
    params.nthread = threads
    keep = []  # the arrays the C entries point into, alive until the call returns
    if imatrix:
        entries = (llama_cpp.llama_model_imatrix_data * (len(imatrix) + 1))()
        for entry, (name, values) in zip(entries, imatrix.items(), strict=False):
            array = np.ascontiguousarray(values, dtype=np.float32)
            keep += [name.encode(), array]
            entry.name = keep[-2]
            entry.data = array.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            entry.size = array.size
        # the last entry stays zeroed: a NULL name ends the list
        params.imatrix = ctypes.cast(entries, ctypes.POINTER(llama_cpp.llama_model_imatrix_data))
    status = llama_cpp.llama_model_quantize(
        str(source).encode(), str(target).encode(), ctypes.byref(params)
    )
    if status != 0:
        raise RuntimeError(f"llama.cpp could not quantize {source.name} to {file_type} ({status})")


@gguf_level.register(Float32Config)
@gguf_level.register(Float16Config)
@gguf_level.register(BFloat16Config)
def _float(
    quant: Float32Config | Float16Config | BFloat16Config,
    model: nn.Module,
    context: CompressionContext,
    target: Path,
    threads: int,
) -> Written:
    """Float levels are written as they are: f32, f16 or bf16 weight matrices."""
    return Written(write_gguf(model, context.tokenizer, target, quant.name))


@gguf_level.register(GGUFQ8_0Config)
@gguf_level.register(GGUFQ4_0Config)
@gguf_level.register(GGUFQ4_K_MConfig)
@gguf_level.register(GGUFQ5_K_MConfig)
@gguf_level.register(GGUFQ6_KConfig)
def _quantized(
    quant: GGUFQuantConfig,
    model: nn.Module,
    context: CompressionContext,
    target: Path,
    threads: int,
) -> Written:
    """The float32 GGUF, then llama.cpp's quantizer to ``quant.FILE_TYPE``, with the
    importance matrix where the level takes one (and ``quant.imatrix``)."""
    source = target.with_name("float32.gguf")
    structure = write_gguf(model, context.tokenizer, source, "fp32")
    imatrix, tokens = None, 0
    if isinstance(quant, GGUFImatrixQuantConfig) and quant.imatrix:
        imatrix, tokens = importance_matrix(model, context, quant.calibration_batches)
    start = time.perf_counter()
    try:
        quantize_gguf(source, target, quant.FILE_TYPE, imatrix, threads)
    finally:
        source.unlink(missing_ok=True)
    return Written(structure, tokens, time.perf_counter() - start)
