"""Compiled decoding of causal LMs (``backend=torch_compiled``, ``task=lm``/``generation``): the
model quantized by the torch backend's own handler of the level (float, or packed weight-only
int8/int4 Linears), then every decode step run with transformers' static KV cache through
``torch.compile`` with Inductor freezing (weights folded into the graph as constants, so
Inductor prepacks them and fuses the step around the matmuls).

Why ``torch.compile`` and not AOTInductor here: a decode step is a different program for every
(batch size, cache length), and transformers' ``generate`` already drives a static cache and a
compiled step (``compile_config``); an AOT package per shape would duplicate that loop. The
prefill, like transformers' own, stays eager (prompt lengths vary), and so does the plain
forward pass that scores perplexity windows: a compiled level's perplexity is its eager
level's (same weights, same kernels outside the fused step).

Compilation happens on a shape's first ``generate`` call: the timed loop's warm-up rounds,
never a timed round (``bench.warmup`` >= 1 is required). Inductor's graph cache lives under
``paths.cache_dir/inductor``, so later jobs of a sweep that compile the same graph load it.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from compress.backends.registry import CompressedModel
from compress.backends.torch.artifact import save_artifact
from compress.backends.torch.quantize import quantize_
from compress.config.quant import (
    BFloat16Config,
    Float32Config,
    Int4GPTQConfig,
    Int4WeightOnlyConfig,
    Int8WeightOnlyConfig,
    QuantConfig,
)
from compress.infra.context import CompressionContext
from compress.infra.registry import Registry
from compress.measure.size import size_stats
from compress.quantization.report import QuantReport

# The levels compiled decoding runs: the torch backend's handler of each, then the compiled step.
decode_level = Registry("compiled decoding level")
STEP_NOTE = (
    "decode steps compiled by torch.compile (Inductor, weights frozen) over a static KV cache; "
    "prefill and perplexity windows run eager"
)


@decode_level.register(Float32Config)
@decode_level.register(BFloat16Config)
@decode_level.register(Int8WeightOnlyConfig)
@decode_level.register(Int4WeightOnlyConfig)
@decode_level.register(Int4GPTQConfig)
def _torch_level(quant: QuantConfig, model: nn.Module, context: CompressionContext) -> QuantReport:
    return quantize_(quant, model, context)


class CompiledCausalLM:
    """A causal LM whose ``generate`` decodes with a static cache and compiled steps; its
    forward pass (perplexity, prefill) is the eager model's."""

    def __init__(self, model: nn.Module) -> None:
        from transformers.generation.configuration_utils import CompileConfig

        self.model, self.config = model, model.config
        # mode=None: no CUDA graphs (the CPU has none); options and mode exclude each other.
        self.compile_config = CompileConfig(
            fullgraph=True, dynamic=False, mode=None, options={"freezing": True}
        )
        self.compile_config._compile_all_devices = True  # transformers compiles on GPUs only

    def __call__(self, **inputs):
        return self.model(**inputs)

    def generate(self, **kwargs):
        return self.model.generate(
            **kwargs, cache_implementation="static", compile_config=self.compile_config
        )

    def eval(self) -> CompiledCausalLM:
        return self


def compiled_decoder(
    quant: QuantConfig, model: nn.Module, context: CompressionContext, folder: Path
) -> CompressedModel:
    """Quantize with the torch backend's handler, save in its format (a reload is the eager
    model: compilation is per process), run with compiled decoding."""
    report = decode_level(quant, model.eval(), context)
    artifact = save_artifact(model, folder)
    report = QuantReport(report.level, report.weight_dtype, report.layers_quantized,
                         [*report.notes, STEP_NOTE], report.bits_per_weight,
                         f"{report.kernel or 'aten.linear'} in a compiled decode step")  # fmt: skip
    return CompressedModel(CompiledCausalLM(model), report, artifact, size_stats(model))
