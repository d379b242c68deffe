"""Quantization levels of the compiled backend: ``capture(config, model, sample, context)``
returns the ``ExportedProgram`` to compile (PT2E-converted for the int8 levels) and a report.

int8 uses torchao's ``X86InductorQuantizer``: its patterns are what Inductor fuses into
oneDNN int8 kernels (VNNI where the CPU has it) once the weights are frozen into the compiled
graph; dynamic quantizes activations per batch, static with ranges from calibration."""

from __future__ import annotations

import dataclasses
import warnings

import torch
from torch import nn

from compress.backends.compiled.export import Inputs, Logits, export_program
from compress.config.quant import BFloat16Config, Float32Config, Int8DynamicConfig, Int8StaticConfig
from compress.infra.context import CompressionContext
from compress.infra.environment import has_native_bf16
from compress.infra.registry import Registry
from compress.quantization.calibration import run_batches
from compress.quantization.report import QuantReport

capture = Registry("compiled quantization level")
Captured = tuple[torch.export.ExportedProgram, QuantReport]


def _positions(model: nn.Module) -> int:
    """The longest sequence the model takes: the bound of the program's length dimension."""
    return getattr(model.config, "max_position_embeddings", 512)


def _export(model: nn.Module, sample: Inputs) -> torch.export.ExportedProgram:
    return export_program(Logits(model), sample, _positions(model))


def _linears(program: torch.export.ExportedProgram) -> int:
    return sum(node.target == torch.ops.aten.linear.default for node in program.graph.nodes)


def _is_float(node: torch.fx.Node) -> bool:
    value = node.meta.get("val")
    return isinstance(value, torch.Tensor) and value.is_floating_point()


def _float_activations_only(quantizer):
    """``quantizer`` with its annotations of integer tensors dropped: an observer watches
    float activations only. The x86 quantizer also annotates integer arithmetic (RoBERTa's
    and MPNet's position ids, ``mask * cumsum``), whose histogram observer cannot run."""
    from torchao.quantization.pt2e.quantizer import Quantizer

    class FloatActivationsOnly(Quantizer):
        def transform_for_annotation(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            return quantizer.transform_for_annotation(model)

        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            model = quantizer.annotate(model)
            for node in model.graph.nodes:
                annotation = node.meta.get("quantization_annotation")
                if annotation is None:
                    continue
                annotation.input_qspec_map = {
                    source: spec
                    for source, spec in annotation.input_qspec_map.items()
                    if _is_float(source)
                }
                if not _is_float(node):
                    annotation.output_qspec = None
            return model

        def validate(self, model: torch.fx.GraphModule) -> None:
            quantizer.validate(model)

    return FloatActivationsOnly()


def _x86_quantizer(dynamic: bool):
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

    config = x86.get_default_x86_inductor_quantization_config(is_dynamic=dynamic)
    return _float_activations_only(x86.X86InductorQuantizer().set_global(config))


def _pt2e(model: nn.Module, sample: Inputs, dynamic: bool, batches) -> Captured:
    """Capture, calibrate on ``batches`` (their inputs the sample has) and convert."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    program = _export(model, sample)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_pt2e(program.module(), _x86_quantizer(dynamic))
        run_batches(prepared, ({k: b[k] for k in sample} for b in batches))
        converted = convert_pt2e(prepared)
    kind = "dynamic (activations per batch)" if dynamic else "static (calibrated ranges)"
    note = f"PT2E {kind} int8 on every Linear (X86InductorQuantizer); embeddings stay float32"
    report = QuantReport("int8", "int8", _linears(program), [note], 8.0, "onednn.qlinear_pointwise")
    return export_program(converted, sample, _positions(model)), report


@capture.register(Float32Config)
def _float32(config, model: nn.Module, sample: Inputs, context: CompressionContext) -> Captured:
    return _export(model, sample), QuantReport(config.name, "float32", 0, [], 32.0, "inductor")


@capture.register(BFloat16Config)
def _bfloat16(config, model: nn.Module, sample: Inputs, context: CompressionContext) -> Captured:
    notes = [] if has_native_bf16() else [
        "bf16 on a CPU without avx512_bf16 or amx_bf16: converted on the fly, slow"
    ]  # fmt: skip
    program = _export(model.to(torch.bfloat16), sample)
    return program, QuantReport(config.name, "bfloat16", _linears(program), notes, 16.0, "inductor")


@capture.register(Int8DynamicConfig)
def _int8_dynamic(
    config, model: nn.Module, sample: Inputs, context: CompressionContext
) -> Captured:
    program, report = _pt2e(model, sample, True, [sample])
    return program, dataclasses.replace(report, level=config.name)


@capture.register(Int8StaticConfig)
def _int8_static(config, model: nn.Module, sample: Inputs, context: CompressionContext) -> Captured:
    batches = context.calibration_batches(config.calibration_batches, "static int8")
    program, report = _pt2e(model, sample, False, batches)
    return program, dataclasses.replace(report, level=config.name)
