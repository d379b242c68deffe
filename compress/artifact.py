"""Save a compressed model so that its size on disk is real, and load it back exactly.

An artifact is a folder: ``config.json`` (the model's config, updated by structured pruning),
``model.safetensors``, ``compress.json`` (a manifest of how tensors are stored) and the
tokenizer in ``tokenizer/``. Three things are stored differently from ``save_pretrained``:

- int8 Linear weights (dynamic or static quantization) and int8 embedding rows as plain
  integer tensors with their scales and zero points (:data:`CODECS`): torch's packed
  parameters hold a ``torch.dtype`` and cannot go through safetensors;
- sparse weight matrices as a bitmask of non-zeros plus the non-zero values, whenever that is
  smaller than the dense tensor (a 90%-sparse fp32 matrix takes 0.125 + 0.4 bytes/weight
  instead of 4); a tensor that would not shrink stays dense;
- attention heads removed per block, which a config cannot express, as the kept heads'
  original numbers; loading replays that surgery on a skeleton built from the config.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import transformers
from safetensors.torch import load_file, save_file
from torch import nn
from torch.ao.nn import quantized
from torch.ao.nn.quantized import dynamic as quantized_dynamic
from transformers.initialization import no_init_weights

from compress.qmodules import Int8Embedding, StaticInt8Linear
from compress.structure import apply_structure, kept_heads
from compress.zero_copy import load_mapped

MANIFEST = "compress.json"
WEIGHTS = "model.safetensors"
# The tokenizer travels with the artifact (serving needs it) but is not the model's size.
TOKENIZER_DIR = "tokenizer"
FORMAT_VERSION = 2
_MASK, _VALUES = ".sparse_mask", ".sparse_values"


def disk_bytes(folder: Path) -> int:
    """Bytes of the model files of an artifact: every file in the folder, tokenizer excluded."""
    return sum(p.stat().st_size for p in Path(folder).iterdir() if p.is_file())


def _quantized_weight(weight: torch.Tensor) -> dict[str, torch.Tensor]:
    if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        return {
            "weight": weight.int_repr(),
            "weight_scale": weight.q_per_channel_scales().double(),
            "weight_zero_point": weight.q_per_channel_zero_points(),
        }
    return {
        "weight": weight.int_repr(),
        "weight_scale": torch.tensor(weight.q_scale(), dtype=torch.float64),
        "weight_zero_point": torch.tensor(weight.q_zero_point()),
    }


def _dequantizable(stored: dict[str, torch.Tensor]) -> torch.Tensor:
    scale, zero = stored["weight_scale"], stored["weight_zero_point"]
    with warnings.catch_warnings():  # torch 2.13 deprecates quantized tensors; no successor yet
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        if scale.dim() == 1:
            return torch._make_per_channel_quantized_tensor(stored["weight"], scale, zero, 0)
        return torch._make_per_tensor_quantized_tensor(stored["weight"], float(scale), int(zero))


def _encode_dynamic(module: quantized_dynamic.Linear) -> dict[str, torch.Tensor]:
    weight, bias = module._weight_bias()
    return _quantized_weight(weight) | ({} if bias is None else {"bias": bias.detach()})


def _decode_dynamic(stored: dict[str, torch.Tensor], skeleton: nn.Module) -> nn.Module:
    out_features, in_features = stored["weight"].shape
    module = quantized_dynamic.Linear(in_features, out_features, dtype=torch.qint8)
    module.set_weight_bias(_dequantizable(stored), stored.get("bias"))
    return module


def _encode_static(module: StaticInt8Linear) -> dict[str, torch.Tensor]:
    weight, bias = module.linear._weight_bias()
    ranges = [module.input_scale, module.input_zero_point, module.linear.scale,
              module.linear.zero_point]  # fmt: skip
    encoded = _quantized_weight(weight) | {"ranges": torch.tensor(ranges, dtype=torch.float64)}
    return encoded | ({} if bias is None else {"bias": bias.detach()})


def _decode_static(stored: dict[str, torch.Tensor], skeleton: nn.Module) -> nn.Module:
    out_features, in_features = stored["weight"].shape
    module = quantized.Linear(in_features, out_features, dtype=torch.qint8)
    module.set_weight_bias(_dequantizable(stored), stored.get("bias"))
    input_scale, input_zero, output_scale, output_zero = stored["ranges"].tolist()
    module.scale, module.zero_point = output_scale, int(output_zero)
    return StaticInt8Linear(module, input_scale, int(input_zero))


def _encode_embedding(module: Int8Embedding) -> dict[str, torch.Tensor]:
    rows = module.weight()
    return {
        "weight": rows.int_repr(),
        "weight_scale": rows.q_per_channel_scales(),
        "weight_offset": rows.q_per_channel_zero_points(),
    }


def _decode_embedding(stored: dict[str, torch.Tensor], skeleton: nn.Module) -> nn.Module:
    count, dim = stored["weight"].shape
    module = Int8Embedding(count, dim, skeleton.padding_idx, dtype=torch.quint8)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        rows = torch._make_per_channel_quantized_tensor(
            stored["weight"], stored["weight_scale"], stored["weight_offset"], 0
        )
        module.set_weight(rows)
    return module


@dataclass(frozen=True)
class QuantizedCodec:
    """How one kind of quantized module is stored as plain tensors and rebuilt from them, in
    place of the float module the skeleton built from the config has there (a Linear, or
    GPT-2's Conv1D: shapes come from the stored weight, not from the skeleton)."""

    module_type: type
    encode: Callable[[nn.Module], dict[str, torch.Tensor]]
    decode: Callable[[dict[str, torch.Tensor], nn.Module], nn.Module]


CODECS = {
    "int8_dynamic": QuantizedCodec(quantized_dynamic.Linear, _encode_dynamic, _decode_dynamic),
    "int8_static": QuantizedCodec(StaticInt8Linear, _encode_static, _decode_static),
    "int8_embedding": QuantizedCodec(Int8Embedding, _encode_embedding, _decode_embedding),
}


def _quantized_modules(model: nn.Module) -> dict[str, str]:
    """Quantized modules by qualified name, with the name of their codec."""
    kinds = {codec.module_type: name for name, codec in CODECS.items()}
    return {n: kinds[type(m)] for n, m in model.named_modules() if type(m) in kinds}


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
    quantized_modules = _quantized_modules(model)
    tensors, aliases = _plain_tensors(model, quantized_modules)
    for name, codec in quantized_modules.items():
        encoded = CODECS[codec].encode(model.get_submodule(name))
        tensors.update({f"{name}.{key}": value for key, value in encoded.items()})
    shapes = {name: list(t.shape) for name, t in tensors.items()}
    sparse = _encode_sparse(tensors)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / WEIGHTS),
              metadata={"format": "pt"})  # fmt: skip
    model.config.to_json_file(str(folder / "config.json"))
    manifest = {
        "format_version": FORMAT_VERSION,
        "backend": "torch",
        "architecture": type(model).__name__,
        "quantized": quantized_modules,
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


def import_runtime(folder: Path) -> None:
    """Import the libraries loading ``folder`` needs, so a timed load measures only loading."""
    architecture_class(folder)
    if read_manifest(folder).get("backend") == "onnxruntime":
        import onnxruntime  # noqa: F401


def _swap_in_quantized(model: nn.Module, stored: dict[str, tuple[str, dict]]) -> None:
    for name, (codec, tensors) in stored.items():
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, CODECS[codec].decode(tensors, getattr(parent, attr)))


