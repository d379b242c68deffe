"""Real MiniLM baselines, trained with the default settings, on data shapes those defaults
were not tuned on: each beats the majority class significantly. The same texts with shuffled
labels make the gate fire, and the report then draws no quality conclusion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compress.pipeline.job import run_job
from tests.compress.tasks import shapes

pytestmark = pytest.mark.slow

# The baseline is what is tested: the compressed side is the model itself, timed briefly.
LIGHT = ["task=classification", "prune_method=none", "prune=0", "quant=fp32",
         "bench.cold_load=false", "bench.repeats=3", "bench.warmup=1", "batch_size=1",
         "keep_artifact=false"]  # fmt: skip
PAIRS = ["task.data.text_column=a", "task.data.text_pair_column=b", "task.data.label_column=topic"]
SHAPES = {
    "tiny": (shapes.tiny, []),  # 300 rows
    "imbalanced": (shapes.imbalanced, []),  # 90/10
    "many_classes": (shapes.many_classes, []),  # 12 classes
    # >= 150 words, median ~460 tokens; a fixed length (half the cost of the data's 512)
    "long_texts": (shapes.long_texts, ["task.max_length=256"]),
    "pairs": (shapes.exchanges, PAIRS),  # a prompt and its answer: their topic
}


@pytest.mark.parametrize("shape", SHAPES)
def test_the_baseline_beats_the_majority_class(compose_config, tmp_path: Path, shape: str):
    build, columns = SHAPES[shape]
    data = shapes.write(build(), tmp_path / f"{shape}.csv")
    record = run_job(compose_config([*LIGHT, f"task.data.files.train={data}", *columns]))
    baseline = record["baseline"]
    gate, training = baseline["gate"], baseline["training"]
    assert baseline["learned"] is True, gate
    assert gate["p_value"] < 0.05 and gate["accuracy"] > gate["majority_share"]
    assert training["stopped"]["reason"] in ("early_stopping", "max_epochs", "max_steps")
    assert training["best"] in training["curve"]
    assert set(record["ratios"]["intervals"]) >= {"accuracy_delta", "latency_p50"}
    if shape == "long_texts":
        assert baseline["data"]["max_length_source"] == "task.max_length"
        assert baseline["data"]["eval_truncated_share"] > 0.5
        assert any("cuts" in note and "of the held-out texts" in note for note in record["notes"])


def test_shuffled_labels_fire_the_gate_and_the_report_draws_no_conclusion(
    tmp_path: Path, sweep_server
):
    data = shapes.write(shapes.shuffled(shapes.tiny()), tmp_path / "shuffled.csv")
    sweep = tmp_path / "sweep"
    command = ["-m", *LIGHT, "quant=fp32,int8", f"task.data.files.train={data}",
               f"hydra.sweep.dir={sweep}"]  # fmt: skip
    env = {**os.environ, "COMPRESS_CACHE_DIR": str(tmp_path / "cache")}
    sweep_server.run(command, env=env, timeout=900, check=True)
    records = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/metrics.json"))]
    assert [r["baseline"]["learned"] for r in records] == [False, False]
    assert all("accuracy_delta" not in r["ratios"]["intervals"] for r in records)
    result = subprocess.run([sys.executable, "-m", "analysis", str(sweep)], capture_output=True,
                            text=True, timeout=300, check=True)  # fmt: skip
    first = result.stdout.splitlines()[0]
    assert first.startswith("No quality conclusion can be drawn: the baseline learned nothing")
    assert "likely cause: " in first and "; to try: " in first
    assert "non-inferior" not in first.replace("or called non-inferior, on quality", "")
