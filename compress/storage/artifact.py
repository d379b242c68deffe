"""What every saved model folder (an *artifact*) shares, whatever backend wrote it.

An artifact is a folder: the model's ``config.json`` (updated by structured pruning), the
weights in the backend's own format, ``compress.json`` (a manifest naming the backend and how
tensors are stored) and the tokenizer in ``tokenizer/``. Each backend registers how it loads
its artifacts (:mod:`compress.backends.registry`); this module only reads what they share.
"""

from __future__ import annotations

import json
from pathlib import Path

MANIFEST = "compress.json"
# The tokenizer travels with the artifact (serving needs it) but is not the model's size.
TOKENIZER_DIR = "tokenizer"
FORMAT_VERSION = 2


def disk_bytes(folder: Path) -> int:
    """Bytes of the model files of an artifact: every file in the folder, tokenizer excluded."""
    return sum(p.stat().st_size for p in Path(folder).iterdir() if p.is_file())


def write_manifest(folder: Path, manifest: dict) -> dict:
    """Write ``manifest`` into ``folder``; returns it with the folder's bytes on disk."""
    (Path(folder) / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return {**manifest, "disk_bytes": disk_bytes(folder)}


def read_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{folder} is not a compress artifact: {MANIFEST} is missing")
    return json.loads(path.read_text())


def architecture_class(folder: Path) -> type:
    """The transformers model class an artifact holds (importing it is library start-up)."""
    import transformers

    return getattr(transformers, read_manifest(folder)["architecture"])
