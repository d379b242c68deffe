"""A tiny saved artifact (random 2-layer BERT, MiniLM's real tokenizer) for the server tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from compress.backends.torch.artifact import save_artifact
from compress.storage.artifact import TOKENIZER_DIR
from tests.conftest import tiny_bert


@pytest.fixture(scope="session")
def tiny_artifact(tiny_pretrained_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-artifact")
    save_artifact(tiny_bert(seed=3), folder)
    AutoTokenizer.from_pretrained(str(tiny_pretrained_dir)).save_pretrained(
        str(folder / TOKENIZER_DIR)
    )
    return folder
