"""Text classification with any number of classes, on any data ``datasets`` reads: the
baseline (the user's own trained head, or a fresh head fine-tuned), evaluation, per-item
outcomes, and the batches that latency is measured on."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import asdict
from functools import cached_property, partial

import numpy as np
import pandas as pd
import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedTokenizerBase,
)

from compress.config.bench import LengthMode
from compress.config.task import ClassificationTaskConfig
from compress.data.heads import HeadChoice, choose_head
from compress.data.labelled import LabelledData, TextSplit, class_order, labelled_data, split_sizes
from compress.data.lengths import (
    choose_max_length,
    position_limit,
    token_lengths,
    truncation_facts,
)
from compress.data.tables import data_identity, load_data
from compress.measure.gate import diagnosis, majority_gate
from compress.measure.latency import interleaved_latency
from compress.measure.quality import classification_quality
from compress.recovery.training import train_until_plateau
from compress.stats.paired import mcnemar_exact
from compress.stats.proportions import paired_proportion_difference
from compress.stats.scores import paired_f1_difference, paired_roc_auc_difference
from compress.tasks.base import Bench, Runners, Speeds, build_task

SIDES = ("baseline", "compressed")


class ClassificationTask:
    def __init__(self, config: ClassificationTaskConfig) -> None:
        self.config = config
        self.labels: list[str] | None = None  # class names in the baseline's id order
        self.max_length: int | None = config.max_length  # from the data when the config has none

    @cached_property
    def loaded(self):
        return load_data(self.config.data)

    @cached_property
    def data(self) -> LabelledData:
        c = self.config
        labels = self.labels or class_order(self.loaded, c.data)
        return labelled_data(self.loaded, c.data, split_sizes(c), labels)

    def key_material(self) -> dict:
        """Everything that changes the fine-tuned baseline: the settings and the data."""
        return asdict(self.config) | {"data_identity": data_identity(self.config.data)}

    def adopt_baseline(self, training: dict) -> None:
        """Use the class order and token length the cached baseline was built with."""
        self.labels = training.get("labels") or self.labels
        self.max_length = training.get("max_length") or self.max_length

    def _fit_length(self, tokenizer: PreTrainedTokenizerBase, model_config: dict) -> dict:
        """Set ``max_length`` (configured, or from the train rows' lengths) and say how many
        held-out texts it cuts."""
        train, held_out = self.data.train, self.data.eval
        lengths = token_lengths(tokenizer, train.texts, train.pairs)
        choice = choose_max_length(
            self.config.max_length, lengths, position_limit(model_config, tokenizer)
        )
        self.max_length = choice.max_length
        cut = truncation_facts(token_lengths(tokenizer, held_out.texts, held_out.pairs),
                               choice.max_length)  # fmt: skip
        return choice.to_dict() | cut

    def _length(self, tokenizer: PreTrainedTokenizerBase) -> int:
        if self.max_length is None:
            self._fit_length(tokenizer, {})
        return self.max_length

    def data_facts(self) -> dict:
        """Rows per split, and train rows per class (in the order of ``training.labels``):
        what the baseline was trained and judged on."""
        data = self.data
        counts = np.bincount(data.train.labels, minlength=len(data.label_names))
        return data.facts | {"classes": len(data.label_names),
                             "train_per_class": counts.tolist()}  # fmt: skip

    def _encode(
        self, tokenizer: PreTrainedTokenizerBase, texts: list[str], pairs: list[str] | None,
        max_length: int, padding: bool | str = True,
    ) -> dict[str, torch.Tensor]:  # fmt: skip
        return dict(tokenizer(texts, pairs, truncation=True, max_length=max_length,
                              padding=padding, return_tensors="pt"))  # fmt: skip

    def batches(
        self,
        tokenizer: PreTrainedTokenizerBase,
        split: TextSplit,
        batch_size: int,
        seed: int | None,
        order: np.ndarray | None = None,
    ):
        """Labelled batches in ``order`` (by default the split's, or seeded shuffled)."""
        if order is None:
            order = np.arange(len(split))
        if seed is not None:
            order = np.random.default_rng(seed).permutation(len(split))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            pairs = [split.pairs[i] for i in rows] if split.pairs else None
            texts = [split.texts[i] for i in rows]
            batch = self._encode(tokenizer, texts, pairs, self._length(tokenizer))
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

    def head(self, model_config: dict, finetuned: bool | None) -> HeadChoice:
        """Whether the model's own head serves these labels (see compress.data.heads)."""
        return choose_head(model_config, class_order(self.loaded, self.config.data), finetuned)

    def _examples(self, tokenizer: PreTrainedTokenizerBase, split: TextSplit) -> list[dict]:
        """Tokenized examples with their labels, unpadded (the trainer pads each batch)."""
        encoded = tokenizer(split.texts, split.pairs, truncation=True,
                            max_length=self._length(tokenizer))  # fmt: skip
        return [
            {key: encoded[key][i] for key in encoded} | {"labels": int(split.labels[i])}
            for i in range(len(split))
        ]

    def train_baseline(
        self, pretrained: str, finetuned: bool | None = None
    ) -> tuple[nn.Module, PreTrainedTokenizerBase, dict]:
        """The model's own trained head as it is, or a fresh head fine-tuned (with the encoder
        under it) on the train split until the validation rows stop improving."""
        model_config = AutoConfig.from_pretrained(pretrained).to_dict()
        choice = self.head(model_config, finetuned)
        self.labels = choice.labels
        tokenizer = AutoTokenizer.from_pretrained(pretrained)
        lengths = self._fit_length(tokenizer, model_config)
        facts = {"head": choice.reason, "labels": choice.labels, "max_length": self.max_length,
                 "data": self.data_facts() | lengths}  # fmt: skip
        if choice.finetuned:
            model = AutoModelForSequenceClassification.from_pretrained(pretrained).eval()
            return model, tokenizer, facts | {"steps": 0, "samples_seen": 0, "seconds": 0.0,
                                              "final_loss": None}  # fmt: skip
        tuning = self.config.finetune
        torch.manual_seed(tuning.seed)
        names = dict(enumerate(choice.labels))
        model = AutoModelForSequenceClassification.from_pretrained(
            pretrained, num_labels=len(names), id2label=names,
            label2id={v: k for k, v in names.items()}, ignore_mismatched_sizes=True,
        )  # fmt: skip
        train = self._examples(tokenizer, self.data.train)
        validation = self._examples(tokenizer, self.data.validation)
        stats = train_until_plateau(model, train, validation, tokenizer, tuning,
                                    self.config.eval_batch_size)  # fmt: skip
        return model, tokenizer, facts | stats

    def baseline_gate(
        self, outputs: dict, training: dict, tokenizer: PreTrainedTokenizerBase
    ) -> dict:
        """Whether the baseline beats the majority-class predictor on the held-out items
        (``compress.measure.gate``); when it does not, why and what to try."""
        data = self.data
        gate = majority_gate(data.eval.labels, np.asarray(outputs["predictions"]))
        gate["majority_class"] = data.label_names[gate["majority_class"]]
        if not gate["learned"]:
            rows = len(data.train) + (len(data.validation) if data.validation else 0)
            gate["reason"], gate["fix"] = diagnosis(training, rows, len(data.label_names))
        return gate

    @torch.inference_mode()
    def predict(self, model: nn.Module, tokenizer: PreTrainedTokenizerBase) -> dict:
        """Predicted class and class probabilities of every held-out item, in order (scored in
        batches of similar lengths, which pad little)."""
        split, probabilities = self.data.eval, []
        pairs = split.pairs or [""] * len(split)
        order = np.argsort([len(t) + len(p) for t, p in zip(split.texts, pairs, strict=True)],
                           kind="stable")  # fmt: skip
        for batch in self.batches(tokenizer, split, self.config.eval_batch_size, None, order):
            batch.pop("labels")
            probabilities.append(torch.softmax(model(**batch).logits.float(), -1))
        scores = torch.cat(probabilities)[torch.as_tensor(np.argsort(order))]
        return {
            "predictions": scores.argmax(-1).tolist(),
            "positive_scores": scores[:, -1].tolist(),
            "scores": scores.tolist(),
        }

    def evaluate(
        self,
        model: nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        reference: dict | None = None,
        baseline_model: nn.Module | None = None,
    ) -> tuple[dict, dict]:
        """Quality on the held-out split, and the raw outputs (the reference for later models);
        the baseline's predictions come from ``reference``, ``baseline_model`` is not run."""
        outputs = self.predict(model, tokenizer)
        quality = classification_quality(
            self.data.eval.labels,
            np.asarray(outputs["predictions"]),
            np.asarray(outputs["scores"]),
            self.data.label_names,
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
        """Paired intervals of every declared metric's difference: accuracy by Tango's score
        interval, F1 and ROC-AUC by a paired bootstrap over items (ROC-AUC only where every
        class is present); McNemar's exact test on the items one model gets right and the
        other wrong, with the share of such items (flips)."""
        labels = items["label"].to_numpy()
        predictions = {side: items[f"{side}_prediction"].to_numpy() for side in SIDES}
        baseline, compressed = (predictions[side] == labels for side in SIDES)
        classes = sum(c.startswith("baseline_score_") for c in items.columns)
        seed = self.config.split_seed
        intervals = {
            "accuracy_delta": paired_proportion_difference(baseline, compressed),
            "f1_delta": paired_f1_difference(labels, *predictions.values(), classes, seed=seed),
        }
        if len(np.unique(labels)) == classes:
            scores = [items[[f"{side}_score_{k}" for k in range(classes)]].to_numpy()
                      for side in SIDES]  # fmt: skip
            intervals["roc_auc_delta"] = paired_roc_auc_difference(labels, *scores, seed=seed)
        tests = {"mcnemar": mcnemar_exact(baseline, compressed)}
        return {key: interval.to_dict() for key, interval in intervals.items()}, tests

    def _speed_batches(self, tokenizer: PreTrainedTokenizerBase, size: int, bench: Bench) -> list:
        """``lengths=fixed``: one batch of held-out texts padded or cut to ``bench.seq_len``;
        ``data``: every run of ``size`` consecutive held-out texts at their own lengths
        (padded to the batch's longest, cut at ``bench.seq_len``), timed in turn."""
        split = self.data.eval
        if bench.lengths == LengthMode.fixed:
            groups = [[i % len(split) for i in range(size)]]
        else:
            groups = [list(range(s, s + size)) for s in range(0, len(split) - size + 1, size)]
            groups = groups or [[i % len(split) for i in range(size)]]
        padding = "max_length" if bench.lengths == LengthMode.fixed else True
        return [
            self._encode(tokenizer, [split.texts[i] for i in rows],
                         [split.pairs[i] for i in rows] if split.pairs else None,
                         bench.seq_len, padding)
            for rows in groups
        ]  # fmt: skip

    def measure_speed(
        self, models: Runners, tokenizer: PreTrainedTokenizerBase, batch_size: int, bench: Bench
    ) -> Speeds:
        """Forward latency on held-out texts: at a fixed length, or at the data's own lengths;
        every model gets the same batch in the same round."""
        batches = self._speed_batches(tokenizer, batch_size, bench)
        runners = {
            name: partial(_call_next, model, itertools.cycle(batches))
            for name, model in models.items()
        }
        with torch.inference_mode():
            timings = interleaved_latency(
                runners, bench.warmup, bench.repeats, batch_size, bench.watts_per_core
            )
        tokens = float(np.mean([b["input_ids"].shape[1] for b in batches]))
        shape = {"batch_size": batch_size, "seq_len": bench.seq_len, "lengths": bench.lengths,
                 "tokens_mean": tokens}  # fmt: skip
        counts = {"warmup": bench.warmup, "repeats": bench.repeats}
        return {name: {**shape, **counts, **stats} for name, stats in timings.items()}


def _call_next(model: nn.Module, batches: Iterator[dict]) -> object:
    return model(**next(batches))


@build_task.register(ClassificationTaskConfig)
def _classification(config: ClassificationTaskConfig) -> ClassificationTask:
    return ClassificationTask(config)
