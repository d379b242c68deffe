"""The fine-tuned, uncompressed baseline: trained once per (model, task, training settings),
cached on disk and shared by every job of every sweep.

Cache entry ``<cache>/baselines/<model>-<task>-<key>/``: ``model/`` (a dense artifact with
its tokenizer) and ``baseline.json`` (training cost, held-out quality, and the held-out
outputs that compressed models are compared against). It is built under a file lock in a
staging folder and renamed into place, so parallel jobs never see half an entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from compress.backends import load_artifact
from compress.backends.torch.artifact import save_artifact
from compress.config.model import ModelConfig
from compress.data.lengths import truncation_note
from compress.infra.atomic import write_json_atomic
from compress.infra.cache import cached_entry
from compress.measure.gate import headline
from compress.models import sources
from compress.storage.artifact import FORMAT_VERSION, TOKENIZER_DIR

if TYPE_CHECKING:
    from compress.tasks.base import Task

log = logging.getLogger(__name__)

# Bump when training or evaluation code changes what a cached baseline holds.
BASELINE_FORMAT = 5


@dataclass(frozen=True)
class Baseline:
    folder: Path
    info: dict

    @property
    def model_dir(self) -> Path:
        return self.folder / "model"

    def load_model(self):
        return load_artifact(self.model_dir)

    def load_tokenizer(self) -> PreTrainedTokenizerBase:
        return AutoTokenizer.from_pretrained(str(self.model_dir / TOKENIZER_DIR))


def baseline_key(model: ModelConfig, task: Task) -> str:
    material = {
        "format": BASELINE_FORMAT,
        "artifact_format": FORMAT_VERSION,
        "name_or_path": model.name_or_path,
        "finetuned": model.finetuned,
        "task": task.key_material(),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:12]


def _build(model_config: ModelConfig, task: Task, cache_dir: Path, folder: Path) -> None:
    pretrained = sources.resolve(model_config.name_or_path, cache_dir)
    log.info(
        "training the baseline %s on %s (cached in %s)", model_config.name, task.config.name, folder
    )
    model, tokenizer, training = task.train_baseline(pretrained, model_config.finetuned)
    quality, outputs = task.evaluate(model, tokenizer)
    gate = task.baseline_gate(outputs, training, tokenizer)
    save_artifact(model, folder / "model")
    tokenizer.save_pretrained(str(folder / "model" / TOKENIZER_DIR))
    info = {
        "model": model_config.name,
        "name_or_path": model_config.name_or_path,
        "task": task.key_material(),
        "data": training.pop("data", None),
        "training": training,
        "quality": quality,
        "gate": gate,
        "outputs": outputs,
    }
    write_json_atomic(folder / "baseline.json", info)


def ensure_baseline(model_config: ModelConfig, task: Task, cache_dir: Path) -> Baseline:
    """The cached baseline for this model and task, trained first if it is not cached yet."""
    name = f"{model_config.name}-{task.config.name}-{baseline_key(model_config, task)}"
    build = partial(_build, model_config, task, Path(cache_dir))
    folder = cached_entry(Path(cache_dir) / "baselines", name, build, "baseline")
    info = json.loads((folder / "baseline.json").read_text())
    return Baseline(folder, info)


def baseline_notes(info: dict) -> list[str]:
    """The record's notes about the baseline: a gate that failed, held-out texts dropped for
    occurring in training, and a length that cuts many held-out texts."""
    notes = []
    gate, data = info.get("gate") or {}, info.get("data") or {}
    if gate.get("learned") is False:
        notes.append(f"no quality conclusion: {headline(gate)}")
    if data.get("eval_overlap"):
        done = "dropped" if data.get("eval_overlap_policy") == "drop" else "kept"
        notes.append(
            f"{data['eval_overlap']} of the {data['eval_distinct']} distinct held-out texts "
            f"also occur in the train split: {done} (task.eval_overlap)"
        )
    cut = truncation_note(data)
    return notes + ([cut] if cut else [])
