"""``backend``: which runtime executes the compressed model, and its capability table: the
quantization levels it runs, those that can keep single modules float, its int4 group sizes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from omegaconf import MISSING

from compress.config.quant import (
    INT4_GROUP_SIZES,
    BFloat16Config,
    Float16Config,
    Float32Config,
    GGUFQ4_0Config,
    GGUFQ4_K_MConfig,
    GGUFQ5_K_MConfig,
    GGUFQ6_KConfig,
    GGUFQ8_0Config,
    Int4GPTQConfig,
    Int4WeightOnlyConfig,
    Int8DynamicConfig,
    Int8QATConfig,
    Int8SmoothQuantConfig,
    Int8StaticConfig,
    Int8WeightOnlyConfig,
)


@dataclass
class BackendConfig:
    """Which runtime executes the compressed model. ``SUPPORTED`` lists the quantization
    levels it has kernels for; any other level is refused before the job starts."""

    SUPPORTED: ClassVar[tuple[type, ...]] = ()
    # Levels that honour ``quant.skip`` (fp32 trivially: every module stays float).
    SKIPPABLE: ClassVar[tuple[type, ...]] = (Float32Config,)
    # Group sizes its int4 kernel takes (where it runs int4 at all).
    INT4_GROUP_SIZES: ClassVar[tuple[int, ...]] = INT4_GROUP_SIZES
    name: str = MISSING


@dataclass
class TorchBackendConfig(BackendConfig):
    """Eager PyTorch on the CPU."""

    name: str = "torch"
    SUPPORTED: ClassVar[tuple[type, ...]] = (
        Float32Config, Float16Config, BFloat16Config, Int8DynamicConfig, Int8StaticConfig,
        Int8QATConfig, Int8WeightOnlyConfig, Int8SmoothQuantConfig, Int4WeightOnlyConfig,
        Int4GPTQConfig,
    )  # fmt: skip
    # Not fp16 and bf16, which cast the whole model (a float32 module between them would get
    # the wrong dtype), nor int8_qat, which trains every Linear under fake quantization.
    SKIPPABLE: ClassVar[tuple[type, ...]] = tuple(
        level for level in SUPPORTED if level not in (Float16Config, BFloat16Config, Int8QATConfig)
    )
    INT4_GROUP_SIZES: ClassVar[tuple[int, ...]] = (32, 64, 128, 256)


@dataclass
class OnnxRuntimeBackendConfig(BackendConfig):
    """The pruned model exported to ONNX (torch.export) and run by ONNX Runtime with all
    graph optimizations; quantized by ONNX Runtime's own tools."""

    name: str = "onnxruntime"
    opset: int = 18
    # ONNX Runtime's transformer fusions (SkipLayerNorm, BiasGelu, ...) before quantizing.
    fuse: bool = True
    SUPPORTED: ClassVar[tuple[type, ...]] = (
        Float32Config, Int8DynamicConfig, Int8StaticConfig, Int4WeightOnlyConfig,
    )  # fmt: skip


@dataclass
class TorchCompiledBackendConfig(BackendConfig):
    """PyTorch 2 compiled. Classifiers: the model captured with ``torch.export``, int8 by PT2E
    (torchao's x86 Inductor quantizer), compiled ahead of time by AOTInductor with frozen
    weights into one package per recipe (cached under ``paths.cache_dir``). Causal LMs: the
    torch backend's level, decoded greedily with a static KV cache and an AOTInductor package
    per decode-step shape that reads the model's own weights. ``CLASSIFICATION`` and
    ``DECODING`` list the levels of each; ``SUPPORTED`` is both."""

    name: str = "torch_compiled"
    CLASSIFICATION: ClassVar[tuple[type, ...]] = (
        Float32Config, BFloat16Config, Int8DynamicConfig, Int8StaticConfig,
    )  # fmt: skip
    DECODING: ClassVar[tuple[type, ...]] = (
        Float32Config, BFloat16Config, Int8WeightOnlyConfig, Int8SmoothQuantConfig,
        Int4WeightOnlyConfig, Int4GPTQConfig,
    )  # fmt: skip
    SUPPORTED: ClassVar[tuple[type, ...]] = tuple(dict.fromkeys(CLASSIFICATION + DECODING))
    INT4_GROUP_SIZES: ClassVar[tuple[int, ...]] = TorchBackendConfig.INT4_GROUP_SIZES


class KVCacheType(StrEnum):
    f16 = "f16"
    f32 = "f32"


class FlashAttention(StrEnum):
    auto = "auto"
    on = "on"
    off = "off"


@dataclass
class LlamaCppBackendConfig(BackendConfig):
    """llama.cpp through llama-cpp-python (the ``llama`` extra): the pruned model written as a
    GGUF file (float32 for ``quant=fp32``, float16/bfloat16 for ``fp16``/``bf16``), the GGUF
    levels rewritten by llama.cpp's own quantizer, then run by llama.cpp on the CPU with the
    job's threads. Causal LMs whose ``model_type`` is in ``MODEL_TYPES`` only.
    ``kv_cache`` (the KV cache's element type) and ``flash_attention`` default to llama.cpp's
    own defaults, which compute attention partly in float16; ``kv_cache=f32
    flash_attention=off`` is its float32 reference path."""

    name: str = "llama_cpp"
    kv_cache: KVCacheType = KVCacheType.f16
    flash_attention: FlashAttention = FlashAttention.auto
    SUPPORTED: ClassVar[tuple[type, ...]] = (
        Float32Config, Float16Config, BFloat16Config, GGUFQ8_0Config, GGUFQ4_0Config,
        GGUFQ4_K_MConfig, GGUFQ5_K_MConfig, GGUFQ6_KConfig,
    )  # fmt: skip
    # config.json model types the GGUF writer knows (compress/backends/llama_cpp/gguf.py)
    MODEL_TYPES: ClassVar[tuple[str, ...]] = ("llama", "qwen2")


def level_names(types: tuple[type, ...]) -> list[str]:
    return [t.__dataclass_fields__["name"].default for t in types]
