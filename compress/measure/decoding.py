"""Decoding speed of causal LMs through ``generate`` (greedy, KV cache): time to first token,
per-token decode latency, tokens per second, and the peak memory generation adds at several
batch sizes.

Every chunk of tokens ``generate`` hands to its streamer is timestamped: the first chunk
after the prompt marks the first token (prefill), each later chunk one decode step. Assisted
(speculative) generation hands over several tokens per step; each counts as one chunk's time
divided by its size. Models are interleaved round by round, as for the other tasks.
"""

from __future__ import annotations

import ctypes
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers.generation.streamers import BaseStreamer

from compress.measure.latency import latency_stats

Inputs = dict[str, torch.Tensor]


class _Clock(BaseStreamer):
    """Receives the prompt, then each chunk of new tokens; keeps the time and size of each."""

    def __init__(self) -> None:
        self.times_ns: list[int] = []
        self.sizes: list[int] = []

    def put(self, value: torch.Tensor) -> None:
        self.times_ns.append(time.perf_counter_ns())
        self.sizes.append(value.shape[-1] if value.dim() == 2 else 1)

    def end(self) -> None:
        pass


@dataclass
class Generation:
    """One timed ``generate`` call."""

    ttft_ms: float
    total_ms: float
    token_ms: list[float]
    chunk_sizes: list[int] = field(default_factory=list)


def timed_generate(model: nn.Module, inputs: Inputs, new_tokens: int, **kwargs) -> Generation:
    """Generate exactly ``new_tokens`` tokens greedily (end of sequence suppressed)."""
    clock = _Clock()
    start = time.perf_counter_ns()
    with torch.inference_mode():
        model.generate(
            **inputs,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            streamer=clock,
            **kwargs,
        )
    end = time.perf_counter_ns()
    times, sizes = clock.times_ns[1:], clock.sizes[1:]  # the first put is the prompt
    token_ms = [
        (later - earlier) / 1e6 / size
        for earlier, later, size in zip(times, times[1:], sizes[1:], strict=False)
        for _ in range(size)
    ]
    return Generation((times[0] - start) / 1e6, (end - start) / 1e6, token_ms, sizes)


def generation_stats(runs: list[Generation], batch_size: int, new_tokens: int) -> dict:
    """``p50_ms``/``mean_ms``/``throughput_sps`` (and their ``decode_*`` names) describe one
    decode step: the latency of a token after the first, and tokens per second per step for
    the whole batch; ``tokens_per_s`` counts every generated token over the whole call.

    ``samples_ms`` holds one value per timed ``generate`` call, its median token time: only
    calls are independent of each other (the tokens of one call share its cache, its state of
    the machine and its prompt), so calls are what intervals resample and pair across models.
    ``decode_ms_p90`` is the 90th percentile of every token's time, a description of the tail
    only."""
    per_call = [float(np.median(run.token_ms)) for run in runs]
    decode = latency_stats(per_call, batch_size)
    ttft = np.asarray([run.ttft_ms for run in runs])
    total = np.median([run.total_ms for run in runs])
    return {
        **decode,
        "decode_ms_p50": decode["p50_ms"],
        "decode_ms_p90": float(np.percentile([ms for run in runs for ms in run.token_ms], 90)),
        "ttft_ms": float(np.median(ttft)),
        "ttft_ms_p90": float(np.percentile(ttft, 90)),
        "tokens_per_s": batch_size * new_tokens * 1000.0 / total,
        "total_ms_p50": float(total),
    }


def interleaved_generations(
    runners: dict[str, Callable[[], Generation]], warmup: int, repeats: int
) -> dict[str, list[Generation]]:
    names = list(runners)
    for _ in range(warmup):
        for name in names:
            runners[name]()
    runs: dict[str, list[Generation]] = {name: [] for name in names}
    for round_index in range(repeats):
        for name in names if round_index % 2 == 0 else names[::-1]:
            runs[name].append(runners[name]())
    return runs


class DraftCounter:
    """Counts the draft model's forward passes (one drafted token each) during assisted
    generation; with the accepted tokens of each step it gives the acceptance rate."""

    def __init__(self, draft: nn.Module) -> None:
        self.drafted = 0
        self._handle = draft.register_forward_hook(self._count)

    def _count(self, module: nn.Module, args: tuple, output: object) -> None:
        self.drafted += 1

    def remove(self) -> None:
        self._handle.remove()


def acceptance_rate(runs: list[Generation], drafted: int) -> float | None:
    """Accepted draft tokens over drafted ones: each verification step keeps its accepted
    drafts plus one token of the target's own."""
    accepted = sum(size - 1 for run in runs for size in run.chunk_sizes)
    return accepted / drafted if drafted else None


def _status_bytes(field_name: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field_name}:\s+(\d+) kB", status, re.MULTILINE).group(1)) * 1024


def _reset_peak_rss() -> bool:
    """Return freed heap pages to the kernel, then reset the resident high-water mark
    (Linux: ``clear_refs`` 5); False where that is not possible."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _cache_bytes(cache: object) -> int:
    return sum(
        tensor.nbytes
        for layer in getattr(cache, "layers", [])
        for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None))
        if isinstance(tensor, torch.Tensor)
    )


def _kv_cache_bytes(output: object) -> int:
    """The KV cache a ``generate`` call ended with: the bytes a runtime that keeps its own
    cache reports (``kv_cache_bytes``), or those of transformers' cache tensors."""
    reported = getattr(output, "kv_cache_bytes", None)
    return reported if reported is not None else _cache_bytes(output.past_key_values)


def generation_memory(model: nn.Module, inputs: Inputs, new_tokens: int, **kwargs) -> dict:
    """Resident memory that one greedy ``generate`` call adds on top of what the process held
    before it (loaded models included), and the bytes of its KV cache at the end."""
    measurable = _reset_peak_rss()
    before = _status_bytes("VmRSS")
    with torch.inference_mode():
        output = model.generate(
            **inputs,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            return_dict_in_generate=True,
            **kwargs,
        )
    peak = _status_bytes("VmHWM")
    return {
        "peak_rss_delta_bytes": peak - before if measurable else None,
        "kv_cache_bytes": _kv_cache_bytes(output),
        "prompt_tokens": int(inputs["input_ids"].shape[1]),
    }
