"""Generation (``task=generation``): answers to chatterbot prompts, greedy and sampled, scored
by BLEU and ROUGE against the corpus's answers and against the baseline model's own answers
(fidelity of the compressed model); decoding speed as for every causal task."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from compress.config.task import GenerationTaskConfig
from compress.data.texts import prompts_with_references
from compress.measure.text_quality import fidelity, sentence_scores, text_quality
from compress.stats.paired import paired_bootstrap
from compress.stats.proportions import wilson_interval
from compress.tasks.base import build_task
from compress.tasks.causal_lm import CausalLMTask

Prompt = tuple[str, tuple[str, ...]]  # a prompt and every answer the corpus gives it


def format_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str) -> str:
    """The prompt as the model expects a user turn: its chat template, or the bare line."""
    if tokenizer.chat_template:
        turn = [{"role": "user", "content": prompt}]
        return tokenizer.apply_chat_template(turn, add_generation_prompt=True, tokenize=False)
    return f"{prompt}\n"


def _prefixed(prefix: str, values: dict) -> dict:
    return {f"{prefix}{key}": value for key, value in values.items()}


class GenerationTask(CausalLMTask):
    def __init__(self, config: GenerationTaskConfig) -> None:
        self.config = config

    @cached_property
    def split(self) -> tuple[list[Prompt], list[Prompt]]:
        """A seeded permutation of the distinct prompts: the first ``num_prompts`` are held
        out, the rest calibrate."""
        prompts = list(prompts_with_references(self.config.data).items())
        if self.config.num_prompts >= len(prompts):
            raise ValueError(
                f"task.num_prompts={self.config.num_prompts} leaves no calibration prompts "
                f"out of {len(prompts)}"
            )
        order = np.random.default_rng(self.config.split_seed).permutation(len(prompts))
        held_out = [prompts[i] for i in order[: self.config.num_prompts]]
        return held_out, [prompts[i] for i in order[self.config.num_prompts :]]

    def calibration_text(self) -> str:
        return "\n\n".join(f"{prompt}\n{answers[0]}" for prompt, answers in self.split[1])

    def _encode(self, tokenizer: PreTrainedTokenizerBase, prompts: list[str]) -> dict:
        texts = [format_prompt(tokenizer, prompt) for prompt in prompts]
        encoded = tokenizer(texts, padding=True, padding_side="left", add_special_tokens=False,
                            return_token_type_ids=False, return_tensors="pt")  # fmt: skip
        return dict(encoded)

    def speed_inputs(
        self, tokenizer: PreTrainedTokenizerBase, batch_size: int, seq_len: int
    ) -> dict[str, torch.Tensor]:
        """The first ``batch_size`` held-out prompts (repeated if needed), left-padded; the
        prompts set their own length, ``seq_len`` is not used."""
        held_out = self.split[0]
        return self._encode(tokenizer, [held_out[i % len(held_out)][0] for i in range(batch_size)])

    @torch.inference_mode()
    def answers(
        self, model: nn.Module, tokenizer: PreTrainedTokenizerBase, sample: bool
    ) -> tuple[list[str], list[int]]:
        """Each held-out prompt's answer, and its length in tokens; sampling is seeded per
        batch, so the answers do not depend on what ran before."""
        c = self.config
        prompts = [prompt for prompt, _ in self.split[0]]
        sampling = {"do_sample": True, "temperature": c.temperature, "top_p": c.top_p}
        texts, lengths = [], []
        for index, start in enumerate(range(0, len(prompts), c.eval_batch_size)):
            inputs = self._encode(tokenizer, prompts[start : start + c.eval_batch_size])
            torch.manual_seed(c.sample_seed + index)
            output = model.generate(**inputs, max_new_tokens=c.max_new_tokens,
                                    pad_token_id=tokenizer.pad_token_id,
                                    **(sampling if sample else {"do_sample": False}))  # fmt: skip
            new = output[:, inputs["input_ids"].shape[1] :]
            texts += [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
            lengths += (new != tokenizer.pad_token_id).sum(1).tolist()
        return texts, lengths

    def evaluate(
        self,
        model: nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        reference: dict | None = None,
        baseline_model: nn.Module | None = None,
    ) -> tuple[dict, dict]:
        """BLEU (0-100) and ROUGE-1/2/L (0-1) of the greedy answers, the same with ``sampled_``
        for the sampled ones; against a reference model's outputs also ``*_vs_baseline`` and
        ``answers_changed``, the share of prompts whose greedy answer is not the baseline's
        (the baseline's answers are cached: ``baseline_model`` is not run)."""
        references = [answers for _, answers in self.split[0]]
        greedy, greedy_lengths = self.answers(model, tokenizer, sample=False)
        sampled, _ = self.answers(model, tokenizer, sample=True)
        quality = {
            "n": len(greedy),
            "mean_answer_tokens": float(np.mean(greedy_lengths)),
            **text_quality(greedy, references),
            **_prefixed("sampled_", text_quality(sampled, references)),
        }
        if reference is not None:
            quality |= fidelity(greedy, reference["greedy"])
            quality["answers_changed"] = 1 - quality["exact_match_vs_baseline"]
            quality |= _prefixed("sampled_", fidelity(sampled, reference["sampled"]))
        return quality, {"greedy": greedy, "sampled": sampled}

    def item_outcomes(self, outputs: dict, reference: dict) -> pd.DataFrame:
        """Per held-out prompt: each model's greedy answer scored against the corpus's answers
        (sentence BLEU, ROUGE-L), and whether the compressed answer is the baseline's."""
        references = [answers for _, answers in self.split[0]]
        items = pd.DataFrame({"item": np.arange(len(references))})
        for side, side_outputs in (("baseline", reference), ("compressed", outputs)):
            for metric, values in sentence_scores(side_outputs["greedy"], references).items():
                items[f"{side}_{metric}"] = values
        matches = zip(outputs["greedy"], reference["greedy"], strict=True)
        items["exact_match"] = [a == b for a, b in matches]
        return items

    def paired_quality(self, items: pd.DataFrame) -> tuple[dict, dict]:
        """Differences of mean sentence-BLEU and ROUGE-L with paired-bootstrap intervals over
        prompts, each method naming its metric (corpus BLEU, in ``ratios.bleu_delta``, has no
        per-prompt form: the interval, and any test on it, is of sentence-BLEU); the share of
        prompts whose greedy answer changed, with Wilson's score interval (prompts are
        independent)."""
        seed = self.config.split_seed
        names = {"bleu": ("sentence_bleu_delta", "sentence-BLEU"),
                 "rougeL": ("rougeL_delta", "ROUGE-L")}  # fmt: skip
        intervals = {}
        for metric, (key, name) in names.items():
            interval = paired_bootstrap(
                items[f"baseline_{metric}"], items[f"compressed_{metric}"], seed=seed
            )
            intervals[key] = interval.to_dict() | {"method": f"{name}: {interval.method}"}
        changed = int((~items["exact_match"].astype(bool)).sum())
        intervals["answers_changed"] = wilson_interval(changed, len(items)).to_dict()
        return intervals, {}


@build_task.register(GenerationTaskConfig)
def _generation(config: GenerationTaskConfig) -> GenerationTask:
    return GenerationTask(config)
