"""Baseline training with transformers' Trainer: it scores the validation rows every epoch,
stops when they stop improving or at the cap, says which, and keeps the best weights."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from compress.config.training import FinetuneConfig
from compress.recovery.training import train_until_plateau
from tests.conftest import tiny_bert

WORDS = ["good", "bad"]


def _examples(tokenizer, count: int, seed: int) -> list[dict]:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (count,), generator=generator).tolist()
    texts = [f"this was {WORDS[label]} {i}" for i, label in enumerate(labels)]
    encoded = tokenizer(texts)
    return [{k: encoded[k][i] for k in encoded} | {"labels": labels[i]} for i in range(count)]


@pytest.fixture(scope="module")
def tokenizer(tiny_pretrained_dir):
    return AutoTokenizer.from_pretrained(tiny_pretrained_dir)


def _train(tokenizer, **settings) -> tuple[torch.nn.Module, dict]:
    model = tiny_bert()
    config = FinetuneConfig(**({"batch_size": 8, "learning_rate": 1e-3} | settings))
    stats = train_until_plateau(model, _examples(tokenizer, 48, 0), _examples(tokenizer, 16, 1),
                                tokenizer, config, eval_batch_size=16)  # fmt: skip
    return model, stats


def test_training_stops_at_the_cap_and_says_so(tokenizer):
    _, stats = _train(tokenizer, max_epochs=2)
    assert stats["steps"] == 2 * 6 and stats["epochs"] == 2
    assert [point["epoch"] for point in stats["curve"]] == [1, 2]
    assert stats["stopped"]["reason"] == "max_epochs"
    assert stats["stopped"]["detail"].startswith("task.finetune.max_epochs=2 reached")
    assert stats["samples_seen"] == 96 and stats["cpu_seconds"] > 0


def test_early_stopping_keeps_the_best_weights(tokenizer):
    model, stats = _train(tokenizer, max_epochs=40, patience=1, learning_rate=3e-2)
    curve, best = stats["curve"], stats["best"]
    assert stats["stopped"]["reason"] == "early_stopping" and len(curve) < 40
    later = curve[curve.index(best) + 1 :]
    assert len(later) == 1 and later[0]["validation_f1_macro"] <= best["validation_f1_macro"]
    assert stats["steps"] == curve[-1]["step"] and best["step"] < stats["steps"]
    # the weights are the best evaluation's: scoring them again gives its macro-F1
    validation = _examples(tokenizer, 16, 1)
    batch = tokenizer.pad([{k: v for k, v in e.items() if k != "labels"} for e in validation],
                          return_tensors="pt")  # fmt: skip
    with torch.inference_mode():
        predicted = model(**batch).logits.argmax(-1)
    from compress.recovery.training import validation_scores

    labels = torch.tensor([e["labels"] for e in validation])
    scores = validation_scores(torch.nn.functional.one_hot(predicted, 2).numpy(), labels.numpy())
    assert scores["f1_macro"] == pytest.approx(best["validation_f1_macro"])


def test_validation_is_scored_every_eval_every_steps_within_long_epochs(tokenizer):
    _, stats = _train(tokenizer, max_epochs=1, eval_every_steps=4)
    assert [point["step"] for point in stats["curve"]] == [4, 6]  # and at the cap
