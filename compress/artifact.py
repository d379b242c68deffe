"""Save a compressed model so that its size on disk is real, and load it back.

An artifact is a folder with the Hugging Face ``config.json`` and ``model.safetensors`` plus
``compress.json``, a manifest naming the storage format, and the tokenizer in ``tokenizer/``.
Float models (fp32/fp16/bf16, pruned or not) use the ordinary ``save_pretrained`` layout,
so ``from_pretrained`` opens them.
Dynamic-int8 models cannot go through safetensors as torch stores them (their packed
parameters hold a ``torch.dtype``), so their Linear weights are stored as plain int8 tensors
with their scale and zero point and re-packed on load.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file, save_file
from torch import nn
from torch.ao.nn.quantized import dynamic as quantized_dynamic
from transformers.initialization import no_init_weights

MANIFEST = "compress.json"
# The tokenizer travels with the artifact (serving needs it) but is not the model's size.
TOKENIZER_DIR = "tokenizer"
_INT8_KEYS = ("weight", "weight_scale", "weight_zero_point", "bias")
WEIGHTS = "model.safetensors"


def disk_bytes(folder: Path) -> int:
    """Bytes of the model files of an artifact: every file in the folder, tokenizer excluded."""
    return sum(p.stat().st_size for p in Path(folder).iterdir() if p.is_file())


def _int8_linears(model: nn.Module) -> dict[str, quantized_dynamic.Linear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, quantized_dynamic.Linear)}


def storage_format(model: nn.Module) -> str:
    return "int8_dynamic" if _int8_linears(model) else "dense"


def _save_dense(model: nn.Module, folder: Path) -> dict:
    model.save_pretrained(folder)
    return {}


def _save_int8_dynamic(model: nn.Module, folder: Path) -> dict:
    linears = _int8_linears(model)
    tensors: dict[str, torch.Tensor] = {}
    for name, module in linears.items():
        weight, bias = module._weight_bias()
        if weight.qscheme() != torch.per_tensor_affine:
            raise NotImplementedError(f"{name}: only per-tensor int8 weights are stored")
        tensors[f"{name}.weight"] = weight.int_repr().contiguous()
        tensors[f"{name}.weight_scale"] = torch.tensor(weight.q_scale(), dtype=torch.float64)
        tensors[f"{name}.weight_zero_point"] = torch.tensor(weight.q_zero_point())
        if bias is not None:
            tensors[f"{name}.bias"] = bias.detach().contiguous()
    seen: dict[int, str] = {}
    aliases: dict[str, str] = {}
    for name, tensor in model.state_dict(keep_vars=False).items():
        if not isinstance(tensor, torch.Tensor) or any(name.startswith(f"{q}.") for q in linears):
            continue
        if tensor.data_ptr() in seen:  # tied weights are stored once
            aliases[name] = seen[tensor.data_ptr()]
            continue
        seen[tensor.data_ptr()] = name
        tensors[name] = tensor.contiguous()
    save_file(tensors, str(folder / WEIGHTS))
    model.config.to_json_file(str(folder / "config.json"))
    return {"int8_linears": sorted(linears), "aliases": aliases}


def _load_dense(folder: Path, manifest: dict) -> nn.Module:
    return getattr(transformers, manifest["architecture"]).from_pretrained(str(folder))


def _load_int8_dynamic(folder: Path, manifest: dict) -> nn.Module:
    config = transformers.AutoConfig.from_pretrained(str(folder))
    architecture = getattr(transformers, manifest["architecture"])
    with no_init_weights():
        model = architecture._from_config(config)
    tensors = load_file(str(folder / WEIGHTS))
    for alias, source in manifest["aliases"].items():
        tensors[alias] = tensors[source]
    packed = {
        name: {key: tensors.pop(f"{name}.{key}", None) for key in _INT8_KEYS}
        for name in manifest["int8_linears"]
    }
    model.load_state_dict(tensors, strict=False)
    for name, stored in packed.items():
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        dense = getattr(parent, attr)
        weight = torch._make_per_tensor_quantized_tensor(
            stored["weight"], float(stored["weight_scale"]), int(stored["weight_zero_point"])
        )
        module = quantized_dynamic.Linear(dense.in_features, dense.out_features, dtype=torch.qint8)
        module.set_weight_bias(weight, stored["bias"])
        setattr(parent, attr, module)
    return model.eval()


_SAVERS: dict[str, Callable[[nn.Module, Path], dict]] = {
    "dense": _save_dense,
    "int8_dynamic": _save_int8_dynamic,
}
_LOADERS: dict[str, Callable[[Path, dict], nn.Module]] = {
    "dense": _load_dense,
    "int8_dynamic": _load_int8_dynamic,
}


def save_artifact(model: nn.Module, folder: Path) -> dict:
    """Write ``model`` into ``folder``; returns the manifest (format, files, bytes on disk)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fmt = storage_format(model)
    manifest = {
        "format": fmt,
        "architecture": type(model).__name__,
        **_SAVERS[fmt](model, folder),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return {**manifest, "disk_bytes": disk_bytes(folder)}


def read_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{folder} is not a compress artifact: {MANIFEST} is missing")
    return json.loads(path.read_text())


def architecture_class(folder: Path) -> type:
    """The transformers model class an artifact holds (importing it is library start-up)."""
    return getattr(transformers, read_manifest(folder)["architecture"])


def load_artifact(folder: Path) -> nn.Module:
    manifest = read_manifest(folder)
    return _LOADERS[manifest["format"]](Path(folder), manifest).eval()
