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
from compress.stats.blocks import paired_block_interval
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
        self, model: nn.Module, tokenizer: PreTrainedTokenizerBase, reference: dict | None = None
    ) -> tuple[dict, dict]:
        """Perplexity (lower is better) and mean NLL per token; against a reference model's
        outputs, also the ratio of perplexities and the difference of NLLs."""
        c = self.config
        quality = perplexity(model, self.eval_ids(tokenizer), c.window, c.stride)
        quality["corpus"] = c.data.files.train or c.data.name
        outputs = {"perplexity": quality["perplexity"], "nll": quality["nll"],
                   "window_nll": quality.pop("window_nll"),
                   "window_tokens": quality.pop("window_tokens")}  # fmt: skip
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
        """Per scored window: its token count and each model's summed NLL."""
        return pd.DataFrame({
            "item": np.arange(len(outputs["window_nll"])),
            "tokens": outputs["window_tokens"],
            "baseline_nll": reference["window_nll"],
            "compressed_nll": outputs["window_nll"],
        })  # fmt: skip

    def paired_quality(self, items: pd.DataFrame) -> tuple[dict, dict]:
        """The perplexity ratio with its interval over non-overlapping blocks of consecutive
        windows (``task.block_tokens`` scored tokens each): exp() of the interval of the
        NLL-per-token difference. Neighbouring windows share context, so blocks, not windows,
        are the independent units; the interval's ``n`` counts them."""
        nll = paired_block_interval(
            items["baseline_nll"], items["compressed_nll"], items["tokens"],
            self.config.block_tokens,
        )  # fmt: skip
        ratio = Interval(math.exp(nll.estimate), math.exp(nll.low), math.exp(nll.high), nll.n,
                         f"exp() of the {nll.method}", nll.confidence)  # fmt: skip
        return {"perplexity": ratio.to_dict(), "nll_delta": nll.to_dict()}, {}


@build_task.register(LanguageModelingTaskConfig)
def _language_modeling(config: LanguageModelingTaskConfig) -> LanguageModelingTask:
    return LanguageModelingTask(config)
