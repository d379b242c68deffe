"""Real ``-m`` sweeps on the user's files in each format (small sizes, the tiny BERT: what a
real model learns from such files is tested in ``tests/compress/tasks/test_data_shapes.py``):
records ok, confusion matrices of the data's classes, metrics in range."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.fixtures.sweep_server import SweepServer

pytestmark = pytest.mark.slow

SMALL = ["task=classification", "task.train_size=64", "task.eval_size=40",
         "task.calibration_size=8", "bench.warmup=1", "bench.repeats=5", "bench.seq_len=32",
         "bench.cold_load=false", "keep_artifact=false", "prune=0"]  # fmt: skip


def _sweep(server: SweepServer, sweep_dir: Path, cache: Path, *arguments: str) -> list[dict]:
    env = {**os.environ, "COMPRESS_CACHE_DIR": str(cache)}
    server.run(["-m", *SMALL, *arguments, f"hydra.sweep.dir={sweep_dir}"], env=env,
               timeout=900, check=True)  # fmt: skip
    return [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/metrics.json"))]


@pytest.mark.parametrize(
    ("file", "columns", "classes"),
    [
        ("reviews.csv", ["task.data.text_column=review", "task.data.label_column=verdict"], 2),
        ("topics.jsonl", ["task.data.label_column=topic"], 4),
        ("pairs.parquet", ["task.data.text_column=a", "task.data.text_pair_column=b",
                           "task.data.label_column=same"], 2),
    ],
)  # fmt: skip
def test_sweep_on_a_users_file(
    data_dir, tiny_pretrained_dir, tmp_path, file, columns, classes, sweep_server
):
    data = f"task.data.files.train={data_dir / file}"
    records = _sweep(sweep_server, tmp_path / "sweep", tmp_path / "cache", data, *columns,
                     "quant=fp32,int8", f"model.name_or_path={tiny_pretrained_dir}")  # fmt: skip
    assert [r["status"] for r in records] == ["ok", "ok"]
    for record in records:
        quality = record["compressed"]["quality"]
        assert (
            len(quality["confusion_matrix"])
            == classes
            == len(record["baseline"]["training"]["labels"])
        )
        assert sum(map(sum, quality["confusion_matrix"])) == quality["n"] == 40
        for key in ("accuracy", "f1", "agreement"):
            assert 0 <= quality[key] <= 1
        assert record["baseline"]["training"]["steps"] > 0
    fp32, int8 = records if records[0]["factors"]["quant"] == "fp32" else records[::-1]
    assert fp32["compressed"]["quality"]["agreement"] == 1.0
    assert int8["compressed"]["size"]["disk_bytes"] < fp32["compressed"]["size"]["disk_bytes"]
