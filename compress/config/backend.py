"""``backend``: which runtime executes the compressed model, and its capability table: the
quantization levels it runs, those that can keep single modules float, its int4 group sizes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from omegaconf import MISSING

from compress.config.quant import (
    INT4_GROUP_SIZES,
    BFloat16Config,
    Float16Config,
    Float32Config,
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
    """PyTorch 2 compiled: the model captured with ``torch.export``, int8 by PT2E (torchao's
    x86 Inductor quantizer), compiled ahead of time by AOTInductor with frozen weights into
    one package per recipe (cached under ``paths.cache_dir``). Classification tasks only."""

    name: str = "torch_compiled"
    SUPPORTED: ClassVar[tuple[type, ...]] = (
        Float32Config, BFloat16Config, Int8DynamicConfig, Int8StaticConfig,
    )  # fmt: skip


def level_names(types: tuple[type, ...]) -> list[str]:
    return [t.__dataclass_fields__["name"].default for t in types]
