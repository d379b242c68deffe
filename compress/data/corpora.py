"""Real text for the causal-LM tasks, from installed packages (offline) or the hub.

- Language modelling: :data:`CORPORA` maps a ``task.corpus`` name to a loader returning the
  held-out text (scored) and the calibration text (never scored).
- Generation: :func:`chatterbot_prompts`, every prompt of the chatterbot corpus with all the
  answers the corpus gives it.
"""

from __future__ import annotations

import bz2
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from compress.schema import Corpus


class CorpusError(ValueError):
    """A corpus is unknown or not installed; the message names what to install."""


@dataclass(frozen=True)
class LMText:
    eval: str
    calibration: str


def _package_dir(package: str, distribution: str) -> Path:
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise CorpusError(f"package {package!r} is not installed: pip install {distribution}")
    return Path(next(iter(found.submodule_search_locations)))


@cache
def wikipedia_articles() -> tuple[str, ...]:
    """The articles (>= 50 words) of the English Wikipedia sample in gensim's test data, in
    file order, as plain text (``filter_wiki`` removes the markup)."""
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    data = _package_dir("gensim", "gensim") / "test" / "test_data"
    (dump,) = data.glob("enwiki-latest-pages-articles1.xml-*-shortened.bz2")
    with bz2.open(dump) as stream:
        texts = (filter_wiki(text).strip() for _, text, _ in extract_pages(stream))
        return tuple(text for text in texts if len(text.split()) >= 50)


def _wikipedia() -> LMText:
    """Held out: the second half of the articles; calibration: the first half."""
    articles = wikipedia_articles()
    half = len(articles) // 2
    return LMText(eval="\n\n".join(articles[half:]), calibration="\n\n".join(articles[:half]))


def _wikitext2() -> LMText:
    """WikiText-2 (raw) joined as in the transformers perplexity guide; needs hub access."""
    try:
        from datasets import load_dataset
    except ImportError as error:
        raise CorpusError("task.corpus=wikitext2 needs: pip install datasets") from error

    def split(name: str) -> str:
        return "\n\n".join(load_dataset("wikitext", "wikitext-2-raw-v1", split=name)["text"])

    return LMText(eval=split("test"), calibration=split("train"))


CORPORA: dict[Corpus, Callable[[], LMText]] = {
    Corpus.wikipedia: _wikipedia,
    Corpus.wikitext2: _wikitext2,
}


@cache
def chatterbot_prompts() -> dict[str, tuple[str, ...]]:
    """Each prompt of the English chatterbot corpus (in file order) with every answer given to
    it: in a conversation, each utterance answers the one before."""
    data = _package_dir("chatterbot_corpus", "chatterbot-corpus") / "data" / "english"
    answers: dict[str, list[str]] = {}
    for path in sorted(data.glob("*.yml")):
        for conversation in yaml.safe_load(path.read_text())["conversations"]:
            turns = [str(turn).strip() for turn in conversation]
            for prompt, answer in zip(turns, turns[1:], strict=False):
                if prompt and answer:
                    answers.setdefault(prompt, []).append(answer)
    return {prompt: tuple(found) for prompt, found in answers.items()}
