"""Save a compressed model so that its size on disk is real, and load it back exactly.

An artifact is a folder: ``config.json`` (the model's config, updated by structured pruning),
``model.safetensors``, ``compress.json`` (a manifest of how tensors are stored) and the
tokenizer in ``tokenizer/``. Three things are stored differently from ``save_pretrained``:

- int8 Linear weights (dynamic quantization) as plain int8 tensors with their scale and zero
  point: torch's packed parameters hold a ``torch.dtype`` and cannot go through safetensors;
- sparse weight matrices as a bitmask of non-zeros plus the non-zero values, whenever that is
  smaller than the dense tensor (a 90%-sparse fp32 matrix takes 0.125 + 0.4 bytes/weight
  instead of 4); a tensor that would not shrink stays dense;
- attention heads removed per block, which a config cannot express, as the kept heads'
  original numbers; loading replays that surgery on a skeleton built from the config.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import transformers
from safetensors.torch import load_file, save_file
from torch import nn
from torch.ao.nn.quantized import dynamic as quantized_dynamic
from transformers.initialization import no_init_weights

from compress.structure import apply_structure, kept_heads

MANIFEST = "compress.json"
WEIGHTS = "model.safetensors"
# The tokenizer travels with the artifact (serving needs it) but is not the model's size.
TOKENIZER_DIR = "tokenizer"
FORMAT_VERSION = 2
_MASK, _VALUES = ".sparse_mask", ".sparse_values"
_INT8_KEYS = ("weight", "weight_scale", "weight_zero_point", "bias")


def disk_bytes(folder: Path) -> int:
    """Bytes of the model files of an artifact: every file in the folder, tokenizer excluded."""
    return sum(p.stat().st_size for p in Path(folder).iterdir() if p.is_file())


def _int8_linears(model: nn.Module) -> dict[str, quantized_dynamic.Linear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, quantized_dynamic.Linear)}


def _int8_tensors(linears: dict[str, quantized_dynamic.Linear]) -> dict[str, torch.Tensor]:
    tensors = {}
    for name, module in linears.items():
        weight, bias = module._weight_bias()
        if weight.qscheme() != torch.per_tensor_affine:
            raise NotImplementedError(f"{name}: only per-tensor int8 weights are stored")
        tensors[f"{name}.weight"] = weight.int_repr()
        tensors[f"{name}.weight_scale"] = torch.tensor(weight.q_scale(), dtype=torch.float64)
        tensors[f"{name}.weight_zero_point"] = torch.tensor(weight.q_zero_point())
        if bias is not None:
            tensors[f"{name}.bias"] = bias.detach()
    return tensors


def _plain_tensors(model: nn.Module, skip: dict) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Every tensor of the state dict outside ``skip``'s modules; tied tensors stored once."""
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[int, tuple], str] = {}
    for name, tensor in model.state_dict().items():
        if not isinstance(tensor, torch.Tensor) or any(name.startswith(f"{q}.") for q in skip):
            continue
        key = (tensor.data_ptr(), tuple(tensor.shape))
        if key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensors[name] = tensor.detach()
    return tensors, aliases


def _bitmask_is_smaller(tensor: torch.Tensor) -> bool:
    nonzero = int(torch.count_nonzero(tensor))
    return tensor.numel() // 8 + 1 + nonzero * tensor.element_size() < tensor.nbytes


def _encode_sparse(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Replace each 2-D weight that a bitmask stores in fewer bytes; returns their names."""
    encoded = []
    for name in [n for n, t in tensors.items() if t.dim() == 2 and n.endswith("weight")]:
        tensor = tensors[name]
        if not _bitmask_is_smaller(tensor):
            continue
        mask = tensor != 0
        tensors[name + _MASK] = torch.from_numpy(np.packbits(mask.flatten().numpy()))
        tensors[name + _VALUES] = tensor[mask].contiguous()
        del tensors[name]
        encoded.append(name)
    return encoded


def _decode_sparse(tensors: dict[str, torch.Tensor], shapes: dict[str, list[int]]) -> None:
    for name, shape in shapes.items():
        values = tensors.pop(name + _VALUES)
        count = int(np.prod(shape))
        bits = np.unpackbits(tensors.pop(name + _MASK).numpy(), count=count).astype(bool)
        dense = torch.zeros(count, dtype=values.dtype)
        dense[torch.from_numpy(bits)] = values
        tensors[name] = dense.view(shape)


def save_artifact(model: nn.Module, folder: Path) -> dict:
    """Write ``model`` into ``folder``; returns the manifest plus its bytes on disk."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    linears = _int8_linears(model)
    tensors, aliases = _plain_tensors(model, linears)
    tensors.update(_int8_tensors(linears))
    shapes = {name: list(t.shape) for name, t in tensors.items()}
    sparse = _encode_sparse(tensors)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / WEIGHTS),
              metadata={"format": "pt"})  # fmt: skip
    model.config.to_json_file(str(folder / "config.json"))
    manifest = {
        "format_version": FORMAT_VERSION,
        "architecture": type(model).__name__,
        "int8_linears": sorted(linears),
        "aliases": aliases,
        "sparse": {name: shapes[name] for name in sparse},
        "heads": {str(k): v for k, v in kept_heads(model).items()},
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


def _swap_in_int8(model: nn.Module, packed: dict[str, dict[str, torch.Tensor | None]]) -> None:
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


def load_artifact(folder: Path) -> nn.Module:
    """Build the model from its config, replay its structure, and fill in the stored tensors."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    config = transformers.AutoConfig.from_pretrained(str(folder))
    with no_init_weights():
        model = architecture_class(folder)._from_config(config)
    apply_structure(model, {int(k): v for k, v in manifest["heads"].items()})
    tensors = load_file(str(folder / WEIGHTS))
    _decode_sparse(tensors, manifest["sparse"])
    for alias, source in manifest["aliases"].items():
        tensors[alias] = tensors[source]
    packed = {
        name: {key: tensors.pop(f"{name}.{key}", None) for key in _INT8_KEYS}
        for name in manifest["int8_linears"]
    }
    missing, unexpected = model.load_state_dict(tensors, strict=False, assign=True)
    missing = [k for k in missing if not any(k.startswith(f"{q}.") for q in packed)]
    if missing or unexpected:
        raise ValueError(f"{folder}: stored tensors do not fit the model: {missing or unexpected}")
    _swap_in_int8(model, packed)
    return model.eval()