def load_artifact(folder: Path, zero_copy: bool = True):
    """The saved model, ready to run: a torch module, or an ONNX Runtime session wrapper.

    ``zero_copy`` maps the weights file instead of reading it (see :mod:`compress.zero_copy`).
    """
    manifest = read_manifest(folder)
    if manifest.get("backend") == "onnxruntime":
        from compress.backends.onnxruntime_backend import load_onnx_artifact

        return load_onnx_artifact(Path(folder), manifest)
    return _load_torch(Path(folder), manifest, zero_copy)


def _load_torch(folder: Path, manifest: dict, zero_copy: bool) -> nn.Module:
    """Build the model from its config, replay its structure, and fill in the stored tensors."""
    config = transformers.AutoConfig.from_pretrained(str(folder))
    with no_init_weights():
        model = architecture_class(folder)._from_config(config)
    apply_structure(model, {int(k): v for k, v in manifest["heads"].items()})
    tensors = load_mapped(folder / WEIGHTS) if zero_copy else load_file(str(folder / WEIGHTS))
    _decode_sparse(tensors, manifest["sparse"])
    for alias, source in manifest["aliases"].items():
        tensors[alias] = tensors[source]
    stored = {
        name: (codec, {key.removeprefix(f"{name}."): tensors.pop(key)
                       for key in [k for k in tensors if k.startswith(f"{name}.")]})
        for name, codec in manifest["quantized"].items()
    }  # fmt: skip
    missing, unexpected = model.load_state_dict(tensors, strict=False, assign=True)
    missing = [k for k in missing if not any(k.startswith(f"{q}.") for q in stored)]
    if missing or unexpected:
        raise ValueError(f"{folder}: stored tensors do not fit the model: {missing or unexpected}")
    _swap_in_quantized(model, stored)
    return model.eval()
