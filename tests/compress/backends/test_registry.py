"""Backends are symmetric: each quantizes exactly the levels it declares, and artifacts are
opened by the backend their manifest names."""

from __future__ import annotations

import json

import pytest

from compress.backends import load_artifact
from compress.backends.llama_cpp.quantize import gguf_level
from compress.backends.onnxruntime.quantize import ort_quantize
from compress.backends.torch.quantize import quantize_
from compress.config.backend import (
    LlamaCppBackendConfig,
    OnnxRuntimeBackendConfig,
    TorchBackendConfig,
)
from compress.storage.artifact import MANIFEST


@pytest.mark.parametrize(
    ("backend", "registry"),
    [
        (TorchBackendConfig, quantize_),
        (OnnxRuntimeBackendConfig, ort_quantize),
        (LlamaCppBackendConfig, gguf_level),
    ],
)
def test_supported_levels_are_exactly_the_registered_handlers(backend, registry):
    assert set(backend.SUPPORTED) == registry.registered


def test_an_artifact_of_an_unknown_backend_is_refused_by_name(tmp_path):
    (tmp_path / MANIFEST).write_text(json.dumps({"backend": "tensorrt"}))
    with pytest.raises(ValueError, match="artifact of backend 'tensorrt'; known backends: "):
        load_artifact(tmp_path)
