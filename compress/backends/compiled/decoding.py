"""Compiled decoding of causal LMs (``backend=torch_compiled``, ``task=lm``/``generation``): the
model quantized by the torch backend's own handler of the level (float, or packed weight-only
int8/int4 Linears), then every decode step run with transformers' static KV cache through
``torch.compile`` with Inductor freezing (weights folded into the graph as constants, so
Inductor prepacks them and fuses the step around the matmuls).

Why ``torch.compile`` and not AOTInductor here: a decode step is a different program for every
(batch size, cache length), and transformers' ``generate`` already drives a static cache and a
compiled step (``compile_config``); an AOT package per shape would duplicate that loop. The
prefill, like transformers' own, stays eager (prompt lengths vary), and so does the plain
forward pass that scores perplexity windows: a compiled level's perplexity is its eager
level's (same weights, same kernels outside the fused step).

Greedy decoding of unpadded prompts (what the timed loop runs) takes a loop of its own around
the compiled step, with C++ wrapper code (``cpp_wrapper``) instead of Inductor's Python one:
transformers' ``generate`` spends milliseconds per token in Python around the step (logits
processors, stopping criteria, mask and position bookkeeping), which is most of a decode step
of a 135M model once its matmuls are quantized (SmolLM2 int4, 2 threads, AVX-512 EPYC: 11.2 ms
per token through ``generate``, 7.5 ms in this loop). Any other call (sampling, left padding)
goes to ``generate`` with the same compiled step.

Compilation happens on a shape's first ``generate`` call: the timed loop's warm-up rounds,
never a timed round (``bench.warmup`` >= 1 is required). Inductor's graph cache lives under
``paths.cache_dir/inductor``, so later jobs of a sweep that compile the same graph load it.
"""

from __future__ import annotations

import inspect
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch
from torch import nn
from transformers.generation.utils import GenerateDecoderOnlyOutput

from compress.backends.registry import CompressedModel
from compress.backends.token_loop import NoStreamer, new_tokens
from compress.backends.torch.artifact import save_artifact
from compress.backends.torch.quantize import quantize_
from compress.config.quant import (
    BFloat16Config,
    Float32Config,
    Int4GPTQConfig,
    Int4WeightOnlyConfig,
    Int8WeightOnlyConfig,
    QuantConfig,
)
from compress.infra.context import CompressionContext
from compress.infra.registry import Registry
from compress.measure.size import size_stats
from compress.quantization.report import QuantReport

# The levels compiled decoding runs: the torch backend's handler of each, then the compiled step.
decode_level = Registry("compiled decoding level")
STEP_NOTE = (
    "decode steps compiled by torch.compile (Inductor, weights frozen, C++ wrapper) over a static "
    "KV cache, greedy unpadded calls in the backend's own loop; prefill and perplexity windows "
    "run eager"
)


@decode_level.register(Float32Config)
@decode_level.register(BFloat16Config)
@decode_level.register(Int8WeightOnlyConfig)
@decode_level.register(Int4WeightOnlyConfig)
@decode_level.register(Int4GPTQConfig)
def _torch_level(quant: QuantConfig, model: nn.Module, context: CompressionContext) -> QuantReport:
    return quantize_(quant, model, context)


