"""Jobs on the user's own files (tiny model, real text): binary CSV, 4-class JSONL, text-pair
parquet; the user's own fine-tuned model reused as the baseline."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoTokenizer

from compress.backends import load_artifact
from compress.pipeline.job import run_job
from compress.storage.artifact import TOKENIZER_DIR
from tests.fixtures.user_data import DATA_JOB


def _job(compose_config, model: Path, data_file: Path, *overrides: str) -> dict:
    data = f"task.data.files.train={data_file}"
    cfg = compose_config([f"model.name_or_path={model}", *DATA_JOB, data, *overrides])
    record = run_job(cfg)
    assert record["status"] == "ok"
    return record


def test_a_binary_csv_with_its_own_column_names(compose_config, tiny_pretrained_dir, data_dir):
    record = _job(compose_config, tiny_pretrained_dir, data_dir / "reviews.csv",
                  "task.data.text_column=review", "task.data.label_column=verdict")  # fmt: skip
    quality = record["compressed"]["quality"]
    assert record["baseline"]["training"]["labels"] == ["fresh", "rotten"]  # sorted values
    assert len(quality["confusion_matrix"]) == 2 and quality["n"] == 40
    assert 0 <= quality["roc_auc"] <= 1 and "f1_per_class" not in quality


def test_a_four_class_jsonl(compose_config, tiny_pretrained_dir, data_dir):
    record = _job(compose_config, tiny_pretrained_dir, data_dir / "topics.jsonl",
                  "task.data.label_column=topic", "quant=int8")  # fmt: skip
    quality = record["compressed"]["quality"]
    assert quality["labels"] == ["ai", "coding", "emotion", "trivia"]
    matrix = quality["confusion_matrix"]
    assert len(matrix) == 4 and all(len(row) == 4 for row in matrix)
    assert sum(map(sum, matrix)) == quality["n"] == 40
    assert set(quality["f1_per_class"]) == {"ai", "coding", "emotion", "trivia"}
    for key in ("accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_weighted"):
        assert 0 <= quality[key] <= 1
    assert quality["f1"] == quality["f1_macro"]


def test_text_pairs_from_parquet(compose_config, tiny_pretrained_dir, data_dir):
    record = _job(compose_config, tiny_pretrained_dir, data_dir / "pairs.parquet",
                  "task.data.text_column=a", "task.data.text_pair_column=b",
                  "task.data.label_column=same", "bench.lengths=data")  # fmt: skip
    assert record["baseline"]["training"]["labels"] == ["False", "True"]
    speed = record["compressed"]["speed"]
    assert speed["lengths"] == "data" and speed["tokens_mean"] <= 16


def test_the_users_fine_tuned_model_is_the_baseline_as_it_is(
    compose_config, tiny_pretrained_dir, data_dir, tmp_path
):
    data = [f"task.data.files.train={data_dir}/topics.jsonl", "task.data.label_column=topic"]
    first = compose_config([f"model.name_or_path={tiny_pretrained_dir}", *DATA_JOB, *data])
    trained = run_job(first)
    (baseline,) = [p for p in (Path(first.paths.cache_dir) / "baselines").iterdir() if p.is_dir()]
    users_model = tmp_path / "my-topic-model"
    load_artifact(baseline / "model").save_pretrained(users_model)
    AutoTokenizer.from_pretrained(str(baseline / "model" / TOKENIZER_DIR)).save_pretrained(
        users_model
    )
    reused = compose_config([f"model.name_or_path={users_model}", *DATA_JOB, *data])
    reused.paths.output_dir += "-reused"
    record = run_job(reused)
    training = record["baseline"]["training"]
    assert training["steps"] == 0 and training["samples_seen"] == 0
    assert training["head"].startswith("the model's own head, not fine-tuned (detected")
    assert record["baseline"]["quality"]["accuracy"] == trained["baseline"]["quality"]["accuracy"]
    assert (record["baseline"]["quality"]["confusion_matrix"]
            == trained["baseline"]["quality"]["confusion_matrix"])  # fmt: skip
    saved = json.loads((users_model / "config.json").read_text())["id2label"]
    assert list(saved.values()) == training["labels"]
