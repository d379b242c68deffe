"""Compiled PyTorch: ``torch.export``, PT2E int8, then AOTInductor, which compiles the program
ahead of time into one shared library that runs any batch size and length. The artifact is
that package; compiled packages are cached by program (graph and weights) under
``paths.cache_dir``, so a sweep compiles each recipe once and a reload compiles nothing.
Causal LMs are decoded with compiled steps instead (:mod:`.decoding`)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import torch
from torch import nn

from compress.backends.compiled.decoding import compiled_decoder
from compress.backends.compiled.export import program_size
from compress.backends.compiled.quantize import capture
from compress.backends.compiled.runtime import INDUCTOR_OPTIONS, CompiledModel, compile_package
from compress.backends.inputs import accepted_inputs, refuse_family
from compress.backends.registry import (
    ArtifactFormat,
    CompressedModel,
    compress_on,
    register_artifact_format,
)
from compress.config.backend import TorchCompiledBackendConfig
from compress.config.quant import QuantConfig
from compress.infra.cache import cached_entry
from compress.infra.context import CompressionContext
from compress.storage.artifact import write_manifest

PACKAGE = "model.pt2"


def program_key(program: torch.export.ExportedProgram) -> str:
    """The same graph with the same weights, compiled with the same options by the same torch,
    is the same package."""
    recipe = f"{torch.__version__} {sorted(INDUCTOR_OPTIONS.items())} no_grad"
    digest = hashlib.sha256(recipe.encode() + str(program.graph_module.code).encode())
    for name, tensor in sorted({**program.state_dict, **program.constants}.items()):
        if isinstance(tensor, torch.Tensor):
            digest.update(name.encode())
            digest.update(tensor.detach().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()[:16]


def _compiled_package(program, folder: Path, cache_dir: Path | None) -> dict:
    """Compile into ``folder``, or copy the package an earlier job compiled for this program."""
    if cache_dir is None:
        return {"compile_s": compile_package(program, folder / PACKAGE), "compile_cached": False}
    seconds: list[float] = []

    def build(staging: Path) -> None:
        seconds.append(compile_package(program, staging / PACKAGE))

    entry = cached_entry(cache_dir / "compiled", program_key(program), build, "compiled model")
    shutil.copy2(entry / PACKAGE, folder / PACKAGE)
    return {"compile_s": seconds[0] if seconds else 0.0, "compile_cached": not seconds}


@compress_on.register(TorchCompiledBackendConfig)
def _compiled(
    backend: TorchCompiledBackendConfig,
    model: nn.Module,
    quant: QuantConfig,
    context: CompressionContext,
    folder: Path,
) -> CompressedModel:
    folder.mkdir(parents=True, exist_ok=True)
    if getattr(model, "can_generate", lambda: False)():  # a causal LM: compiled decoding
        return compiled_decoder(quant, model, context, folder)
    refuse_family(model, backend.name)  # the rest is exported whole: encoders only
    sample = accepted_inputs(model, context.sample_inputs("torch.export"))
    program, report = capture(quant, model.eval(), sample, context)
    compiled = _compiled_package(program, folder, context.cache_dir)
    model.config.to_json_file(str(folder / "config.json"))
    manifest = {"backend": "torch_compiled", "architecture": type(model).__name__,
                "package": PACKAGE, "inputs": list(sample),
                "capture": "torch.export: the whole model, no graph breaks"}  # fmt: skip
    artifact = write_manifest(folder, manifest) | compiled
    runner = CompiledModel(folder / PACKAGE, model.config, list(sample))
    return CompressedModel(runner, report, artifact, program_size(program))


def load_compiled_artifact(folder: Path, manifest: dict, zero_copy: bool) -> CompiledModel:
    """The compiled package, loaded as it is (``zero_copy`` does not apply)."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(str(folder))
    return CompiledModel(Path(folder) / manifest["package"], config, manifest["inputs"])


def _import_runtime(folder: Path) -> None:
    import torch._inductor  # noqa: F401
    import transformers  # noqa: F401


register_artifact_format("torch_compiled", ArtifactFormat(load_compiled_artifact, _import_runtime))
