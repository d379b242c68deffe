"""What a backend provides, and the registries that dispatch to it.

A backend registers two things: ``compress_on`` (keyed by its config dataclass) quantizes the
already pruned float model for its runtime, saves it into a folder and returns a
:class:`CompressedModel`; an :class:`ArtifactFormat` (keyed by the ``backend`` name its
manifests carry) opens such a folder again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from compress.infra.registry import Registry
from compress.quantization.report import QuantReport
from compress.storage.artifact import read_manifest


@dataclass(frozen=True)
class CompressedModel:
    """``model(**inputs)`` returns an object with ``.logits``, like a transformers model."""

    model: Callable
    quant: QuantReport
    artifact: dict
    size: dict


compress_on = Registry("backend")


@dataclass(frozen=True)
class ArtifactFormat:
    """``load(folder, manifest, zero_copy)`` returns the runnable model;
    ``import_runtime(folder)`` imports the libraries that loading needs, so that a timed load
    measures loading only."""

    load: Callable[[Path, dict, bool], Callable]
    import_runtime: Callable[[Path], None]


_FORMATS: dict[str, ArtifactFormat] = {}


def register_artifact_format(backend: str, artifact_format: ArtifactFormat) -> None:
    if backend in _FORMATS:
        raise ValueError(f"artifact format of backend {backend!r} is registered twice")
    _FORMATS[backend] = artifact_format


def _format_of(folder: Path) -> tuple[ArtifactFormat, dict]:
    manifest = read_manifest(folder)
    backend = manifest.get("backend")
    if backend not in _FORMATS:
        raise ValueError(
            f"{folder}: artifact of backend {backend!r}; known backends: {', '.join(_FORMATS)}"
        )
    return _FORMATS[backend], manifest


def load_artifact(folder: Path, zero_copy: bool = True) -> Callable:
    """The saved model, ready to run, opened by the backend that wrote it."""
    artifact_format, manifest = _format_of(Path(folder))
    return artifact_format.load(Path(folder), manifest, zero_copy)


def import_runtime(folder: Path) -> None:
    """Import what loading ``folder`` needs (see :class:`ArtifactFormat`)."""
    artifact_format, _ = _format_of(Path(folder))
    artifact_format.import_runtime(Path(folder))
