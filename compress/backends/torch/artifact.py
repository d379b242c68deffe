"""Save a torch model so that its size on disk is real, and load it back exactly.

Beside ``config.json`` and the manifest, ``model.safetensors`` holds every tensor. Three
things are stored differently from ``save_pretrained``:

- quantized modules as plain integer tensors with their scales (:mod:`.codecs`);
- sparse weight matrices as bitmask + values when that is smaller
  (:mod:`compress.storage.sparse`);
- attention heads removed per block, which a config cannot express, as the kept heads'
  original numbers; loading replays that surgery on a skeleton built from the config.
"""

from __future__ import annotations

from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file, save_file
from torch import nn
from transformers.initialization import no_init_weights

from compress.backends.torch.codecs import CODECS, quantized_modules, swap_in_quantized
from compress.pruning.surgery import apply_structure, kept_heads
from compress.storage.artifact import FORMAT_VERSION, architecture_class, write_manifest
from compress.storage.sparse import decode_sparse, encode_sparse
from compress.storage.zero_copy import load_mapped, save_aligned, without_padding

WEIGHTS = "model.safetensors"


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


def save_artifact(model: nn.Module, folder: Path) -> dict:
    """Write ``model`` into ``folder``; returns the manifest plus its bytes on disk."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    quantized = quantized_modules(model)
    tensors, aliases = _plain_tensors(model, quantized)
    for name, codec in quantized.items():
        encoded = CODECS[codec].encode(model.get_submodule(name))
        tensors.update({f"{name}.{key}": value for key, value in encoded.items()})
    sparse = encode_sparse(tensors)
    if quantized:  # integer kernels read their weights in place: keep them aligned
        save_aligned(tensors, folder / WEIGHTS, metadata={"format": "pt"})
    else:  # float models stay plain safetensors, which from_pretrained opens too
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / WEIGHTS),
                  metadata={"format": "pt"})  # fmt: skip
    model.config.to_json_file(str(folder / "config.json"))
    manifest = {
        "format_version": FORMAT_VERSION,
        "backend": "torch",
        "architecture": type(model).__name__,
        "quantized": quantized,
        "aliases": aliases,
        "sparse": sparse,
        "heads": {str(k): v for k, v in kept_heads(model).items()},
    }
    return write_manifest(folder, manifest)


def load_torch_artifact(folder: Path, manifest: dict, zero_copy: bool) -> nn.Module:
    """Build the model from its config, replay its structure, and fill in the stored tensors.

    ``zero_copy`` maps the weights file instead of reading it (see
    :mod:`compress.storage.zero_copy`)."""
    config = transformers.AutoConfig.from_pretrained(str(folder))
    with no_init_weights():
        model = architecture_class(folder)._from_config(config)
    apply_structure(model, {int(k): v for k, v in manifest["heads"].items()})
    read = load_mapped(folder / WEIGHTS) if zero_copy else load_file(str(folder / WEIGHTS))
    tensors = without_padding(read)
    decode_sparse(tensors, manifest["sparse"])
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
    _tie(model, manifest["aliases"])
    swap_in_quantized(model, stored)
    return model.eval()


def _tie(model: nn.Module, aliases: dict[str, str]) -> None:
    """Make each alias the very parameter it was saved as (a tied LM head and embedding):
    loading assigned each its own parameter over the one tensor, and methods that act on
    tied weights (quantizing the head for both) recognise the tie by identity."""
    for alias, source in aliases.items():
        holder, _, name = alias.rpartition(".")
        owner, _, source_name = source.rpartition(".")
        parameter = getattr(model.get_submodule(owner), source_name)
        if isinstance(parameter, nn.Parameter):
            setattr(model.get_submodule(holder), name, parameter)
