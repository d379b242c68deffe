"""Small real datasets written into temporary files, the way a user brings their own: a
binary CSV (Rotten Tomatoes snippets), a 4-class JSONL (chatterbot topics), a text-pair
parquet (two snippets: same sentiment or not), a text file and a prompt/answer CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from compress.data.shipped import shipped_dataset

DATA_JOB = [
    "task=classification", "task.train_size=48", "task.eval_size=40",
    "task.calibration_size=8", "task.finetune.batch_size=16", "task.finetune.max_epochs=2",
    "bench.warmup=1", "bench.repeats=3", "bench.seq_len=16", "batch_size=2",
    "bench.cold_load=false",
]  # fmt: skip


def _snippets(count: int) -> pd.DataFrame:
    frame = shipped_dataset("rotten_tomatoes").to_pandas().head(count)
    frame["label"] = frame["label"].map({0: "rotten", 1: "fresh"})
    return frame


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("user-data")
    snippets = _snippets(200)
    snippets.rename(columns={"text": "review", "label": "verdict"}).to_csv(
        folder / "reviews.csv", index=False
    )
    topics = shipped_dataset("chatterbot_topics").to_pandas()
    names = shipped_dataset("chatterbot_topics").features["label"].names
    topics["topic"] = topics["label"].map(dict(enumerate(names)))
    four = topics[topics["topic"].isin(["ai", "coding", "emotion", "trivia"])]
    four.groupby("topic").head(40)[["text", "topic"]].to_json(
        folder / "topics.jsonl", orient="records", lines=True
    )
    first, second = snippets.iloc[:100].reset_index(), snippets.iloc[100:].reset_index()
    pairs = pd.DataFrame({"a": first["text"], "b": second["text"],
                          "same": (first["label"] == second["label"]).map(str)})  # fmt: skip
    pairs.to_parquet(folder / "pairs.parquet")
    (folder / "corpus.txt").write_text("\n".join(snippets["text"].head(60)))
    qa = pd.DataFrame({"question": [f"{t}?" for t in snippets["text"].head(12)],
                       "answer": snippets["text"].iloc[12:24].tolist()})  # fmt: skip
    qa.to_csv(folder / "qa.csv", index=False)
    return folder
