"""Language modelling (``task=lm``): token-level perplexity of a causal LM on a fixed held-out
slice of real text, with strided sliding windows; decoding speed as for every causal task."""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
import pandas as pd
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from compress.config.task import LanguageModelingTaskConfig
from compress.data.texts import LMText, lm_text
from compress.measure.gate import unigram_gate
from compress.measure.perplexity import perplexity
from compress.stats.blocks import block_ratio_interval, paired_block_interval
from compress.stats.paired import Interval
from compress.tasks.base import build_task
from compress.tasks.causal_lm import CausalLMTask, token_ids


class LanguageModelingTask(CausalLMTask):
    def __init__(self, config: LanguageModelingTaskConfig) -> None:
        self.config = config

    @cached_property
    def text(self) -> LMText:
        return lm_text(self.config.data)

    def calibration_text(self) -> str:
        return self.text.calibration

    def eval_ids(self, tokenizer: PreTrainedTokenizerBase) -> torch.Tensor:
        """The fixed held-out slice: the first ``eval_tokens`` tokens of the held-out text."""
        return token_ids(tokenizer, self.text.eval, self.config.eval_tokens)

    def speed_inputs(
        self, tokenizer: PreTrainedTokenizerBase, batch_size: int, seq_len: int
    ) -> dict[str, torch.Tensor]:
        """``batch_size`` consecutive ``seq_len``-token passages of the held-out text."""
        ids = token_ids(tokenizer, self.text.eval, batch_size * seq_len)
        rows = ids.repeat(-(-batch_size * seq_len // len(ids)))[: batch_size * seq_len]
        input_ids = rows.view(batch_size, seq_len)
        return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}

    def evaluate(
        self,
        model: nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        reference: dict | None = None,
        baseline_model: nn.Module | None = None,
    ) -> tuple[dict, dict]:
        """Perplexity (lower is better) and mean NLL per token; against a reference model's
        outputs, also the ratio of perplexities and the difference of NLLs. With the
        ``baseline_model`` itself, which runs on the same windows, the token-level fidelity to
        it: KL divergence of the next-token distributions (mean, median, p99), top-1 agreement
        and the change of the reference token's probability."""
        c = self.config
        quality = perplexity(model, self.eval_ids(tokenizer), c.window, c.stride, baseline_model)
        quality["corpus"] = c.data.files.train or c.data.name
        outputs = {key: quality.pop(key) for key in list(quality) if key.startswith("window_")}
        outputs |= {"perplexity": quality["perplexity"], "nll": quality["nll"]}
        if reference is not None:
            quality["perplexity_vs_baseline"] = quality["perplexity"] / reference["perplexity"]
            quality["nll_delta"] = quality["nll"] - reference["nll"]
        return quality, outputs

    def baseline_gate(
        self, outputs: dict, training: dict, tokenizer: PreTrainedTokenizerBase
    ) -> dict:
        """Whether the model predicts the held-out text better than token frequencies alone
        (``compress.measure.gate.unigram_gate``, the frequencies counted on the calibration
        text)."""
        c = self.config
        calibration = token_ids(tokenizer, self.calibration_text(), 0).numpy()
        held_out = self.eval_ids(tokenizer).numpy()
        return unigram_gate(outputs["window_nll"], calibration, held_out, len(tokenizer),
                            c.window, c.stride)  # fmt: skip

    def item_outcomes(self, outputs: dict, reference: dict) -> pd.DataFrame:
        """Per scored window: its token count and each model's summed NLL; where the
        compressed model was compared with the baseline token by token, the window's summed
        KL divergence, count of top-1 agreements and summed change of the reference token's
        probability."""
        items = pd.DataFrame({
            "item": np.arange(len(outputs["window_nll"])),
            "tokens": outputs["window_tokens"],
            "baseline_nll": reference["window_nll"],
            "compressed_nll": outputs["window_nll"],
        })  # fmt: skip
        for column, key in _FIDELITY_COLUMNS.items():
            if key in outputs:
                items[column] = outputs[key]
        return items

    def paired_quality(self, items: pd.DataFrame) -> tuple[dict, dict]:
        """The perplexity ratio with its interval over non-overlapping blocks of consecutive
        windows (``task.block_tokens`` scored tokens each): exp() of the interval of the
        NLL-per-token difference. Neighbouring windows share context, so blocks, not windows,
        are the independent units; the interval's ``n`` counts them. The token-level fidelity
        figures (mean KL, top-1 agreement, mean change of the reference token's probability)
        get intervals over the same blocks."""
        block_tokens = self.config.block_tokens
        nll = paired_block_interval(
            items["baseline_nll"], items["compressed_nll"], items["tokens"], block_tokens
        )
        ratio = Interval(math.exp(nll.estimate), math.exp(nll.low), math.exp(nll.high), nll.n,
                         f"exp() of the {nll.method}", nll.confidence)  # fmt: skip
        intervals = {"perplexity": ratio.to_dict(), "nll_delta": nll.to_dict()}
        for column, (key, what) in _FIDELITY_INTERVALS.items():
            if column in items:
                interval = block_ratio_interval(items[column], items["tokens"], block_tokens, what)
                intervals[key] = interval.to_dict()
        return intervals, {}


# Items-table column -> the per-window sums ``evaluate`` returns in its outputs.
_FIDELITY_COLUMNS = {
    "kl": "window_kl",
    "top1_agree": "window_top1",
    "prob_delta": "window_prob_delta",
}
# Items-table column -> the record key of its interval, and what the interval is of.
_FIDELITY_INTERVALS = {
    "kl": ("kl_divergence", "KL(baseline || compressed) of the next-token distribution, nats"),
    "top1_agree": ("top1_agreement", "agreement of the most likely next token (0/1)"),
    "prob_delta": (
        "ref_prob_delta",
        "change of the reference token's probability, compressed - baseline",
    ),
}


@build_task.register(LanguageModelingTaskConfig)
def _language_modeling(config: LanguageModelingTaskConfig) -> LanguageModelingTask:
    return LanguageModelingTask(config)