class CompiledCausalLM:
    """A causal LM whose ``generate`` decodes with a static cache and compiled steps; its
    forward pass (perplexity, prefill) is the eager model's."""

    # generate() arguments the greedy loop honours; any other sends the call to transformers
    GREEDY_KEYS = frozenset({"input_ids", "attention_mask", "max_new_tokens", "min_new_tokens",
                             "do_sample", "streamer", "pad_token_id",
                             "return_dict_in_generate"})  # fmt: skip
    OPTIONS = {"freezing": True, "cpp_wrapper": True}

    def __init__(self, model: nn.Module) -> None:
        from transformers.generation.configuration_utils import CompileConfig

        self.model, self.config = model, model.config
        # mode=None: no CUDA graphs (the CPU has none); options and mode exclude each other.
        self.compile_config = CompileConfig(
            fullgraph=True, dynamic=False, mode=None, options=self.OPTIONS
        )
        self.compile_config._compile_all_devices = True  # transformers compiles on GPUs only
        self._step = torch.compile(model.forward, fullgraph=True, dynamic=False,
                                   options=self.OPTIONS)  # fmt: skip
        # one cache per (batch, length), reset per call: the compiled step is specialised to
        # its tensors, as transformers' generate keeps its own
        self._caches: dict[tuple[int, int], object] = {}
        # the (batch, length) shapes whose step has compiled: their calls skip Dynamo's guards
        self._compiled: set[tuple[int, int]] = set()
        # transformers 5.x renamed the forward's cache argument (the old name warns, then goes)
        forward = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in forward else "past_key_values"
        # the prefill needs the last position's logits only (a 49k-row LM head over the prompt
        # is a sixth of SmolLM2's prefill otherwise); generate() asks the same
        self._last_logits = {"logits_to_keep": 1} if "logits_to_keep" in forward else {}

    def __call__(self, **inputs):
        return self.model(**inputs)

    def generate(self, **kwargs):
        mask = kwargs.get("attention_mask")
        greedy = (
            set(kwargs) <= self.GREEDY_KEYS
            and not kwargs.get("do_sample", False)
            and (mask is None or bool(mask.all()))
        )
        if greedy:
            return self._greedy(**kwargs)
        return self.model.generate(
            **kwargs, cache_implementation="static", compile_config=self.compile_config
        )

    def _cache(self, batch: int, length: int):
        from transformers import StaticCache

        key = (batch, length)
        if key not in self._caches:
            self._caches[key] = StaticCache(config=self.config, max_batch_size=batch,
                                            max_cache_len=length, device="cpu",
                                            dtype=self.model.dtype)  # fmt: skip
        cache = self._caches[key]
        cache.reset()
        return cache

    @torch.inference_mode()  # the cache is reset in place: its tensors stay inference tensors
    def _greedy(self, input_ids: torch.Tensor, max_new_tokens: int, min_new_tokens: int = 0,
                streamer=None, pad_token_id: int | None = None,
                return_dict_in_generate: bool = False, **_):  # fmt: skip
        """Prompt and greedy continuation, as ``generate`` returns them: end-of-sequence is
        suppressed before ``min_new_tokens``; a finished sequence is padded until all are.
        ``return_dict_in_generate``: the sequences and the static cache they were decoded in
        (what the memory measurement weighs)."""
        eos = self.model.generation_config.eos_token_id
        eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        pad = pad_token_id if pad_token_id is not None else (eos or [0])[0]
        batch, prompt = input_ids.shape
        streamer = streamer or NoStreamer()
        streamer.put(input_ids)
        shape = (batch, prompt + max_new_tokens)
        cache = {self._cache_arg: self._cache(*shape), "use_cache": True}
        logits = self.model(input_ids=input_ids, cache_position=torch.arange(prompt),
                            **cache, **self._last_logits).logits[:, -1]  # fmt: skip

        def next_logits(step: int, tokens: torch.Tensor) -> torch.Tensor:
            position = torch.tensor([prompt + step])
            return self._step(input_ids=tokens[:, None], cache_position=position,
                              **cache).logits[:, -1]  # fmt: skip

        with self._guards(shape):
            new = new_tokens(logits, next_logits, max_new_tokens, min_new_tokens, eos, pad,
                             streamer)  # fmt: skip
        self._compiled.add(shape)
        sequences = torch.cat([input_ids, new], dim=1)
        if not return_dict_in_generate:
            return sequences
        return GenerateDecoderOnlyOutput(
            sequences=sequences, past_key_values=cache[self._cache_arg]
        )

    def _guards(self, shape: tuple[int, int]) -> AbstractContextManager:
        """Dynamo checks its guards (one per weight and cache tensor the step reads, among
        others) before each call: 0.7 ms of SmolLM2's 12.4 ms int4 step (2 threads, AVX-512
        EPYC, interleaved in one process). Once the step of this shape has compiled, the loop's
        calls are those it compiled for (the same model, the same cache tensors, reset in
        place; only the token and position differ), so only the guards that tell the compiled
        shapes apart run."""
        if shape in self._compiled:
            return torch.compiler.set_stance("default", skip_guard_eval_unsafe=True)
        return nullcontext()

    def eval(self) -> CompiledCausalLM:
        return self


def compiled_decoder(
    quant: QuantConfig, model: nn.Module, context: CompressionContext, folder: Path
) -> CompressedModel:
    """Quantize with the torch backend's handler, save in its format (a reload is the eager
    model: compilation is per process), run with compiled decoding."""
    report = decode_level(quant, model.eval(), context)
    artifact = save_artifact(model, folder)
    report = QuantReport(report.level, report.weight_dtype, report.layers_quantized,
                         [*report.notes, STEP_NOTE], report.bits_per_weight,
                         f"{report.kernel or 'aten.linear'} in a compiled decode step")  # fmt: skip
    return CompressedModel(CompiledCausalLM(model), report, artifact, size_stats(model))
