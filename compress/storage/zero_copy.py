"""Open a safetensors file without reading it: every tensor is a view of a private memory
map of the file, so loading costs parsing the header, and pages are read on first use.

``safetensors.torch.load_file`` copies each tensor out of its map; for a cold start that
copy is most of the load time.

:func:`save_aligned` writes the same format with every tensor at a 64-byte boundary of the
file, hence of the map: some CPU kernels read weights with aligned vector loads (torch's
weight-only int8 kernel crashes on an int8 weight that is not 16-byte aligned), and a
plain safetensors file only aligns its data to 8 bytes.
"""

from __future__ import annotations

import json
import mmap
import struct
from pathlib import Path

import torch

_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}  # fmt: skip


_NAMES = {dtype: name for name, dtype in _DTYPES.items()}
_ALIGNMENT = 64
# Fills the gaps between aligned tensors: safetensors readers refuse a file with holes.
PADDING = "__padding__."


def _place(header: dict, name: str, tensor: torch.Tensor, offset: int) -> torch.Tensor:
    """Enter ``tensor`` into ``header`` at ``offset``; returns its bytes."""
    data = tensor.detach().contiguous().reshape(-1).view(torch.uint8)
    header[name] = {"dtype": _NAMES[tensor.dtype], "shape": list(tensor.shape),
                    "data_offsets": [offset, offset + data.numel()]}  # fmt: skip
    return data


def save_aligned(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """A safetensors file whose tensors each start at a multiple of 64 bytes (the gaps are
    uint8 tensors named ``__padding__.<n>``, which :func:`without_padding` drops)."""
    header: dict = {"__metadata__": metadata}
    chunks, offset = [], 0
    for name, tensor in sorted(tensors.items()):
        if gap := -offset % _ALIGNMENT:
            padding = torch.zeros(gap, dtype=torch.uint8)
            chunks.append(_place(header, f"{PADDING}{len(chunks)}", padding, offset))
            offset += gap
        chunks.append(_place(header, name, tensor, offset))
        offset += chunks[-1].numel()
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-(8 + len(encoded)) % _ALIGNMENT)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)) + encoded)
        for chunk in chunks:
            handle.write(chunk.numpy().tobytes())


def without_padding(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors of a file written by :func:`save_aligned`, its padding left out."""
    return {name: t for name, t in tensors.items() if not name.startswith(PADDING)}


def load_mapped(path: Path) -> dict[str, torch.Tensor]:
    with open(path, "rb") as handle:
        (header_size,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(header_size))
        # ACCESS_COPY: writable copy-on-write pages, so torch gets a writable buffer and the
        # file is never modified.
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)
    start = 8 + header_size
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES[entry["dtype"]]
        begin, end = entry["data_offsets"]
        count = (end - begin) // dtype.itemsize
        flat = torch.frombuffer(mapped, dtype=dtype, count=count, offset=start + begin)
        tensors[name] = flat.view(entry["shape"])
    return tensors
