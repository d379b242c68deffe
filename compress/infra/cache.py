"""Cache entries that take minutes to build (fine-tuned baselines, recovered models, models
unpacked from packages): built once under a file lock, checked on every use.

An entry is a folder ``<root>/<name>/`` built in ``<name>.partial`` and renamed into place, so
no reader sees half of one. It carries ``entry.json``: the size and SHA-256 of each of its
files. A file missing, truncated or changed since is reported in one line and the entry is
rebuilt. A ``.partial`` folder whose lock nobody holds was left by a killed build: it is removed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from compress.infra.filelock import exclusive_lock

log = logging.getLogger(__name__)

ENTRY_MANIFEST = "entry.json"
_CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _files(folder: Path) -> list[Path]:
    paths = [p for p in folder.rglob("*") if p.is_file() and p.name != ENTRY_MANIFEST]
    return sorted(paths)


def write_entry_manifest(folder: Path) -> None:
    files = {
        str(p.relative_to(folder)): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
        for p in _files(folder)
    }
    (folder / ENTRY_MANIFEST).write_text(json.dumps({"files": files}, indent=1))


def entry_problem(folder: Path) -> str | None:
    """What is wrong with a built entry, or None if every file is as it was written."""
    manifest = folder / ENTRY_MANIFEST
    if not manifest.is_file():
        return f"{ENTRY_MANIFEST} is missing"
    try:
        files = json.loads(manifest.read_text())["files"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return f"{ENTRY_MANIFEST} is corrupt"
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected["bytes"]:
            return f"{name} has {path.stat().st_size} bytes, {expected['bytes']} were written"
        if _sha256(path) != expected["sha256"]:
            return f"{name} changed since it was written (SHA-256 differs)"
    return None


def _remove_stale_partials(root: Path) -> None:
    """Remove the staging folders of builds that no process is running any more."""
    for staging in root.glob("*.partial"):
        lock = root / f"{staging.name.removesuffix('.partial')}.lock"
        with open(lock, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its build is running
            shutil.rmtree(staging, ignore_errors=True)
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_entry(root: Path, name: str, build: Callable[[Path], None], what: str) -> Path:
    """``root/name``, built by ``build(staging_folder)`` first if it is missing or corrupt."""
    folder = Path(root) / name
    if folder.is_dir() and entry_problem(folder) is None:
        return folder
    with exclusive_lock(folder.with_name(f"{name}.lock")):
        problem = entry_problem(folder) if folder.is_dir() else None
        if folder.is_dir() and problem is None:
            return folder  # another process built it while we waited
        if problem is not None:
            log.warning("cached %s %s is corrupt (%s): rebuilding it", what, folder, problem)
            shutil.rmtree(folder)
        staging = folder.with_name(f"{name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        build(staging)
        write_entry_manifest(staging)
        staging.rename(folder)
    _remove_stale_partials(Path(root))
    return folder
