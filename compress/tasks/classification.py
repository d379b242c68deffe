"""Sequence classification (the default sentiment task): baseline fine-tuning, evaluation,
and the fixed-length batches that latency is measured on."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import asdict
from functools import cached_property, partial

import numpy as np
import pandas as pd
import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedTokenizerBase

from compress.data.rotten_tomatoes import TextDataset, TextSplit, load_rotten_tomatoes
from compress.measure.latency import interleaved_latency
from compress.measure.quality import classification_quality
from compress.recovery.training import train_steps
from compress.schema import SentimentTaskConfig
from compress.stats.paired import mcnemar_exact, paired_bootstrap
from compress.tasks.base import Bench, Runners, Speeds, build_task


class ClassificationTask:
    def __init__(self, config: SentimentTaskConfig) -> None:
        self.config = config

    @cached_property
    def data(self) -> TextDataset:
        c = self.config
        return load_rotten_tomatoes(c.train_size, c.calibration_size, c.eval_size, c.split_seed)

    def key_material(self) -> dict:
        """Everything that changes the fine-tuned baseline."""
        return asdict(self.config)

    def _encode(
        self, tokenizer: PreTrainedTokenizerBase, texts: list[str], **padding: object
    ) -> dict[str, torch.Tensor]:
        return dict(
            tokenizer(
                texts, truncation=True, max_length=self.config.max_length,
                return_tensors="pt", **({"padding": True} | padding),
            )
        )  # fmt: skip

    def batches(
        self,
        tokenizer: PreTrainedTokenizerBase,
        split: TextSplit,
        batch_size: int,
        seed: int | None,
    ):
        order = np.arange(len(split))
        if seed is not None:
            order = np.random.default_rng(seed).permutation(len(split))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = self._encode(tokenizer, [split.texts[i] for i in rows])
            batch["labels"] = torch.as_tensor(split.labels[rows])
            yield batch

    def calibration_batches(
        self, tokenizer: PreTrainedTokenizerBase, count: int
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Up to ``count`` labelled batches from the calibration split (never the held-out one)."""
        batches = self.batches(tokenizer, self.data.calibration, self.config.eval_batch_size, None)
        return itertools.islice(batches, count)

    def train_batches(
        self, tokenizer: PreTrainedTokenizerBase, batch_size: int, seed: int
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Endless labelled batches from the train split, reshuffled every epoch."""
        train = self.data.train
        epochs = (self.batches(tokenizer, train, batch_size, seed + e) for e in itertools.count())
        return itertools.chain.from_iterable(epochs)

    def train_baseline(self, pretrained: str) -> tuple[nn.Module, PreTrainedTokenizerBase, dict]:
        """Fine-tune a fresh classification head, and the encoder under it, on the train split."""
        tuning = self.config.finetune
        torch.manual_seed(tuning.seed)
        tokenizer = AutoTokenizer.from_pretrained(pretrained)
        model = AutoModelForSequenceClassification.from_pretrained(pretrained, num_labels=2)
        steps = tuning.epochs * -(-len(self.data.train) // tuning.batch_size)
        batches = self.train_batches(tokenizer, tuning.batch_size, tuning.seed)
        stats = train_steps(model, batches, steps, tuning, description="fine-tune baseline")
        return model, tokenizer, stats

    @torch.inference_mode()
    def predict(self, model: nn.Module, tokenizer: PreTrainedTokenizerBase) -> dict:
        """Predicted class and class probabilities of every held-out item, in order."""
        probabilities = []
        for batch in self.batches(tokenizer, self.data.eval, self.config.eval_batch_size, None):
            batch.pop("labels")
            probabilities.append(torch.softmax(model(**batch).logits.float(), -1))
        scores = torch.cat(probabilities)
        return {
            "predictions": scores.argmax(-1).tolist(),
            "positive_scores": scores[:, -1].tolist(),
            "scores": scores.tolist(),
        }

    def evaluate(
        self, model: nn.Module, tokenizer: PreTrainedTokenizerBase, reference: dict | None = None
    ) -> tuple[dict, dict]:
        """Quality on the held-out split, and the raw outputs (the reference for later models)."""
        outputs = self.predict(model, tokenizer)
        quality = classification_quality(
            self.data.eval.labels,
            np.asarray(outputs["predictions"]),
            np.asarray(outputs["positive_scores"]),
            None if reference is None else np.asarray(reference["predictions"]),
        )
        return quality, outputs

    def item_outcomes(self, outputs: dict, reference: dict) -> pd.DataFrame:
        """Per held-out item: its label, and each model's prediction and class scores."""
        items = pd.DataFrame({"item": np.arange(len(self.data.eval)),
                              "label": self.data.eval.labels})  # fmt: skip
        for side, side_outputs in (("baseline", reference), ("compressed", outputs)):
            items[f"{side}_prediction"] = side_outputs["predictions"]
            scores = np.asarray(side_outputs["scores"])
            for k in range(scores.shape[1]):
                items[f"{side}_score_{k}"] = scores[:, k]
        return items

    def paired_quality(self, items: pd.DataFrame) -> tuple[dict, dict]:
        """The accuracy difference with its paired-bootstrap interval, and McNemar's exact
        test on the items one model gets right and the other wrong."""
        baseline = items["baseline_prediction"] == items["label"]
        compressed = items["compressed_prediction"] == items["label"]
        interval = paired_bootstrap(baseline, compressed, seed=self.config.split_seed)
        return {"accuracy_delta": interval.to_dict()}, {
            "mcnemar": mcnemar_exact(baseline, compressed)
        }

    def measure_speed(
        self, models: Runners, tokenizer: PreTrainedTokenizerBase, batch_size: int, bench: Bench
    ) -> Speeds:
        """Forward latency on real held-out snippets padded or cut to ``bench.seq_len``."""
        texts = [self.data.eval.texts[i % len(self.data.eval)] for i in range(batch_size)]
        inputs = dict(
            tokenizer(
                texts, truncation=True, max_length=bench.seq_len, padding="max_length",
                return_tensors="pt",
            )
        )  # fmt: skip
        runners = {name: partial(model, **inputs) for name, model in models.items()}
        with torch.inference_mode():
            timings = interleaved_latency(
                runners, bench.warmup, bench.repeats, batch_size, bench.watts_per_core
            )
        shape = {"batch_size": batch_size, "seq_len": bench.seq_len}
        counts = {"warmup": bench.warmup, "repeats": bench.repeats}
        return {name: {**shape, **counts, **stats} for name, stats in timings.items()}


@build_task.register(SentimentTaskConfig)
def _sentiment(config: SentimentTaskConfig) -> ClassificationTask:
    return ClassificationTask(config)
