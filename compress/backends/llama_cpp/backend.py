"""llama.cpp: the pruned float model written as GGUF (:mod:`.gguf_file`), float levels written
as they are (f32, f16, bf16), llama.cpp's file types made by llama.cpp's own quantizer with an
importance matrix from the calibration text (:mod:`.quantize`), and run by llama.cpp
(:mod:`.runtime`). The artifact is the GGUF file beside the model's ``config.json``."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from compress.backends.llama_cpp.quantize import Written, gguf_level
from compress.backends.llama_cpp.runtime import LlamaCppModel, system_info
from compress.backends.registry import (
    ArtifactFormat,
    CompressedModel,
    compress_on,
    register_artifact_format,
)
from compress.config.backend import LlamaCppBackendConfig
from compress.config.quant import GGUFImatrixQuantConfig, QuantConfig
from compress.infra.context import CompressionContext
from compress.measure.size import size_stats
from compress.quantization.report import QuantReport
from compress.storage.artifact import write_manifest

GGUF = "model.gguf"
_FLOAT_BITS = {"fp32": 32.0, "fp16": 16.0, "bf16": 16.0}


def _gguf_size(path: Path) -> dict:
    """Elements and bytes of the file's tensors, bits per weight of its 2-D ones."""
    import gguf

    tensors = gguf.GGUFReader(str(path)).tensors
    matrices = [t for t in tensors if len(t.shape) == 2]
    bits = 8 * sum(int(t.n_bytes) for t in matrices) / sum(int(t.n_elements) for t in matrices)
    types = sorted({t.tensor_type.name for t in matrices})
    quantized = sum(1 for t in matrices if t.tensor_type.name != "F32")
    return {
        "quantized": quantized,
        "params": sum(int(t.n_elements) for t in tensors),
        "weight_bytes": sum(int(t.n_bytes) for t in tensors),
        "bits_per_weight": bits,
        "tensor_types": types,
    }


def _report(quant: QuantConfig, size: dict, written: Written) -> QuantReport:
    types = "+".join(size["tensor_types"])
    notes = [
        f"llama.cpp GGUF, weight matrices {types}; norms stay float32",
        f"llama.cpp CPU kernels built for: {system_info()}",
    ]
    if written.imatrix_tokens:
        notes.append(
            f"importance matrix: mean squared inputs of every weight matrix over "
            f"{written.imatrix_tokens} calibration tokens"
        )
    elif isinstance(quant, GGUFImatrixQuantConfig):
        notes.append("no importance matrix (quant.imatrix=false)")
    bits = _FLOAT_BITS.get(quant.name, size["bits_per_weight"])
    return QuantReport(quant.name, types, size["quantized"], notes, bits, "llama.cpp (ggml CPU)")


@compress_on.register(LlamaCppBackendConfig)
def _llama_cpp(
    backend: LlamaCppBackendConfig,
    model: nn.Module,
    quant: QuantConfig,
    context: CompressionContext,
    folder: Path,
) -> CompressedModel:
    import torch

    if context.tokenizer is None:
        raise ValueError("backend=llama_cpp writes the tokenizer's vocabulary into the GGUF")
    folder.mkdir(parents=True, exist_ok=True)
    model = model.eval().float()
    threads = torch.get_num_threads()
    written = gguf_level(quant, model, context, folder / GGUF, threads)
    size = _gguf_size(folder / GGUF)
    model.config.to_json_file(str(folder / "config.json"))
    kv_values = written.structure.kv_values_per_token()
    manifest = {"backend": "llama_cpp", "architecture": type(model).__name__, "gguf": GGUF,
                "kv_values_per_token": kv_values, "kv_cache": backend.kv_cache,
                "flash_attention": backend.flash_attention}  # fmt: skip
    artifact = write_manifest(folder, manifest) | {"quantize_s": written.quantize_s}
    runner = LlamaCppModel(folder / GGUF, model.config, kv_values, threads, backend.kv_cache,
                           backend.flash_attention)  # fmt: skip
    sizes = {"params": size["params"], "nonzero_params": size_stats(model)["nonzero_params"],
             "weight_bytes": size["weight_bytes"]}  # fmt: skip
    return CompressedModel(runner, _report(quant, size, written), artifact, sizes)


def load_gguf_artifact(folder: Path, manifest: dict, zero_copy: bool) -> LlamaCppModel:
    """The GGUF file loaded by llama.cpp (memory-mapped: ``zero_copy`` does not apply)."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(str(folder))
    return LlamaCppModel(Path(folder) / manifest["gguf"], config, manifest["kv_values_per_token"],
                         kv_cache=manifest["kv_cache"],
                         flash_attention=manifest["flash_attention"])  # fmt: skip


def _import_llama_cpp(folder: Path) -> None:
    import llama_cpp  # noqa: F401
    import transformers  # noqa: F401


register_artifact_format("llama_cpp", ArtifactFormat(load_gguf_artifact, _import_llama_cpp))
