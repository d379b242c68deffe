"""What the causal-LM tasks share: the pretrained model as baseline, calibration batches cut
from text that is never scored, and decoding speed and memory (see
:mod:`compress.measure.decoding`)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import asdict
from functools import partial

import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from compress.config.bench import BenchConfig
from compress.config.task import CausalLMTaskConfig, Decoding
from compress.data.tables import data_identity
from compress.measure.decoding import (
    DraftCounter,
    acceptance_rate,
    generation_memory,
    generation_stats,
    interleaved_generations,
    timed_generate,
)
from compress.models.sources import source_note
from compress.tasks.base import Bench, Runners, Speeds

Inputs = dict[str, torch.Tensor]

# Settings that change how a model is timed, calibrated or compared, never the baseline or its
# quality.
_NOT_BASELINE = (
    "decoding",
    "speed_new_tokens",
    "memory_batch_sizes",
    "calibration_length",
    "calibration_batch_size",
    "block_tokens",
)
_NO_TRAINING = {
    "steps": 0,
    "samples_seen": 0,
    "seconds": 0.0,
    "final_loss": None,
    "note": "pretrained model, not fine-tuned",
}
# Characters of text to tokenize per token wanted: generous, English averages about 4.
_CHARS_PER_TOKEN = 8


def load_causal_lm(pretrained: str) -> tuple[nn.Module, PreTrainedTokenizerBase]:
    """The model in float32, and its tokenizer with a padding token (GPT-2 has none: its end
    of sequence pads)."""
    model = AutoModelForCausalLM.from_pretrained(pretrained, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(pretrained)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def token_ids(tokenizer: PreTrainedTokenizerBase, text: str, count: int) -> torch.Tensor:
    """The first ``count`` tokens of ``text`` (all of them for ``count=0``), no special tokens."""
    head = text[: count * _CHARS_PER_TOKEN] if count else text
    ids = tokenizer(head, add_special_tokens=False)["input_ids"]
    if count and len(ids) < count and len(head) < len(text):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return torch.tensor(ids[:count] if count else ids, dtype=torch.long)


class CausalLMTask:
    """Subclasses provide ``config``, ``calibration_text()`` and
    ``speed_inputs(tokenizer, batch_size, seq_len)`` (prompts to time generation on)."""

    config: CausalLMTaskConfig
    calibration_text: Callable[[], str]
    speed_inputs: Callable[[PreTrainedTokenizerBase, int, int], Inputs]

    def key_material(self) -> dict:
        """Everything that changes the baseline's cached quality and outputs."""
        settings = {k: v for k, v in asdict(self.config).items() if k not in _NOT_BASELINE}
        return settings | {"data_identity": data_identity(self.config.data)}

    def train_baseline(
        self, pretrained: str, finetuned: bool | None = None
    ) -> tuple[nn.Module, PreTrainedTokenizerBase, dict]:
        """No training: the baseline of a causal-LM task is the pretrained model itself."""
        model, tokenizer = load_causal_lm(pretrained)
        weights_note = source_note(pretrained)
        return (
            model,
            tokenizer,
            _NO_TRAINING | ({"weights_note": weights_note} if weights_note else {}),
        )

    def adopt_baseline(self, training: dict) -> None:
        """Nothing to take: the pretrained model has no task head."""

    def baseline_gate(
        self, outputs: dict, training: dict, tokenizer: PreTrainedTokenizerBase
    ) -> dict:
        """Not tested (``learned: null``) for generation: free-form answers have no reference
        predictor whose beating would show the model learned the task (``task=lm`` has one);
        compressed models are compared with the baseline's own answers."""
        reason = f"task={self.config.name} has no reference predictor to beat"
        return {"learned": None, "test": None, "reason": reason}

    def calibration_batches(
        self, tokenizer: PreTrainedTokenizerBase, count: int
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Up to ``count`` batches of consecutive ``calibration_length``-token rows of the
        calibration text, with ``labels`` (the model's own next-token loss)."""
        c = self.config
        rows_needed = count * c.calibration_batch_size
        ids = token_ids(tokenizer, self.calibration_text(), rows_needed * c.calibration_length)
        rows = ids[: len(ids) // c.calibration_length * c.calibration_length]
        rows = rows.view(-1, c.calibration_length)
        for start in range(0, min(len(rows), rows_needed), c.calibration_batch_size):
            batch = rows[start : start + c.calibration_batch_size]
            yield {"input_ids": batch, "attention_mask": torch.ones_like(batch), "labels": batch}

    def train_batches(
        self, tokenizer: PreTrainedTokenizerBase, batch_size: int, seed: int
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Endless batches of ``calibration_length``-token rows of the calibration text (the
        held-out text is never trained on), reshuffled every epoch: recovery training."""
        length = self.config.calibration_length
        ids = token_ids(tokenizer, self.calibration_text(), 0)
        rows = ids[: len(ids) // length * length].view(-1, length)
        for epoch in itertools.count():
            order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed + epoch))
            for start in range(0, len(order) - batch_size + 1, batch_size):
                batch = rows[order[start : start + batch_size]]
                yield {
                    "input_ids": batch,
                    "attention_mask": torch.ones_like(batch),
                    "labels": batch,
                }

    def _generate_kwargs(self, tokenizer: PreTrainedTokenizerBase) -> dict:
        return {"pad_token_id": tokenizer.pad_token_id}

    def measure_speed(
        self, models: Runners, tokenizer: PreTrainedTokenizerBase, batch_size: int, bench: Bench
    ) -> Speeds:
        """Decoding speed of each model (``decoding=standard``), or of the baseline alone and
        with the compressed model drafting for it (``speculative``); then peak memory."""
        speeds = _DECODINGS[self.config.decoding](self, models, tokenizer, batch_size, bench)
        for name, model in models.items():
            speeds[name]["memory_by_batch_size"] = {
                str(size): generation_memory(
                    model,
                    self.speed_inputs(tokenizer, size, bench.seq_len),
                    self.config.speed_new_tokens,
                    **self._generate_kwargs(tokenizer),
                )
                for size in self.config.memory_batch_sizes
            }
        return speeds

    def _shape(self, inputs: Inputs, bench: BenchConfig) -> dict:
        batch_size, prompt_tokens = inputs["input_ids"].shape
        return {
            "batch_size": batch_size,
            "prompt_tokens": prompt_tokens,
            "new_tokens": self.config.speed_new_tokens,
            "decoding": self.config.decoding,
            "warmup": bench.warmup,
            "repeats": bench.repeats,
        }

    def _standard(self, models, tokenizer, batch_size: int, bench: BenchConfig) -> dict:
        inputs = self.speed_inputs(tokenizer, batch_size, bench.seq_len)
        new_tokens = self.config.speed_new_tokens
        kwargs = self._generate_kwargs(tokenizer)
        runners = {
            name: partial(timed_generate, model, inputs, new_tokens, **kwargs)
            for name, model in models.items()
        }
        runs = interleaved_generations(runners, bench.warmup, bench.repeats)
        shape = self._shape(inputs, bench)
        return {
            name: {**shape, **generation_stats(r, shape["batch_size"], new_tokens)}
            for name, r in runs.items()
        }

    def _speculative(self, models, tokenizer, batch_size: int, bench: BenchConfig) -> dict:
        """The baseline generates alone, and with the compressed model as its assistant
        (assisted generation accepts batch size 1 only, whatever the job's batch size); the
        ``compressed`` entry times that pair, whose output is the baseline's own greedy output.
        Drafting follows transformers' defaults: up to 20 tokens per step, stopped early when
        the draft's confidence falls below a threshold (0.4 at first, then tuned as it goes)."""
        inputs = self.speed_inputs(tokenizer, 1, bench.seq_len)
        target, draft = models["baseline"], models["compressed"]
        new_tokens = self.config.speed_new_tokens
        kwargs = self._generate_kwargs(tokenizer)
        runners = {
            "baseline": partial(timed_generate, target, inputs, new_tokens, **kwargs),
            "compressed": partial(
                timed_generate, target, inputs, new_tokens, assistant_model=draft, **kwargs
            ),
        }
        interleaved_generations(runners, bench.warmup, 0)
        counter = DraftCounter(draft)  # counts the timed rounds only
        try:
            runs = interleaved_generations(runners, 0, bench.repeats)
        finally:
            counter.remove()
        shape = self._shape(inputs, bench)
        speeds = {name: {**shape, **generation_stats(r, 1, new_tokens)} for name, r in runs.items()}
        speeds["compressed"].update(
            acceptance_rate=acceptance_rate(runs["compressed"], counter.drafted),
            drafted_tokens=counter.drafted,
        )
        return speeds


_DECODINGS = {
    Decoding.standard: CausalLMTask._standard,
    Decoding.speculative: CausalLMTask._speculative,
}
