"""llama.cpp (through ``llama-cpp-python``) as a peer in ``lm_decode.py``: the same token ids,
the same strided perplexity windows and greedy decoding timed like ``generate``.

The GGUF file is read as it is (its 4-bit blocks run on ggml's own kernels), with the
tokens our tokenizer made: both use the vocabulary the GGUF file carries.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from llama_cpp import Llama

from compress.measure.decoding import Generation
from compress.measure.perplexity import strided_windows


def _nll(logits: np.ndarray, targets: np.ndarray) -> float:
    """Summed negative log-likelihood of ``targets`` under the rows of ``logits``."""
    scores = torch.from_numpy(logits).float()
    return float(torch.nn.functional.cross_entropy(scores, torch.from_numpy(targets).long(),
                                                   reduction="sum"))  # fmt: skip


class LlamaCppModel:
    """One context that scores every position (perplexity) and one that keeps the last
    position's logits only (decoding), as llama.cpp's own tools use them."""

    def __init__(self, gguf: Path, threads: int, context: int = 1024) -> None:
        common = {"model_path": str(gguf), "n_threads": threads, "n_threads_batch": threads,
                  "n_batch": 512, "verbose": False}  # fmt: skip
        self.decoder = Llama(n_ctx=context, **common)
        self.scorer = Llama(n_ctx=context, logits_all=True, **common)

    def close(self) -> None:
        """Free both contexts now (left to interpreter exit, llama-cpp-python's finalizer
        fails once its library is unloaded)."""
        self.decoder.close()
        self.scorer.close()

    def perplexity(self, input_ids: torch.Tensor, window: int, stride: int) -> dict:
        ids = input_ids.tolist()
        total, tokens = 0.0, 0
        for w in strided_windows(len(ids), window, stride):
            self.scorer.reset()
            self.scorer.eval(ids[w.begin : w.end])
            logits = self.scorer.scores[: w.end - w.begin]
            start = w.first_target - w.begin
            total += _nll(logits[start - 1 : -1], np.array(ids[w.first_target : w.end]))
            tokens += w.end - w.first_target
        return {"perplexity": math.exp(total / tokens), "tokens": tokens}

    def timed_generate(self, prompt: torch.Tensor, new_tokens: int) -> Generation:
        """Greedy decoding of ``new_tokens`` after ``prompt`` (1-D ids), end of sequence not
        stopping it: each token's time is from the previous token's to its own."""
        self.decoder.reset()  # no prefix of an earlier run reused: the prompt is evaluated
        stamps = []
        start = time.perf_counter_ns()
        for _ in self.decoder.generate(prompt.tolist(), temp=0.0, top_k=1, reset=False):
            stamps.append(time.perf_counter_ns())
            if len(stamps) == new_tokens:
                break
        end = time.perf_counter_ns()
        token_ms = [(b - a) / 1e6 for a, b in zip(stamps, stamps[1:], strict=False)]
        return Generation((stamps[0] - start) / 1e6, (end - start) / 1e6, token_ms)
