"""Compiled decoding of causal LMs (``backend=torch_compiled``, ``task=lm``/``generation``): the
model quantized by the torch backend's own handler of the level (float, packed weight-only
int8/int4 Linears, or W8A8 after SmoothQuant), then every greedy decode step run by an
AOTInductor package compiled for it, over transformers' static KV cache.

Why AOTInductor for the greedy loop: the package is a C++ function of (token, position, the
cache's tensors) that nothing in Python guards or wraps; ``torch.compile`` of the same step
(Inductor, frozen weights, C++ wrapper) spends ~3 ms per SmolLM2 token in Dynamo's cache lookup
and the call's wrappers, a third of a quantized step (int8 W8A8 10.2 -> 6.9 ms, int4 9.4 ->
7.2 ms, the same tokens; 2 threads, AVX-512 EPYC, one process, interleaved). The package runs
on the model's own tensors (``load_constants`` with ``user_managed``: a weight changed in place
is the weight it reads), and its shared library carries no copy of them (SmolLM2 W8A8: +7 MB
resident per compiled shape) — except where Inductor makes constants of its own, which only
a library carrying every constant holds: the int4 kernel's group size, so an int4 step's
library holds the weights once more (SmolLM2 int4: +103 MB per compiled shape). The cache's
key and value tensors are inputs it writes in place, so one package serves every cache of its
shape.

A decode step is a different program for every (batch size, cache length): a package per
shape, compiled on its first call (the timed loop's warm-up rounds, never a timed round:
``bench.warmup`` >= 1 is required). The plain forward pass that scores perplexity windows
stays eager: a compiled level's perplexity is its eager level's (same weights, same kernels).
So does the prefill, but for the weight-only int4/int8 levels on a CPU with bf16 units: there
a prompt of :data:`PREFILL_FROM_ROWS` rows or more, from its second call on, fills the cache
through a package of its own shape whose products multiply in bfloat16 on the weight
dequantized per call (the integer kernels dequantize each tile again for every few rows),
and its last token goes through the decode step; that package reads the model's own tensors
(its library holds none). SmolLM2 int4, 128-token prompt, 2 threads, AVX-512 EPYC, one
process: first token 179 -> 121 ms, the same 32 greedy tokens; ~85 s to compile. Any call the greedy
loop does not take (sampling, left padding, and every call of a model with sliding-window
layers, Gemma 2/3) goes to transformers' ``generate`` with its static cache and its own
``torch.compile`` of the step. Inductor's cache lives under
``paths.cache_dir/inductor``, so later jobs of a sweep that compile the same graph load it.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn
from transformers.generation.utils import GenerateDecoderOnlyOutput

from compress.backends.compiled.export import export_whole
from compress.backends.registry import CompressedModel
from compress.backends.token_loop import NoStreamer, new_tokens
from compress.backends.torch.artifact import save_artifact
from compress.backends.torch.modules import Int4Linear, Int8WeightOnlyLinear, PackedLinear
from compress.backends.torch.quantize import quantize_
from compress.config.quant import (
    BFloat16Config,
    Float32Config,
    Int4GPTQConfig,
    Int4WeightOnlyConfig,
    Int8SmoothQuantConfig,
    Int8WeightOnlyConfig,
    QuantConfig,
)
from compress.infra.context import CompressionContext
from compress.infra.environment import has_native_bf16
from compress.infra.registry import Registry
from compress.measure.size import size_stats
from compress.quantization.report import QuantReport

# The levels compiled decoding runs: the torch backend's handler of each, then the compiled step.
decode_level = Registry("compiled decoding level")
STEP_NOTE = (
    "greedy decode steps run by an AOTInductor package per (batch, cache length) over a static "
    "KV cache, reading the model's own weights; perplexity windows and short prompts' "
    "prefill run eager; sampled or left-padded calls, and models with sliding-window layers, "
    "decode through transformers' generate with a torch.compile'd step"
)
# Linears whose many-row products a compiled prefill runs in bfloat16 (exact types: W8A8's
# DynamicInt8Linear, a subclass of the int8 one, keeps its integer product)
BFLOAT16_PREFILL_KINDS = (Int4Linear, Int8WeightOnlyLinear)
# From how many prompt rows (tokens times batch) the prefill is compiled with them: where
# SmolLM2's int4 products start to gain (1536x576, 2 threads, AVX-512 EPYC: 386 us on the
# kernel vs 337 us in bfloat16 at 64 rows, 203 vs 311 at 32).
PREFILL_FROM_ROWS = 64
PREFILL_NOTE = (
    f"prompts of {PREFILL_FROM_ROWS}+ tokens (times the batch) but their last fill the cache "
    "through an AOTInductor package whose weight-only products multiply in bfloat16 (avx512_bf16 "
    "or AMX) on weights dequantized per call, the last token through the decode step"
)


@decode_level.register(Float32Config)
@decode_level.register(BFloat16Config)
@decode_level.register(Int8WeightOnlyConfig)
@decode_level.register(Int8SmoothQuantConfig)
@decode_level.register(Int4WeightOnlyConfig)
@decode_level.register(Int4GPTQConfig)
def _torch_level(quant: QuantConfig, model: nn.Module, context: CompressionContext) -> QuantReport:
    return quantize_(quant, model, context)


class DecodeStep(nn.Module):
    """One decode step of ``model`` whose static cache's key and value tensors are the step's
    inputs (written in place), so that a package exported from it serves every cache of its
    shape: during the call, the cache's layers hold the given tensors (and, where a layer
    counts its filled positions itself, the token's position), then their own again.
    ``fill_only``: the decoder stack alone fills the cache (a prefill whose last token a
    decode step takes), returning its last hidden state instead of the next token's logits."""

    def __init__(self, model: nn.Module, cache, cache_arg: str, fill_only: bool = False) -> None:
        super().__init__()
        self.model, self.cache, self.cache_arg = model, cache, cache_arg
        self.fill_only = fill_only

    def forward(self, input_ids: torch.Tensor, cache_position: torch.Tensor,
                *keys_values: torch.Tensor) -> torch.Tensor:  # fmt: skip
        layers = self.cache.layers
        own = [dict(vars(layer)) for layer in layers]
        for layer, keys, values in zip(layers, keys_values[::2], keys_values[1::2], strict=True):
            layer.keys, layer.values = keys, values
            if hasattr(layer, "cumulative_length"):
                layer.cumulative_length = cache_position[0].clone()
        try:
            # positions as a tensor: without them, transformers 5 counts them from the cache
            model = self.model.get_decoder() if self.fill_only else self.model
            output = model(input_ids=input_ids, cache_position=cache_position,
                           position_ids=cache_position[None], use_cache=True,
                           **{self.cache_arg: self.cache})  # fmt: skip
            return output.last_hidden_state[:, -1] if self.fill_only else output.logits[:, -1]
        finally:
            for layer, attributes in zip(layers, own, strict=True):
                vars(layer).update(attributes)


# ops Inductor lowers with constants of its own (the int4 kernel takes its group size as a
# tensor), which only a shared library carrying its constants holds
MAKES_CONSTANTS = {torch.ops.aten._weight_int4pack_mm_for_cpu.default}


def cache_tensors(cache) -> list[torch.Tensor]:
    """The static cache's key and value tensors, layer by layer (a :class:`DecodeStep`'s
    inputs after the token and position)."""
    return [tensor for layer in cache.layers for tensor in (layer.keys, layer.values)]


def compile_step(model: nn.Module, cache, cache_arg: str, tokens: torch.Tensor,
                 position: torch.Tensor, fill_only: bool = False):  # fmt: skip
    """An AOTInductor package of one decode step (``fill_only``: see :class:`DecodeStep`)
    over caches shaped like ``cache`` (filled by a prefill), exported at
    ``tokens``/``position``, run on the model's own tensors."""
    step = DecodeStep(model, cache, cache_arg, fill_only)
    # export traces ordinary tensors; the cache's were made under inference mode
    with torch.inference_mode(False):
        sample = [tensor.clone() for tensor in cache_tensors(cache)]
        program = export_whole(step, (tokens.clone(), position.clone(), *sample))
    tensors = {**program.constants, **dict(step.named_parameters(remove_duplicate=False)),
               **dict(step.named_buffers(remove_duplicate=False))}  # fmt: skip
    inside = any(node.target in MAKES_CONSTANTS for node in program.graph.nodes)
    package = _package(program, weights_inside=inside)
    if not inside and not set(package.get_constant_fqns()) <= set(tensors):
        # constants Inductor made that the list above misses: only a library carrying them runs
        inside, package = True, _package(program, weights_inside=True)
    ours = {name: tensors[name] for name in package.get_constant_fqns() if name in tensors}
    package.load_constants(ours, check_full_update=not inside, user_managed=True)
    return package


@contextmanager
def bfloat16_products(modules: list[PackedLinear], from_rows: int) -> Iterator[None]:
    """Within: ``modules`` multiply inputs of ``from_rows`` rows or more on
    ``product_bfloat16`` (what a compiled prefill is captured with)."""
    try:
        for module in modules:
            module.bfloat16_from_rows = from_rows
        yield
    finally:
        for module in modules:
            vars(module).pop("bfloat16_from_rows", None)


def _package(program: torch.export.ExportedProgram, weights_inside: bool):
    """The program compiled by AOTInductor and loaded; ``weights_inside``: its shared library
    carries (and, loaded, holds) a copy of every constant, the model's weights included."""
    options = {"aot_inductor.package_constants_in_so": weights_inside}
    path = torch._inductor.aoti_compile_and_package(program, inductor_configs=options)
    return torch._inductor.aoti_load_package(path)


class CompiledCausalLM:
    """A causal LM whose greedy ``generate`` decodes with a static cache and compiled steps;
    its forward pass (perplexity, prefill) is the eager model's."""

    # generate() arguments the greedy loop honours; any other sends the call to transformers
    GREEDY_KEYS = frozenset({"input_ids", "attention_mask", "max_new_tokens", "min_new_tokens",
                             "do_sample", "streamer", "pad_token_id",
                             "return_dict_in_generate"})  # fmt: skip

    def __init__(self, model: nn.Module) -> None:
        from transformers.generation.configuration_utils import CompileConfig

        self.model, self.config = model, model.config
        # generate()'s own compiled step, for the calls the greedy loop does not take.
        # mode=None: no CUDA graphs (the CPU has none); options and mode exclude each other.
        self.compile_config = CompileConfig(
            fullgraph=True, dynamic=False, mode=None,
            options={"freezing": True, "cpp_wrapper": True},
        )  # fmt: skip
        self.compile_config._compile_all_devices = True  # transformers compiles on GPUs only
        # one cache and one compiled step per (batch, length); a cache is reset per call
        self._caches: dict[tuple[int, int], object] = {}
        self._steps: dict[tuple[int, int], object] = {}
        # a compiled prefill per (batch, prompt, cache length), for bfloat16_prefill_modules
        self._prefills: dict[tuple[int, int, int], object] = {}
        self._bfloat16_modules = bfloat16_prefill_modules(model)
        self._cache_arg = cache_argument(model)
        forward = inspect.signature(model.forward).parameters
        # the prefill needs the last position's logits only (a 49k-row LM head over the prompt
        # is a sixth of SmolLM2's prefill otherwise); generate() asks the same
        self._last_logits = {"logits_to_keep": 1} if "logits_to_keep" in forward else {}
        # a sliding-window layer (Gemma 2/3) keeps its fill count and mask offsets as Python
        # numbers, a different program per position, which one package cannot be
        layer_types = getattr(self.config, "layer_types", None) or []
        self._one_program = "sliding_attention" not in layer_types and not getattr(
            self.config, "sliding_window", None
        )

    def __call__(self, **inputs):
        return self.model(**inputs)

    def generate(self, **kwargs):
        mask = kwargs.get("attention_mask")
        greedy = (
            set(kwargs) <= self.GREEDY_KEYS
            and not kwargs.get("do_sample", False)
            and (mask is None or bool(mask.all()))
        )
        if greedy and self._one_program:
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
        cache = self._cache(*shape)
        fill, head = self._prefills.get((batch, prompt, shape[1])), input_ids[:, :-1]
        keys_values = cache_tensors(cache) if fill is not None else []  # exist once a shape ran

        def next_logits(step: int, tokens: torch.Tensor) -> torch.Tensor:
            position = torch.tensor([prompt + step])
            if shape not in self._steps:
                self._steps[shape] = compile_step(self.model, cache, self._cache_arg,
                                                  tokens[:, None], position)  # fmt: skip
            return self._steps[shape](tokens[:, None], position, *keys_values)

        if fill is not None:
            fill(head, torch.arange(prompt - 1), *keys_values)
            logits = next_logits(-1, input_ids[:, -1])
        else:
            logits = self.model(input_ids=input_ids, cache_position=torch.arange(prompt),
                                use_cache=True, **{self._cache_arg: cache},
                                **self._last_logits).logits[:, -1]  # fmt: skip
            keys_values = cache_tensors(cache)
            if self._bfloat16_modules and head.numel() >= PREFILL_FROM_ROWS:
                self._prefills[(batch, prompt, shape[1])] = self._compile_prefill(cache, head)
        new = new_tokens(logits, next_logits, max_new_tokens, min_new_tokens, eos, pad, streamer)
        sequences = torch.cat([input_ids, new], dim=1)
        if not return_dict_in_generate:
            return sequences
        return GenerateDecoderOnlyOutput(sequences=sequences, past_key_values=cache)

    def _compile_prefill(self, cache, head: torch.Tensor):
        """The package filling ``cache`` with ``head``'s keys and values, its weight-only
        products in bfloat16 (the cache's tensors exist: a prefill filled them)."""
        decoder = self.model.get_decoder()
        with bfloat16_products(self._bfloat16_modules, PREFILL_FROM_ROWS):
            return compile_step(self.model, cache, cache_argument(decoder), head,
                                torch.arange(head.shape[1]), fill_only=True)  # fmt: skip

    def eval(self) -> CompiledCausalLM:
        return self


def cache_argument(module: nn.Module) -> str:
    """The name ``module``'s forward takes the KV cache under: transformers 5.x renamed it
    (the old name warns, then goes)."""
    return "cache" if "cache" in inspect.signature(module.forward).parameters else "past_key_values"


def bfloat16_prefill_modules(model: nn.Module) -> list[PackedLinear]:
    """The modules a compiled prefill multiplies in bfloat16: on a CPU with bf16 units, the
    model's :data:`BFLOAT16_PREFILL_KINDS` (none elsewhere: software bfloat16 loses to the
    integer kernels)."""
    if not has_native_bf16():
        return []
    return [module for module in model.modules() if type(module) in BFLOAT16_PREFILL_KINDS]


def compiled_decoder(
    quant: QuantConfig, model: nn.Module, context: CompressionContext, folder: Path
) -> CompressedModel:
    """Quantize with the torch backend's handler, save in its format (a reload is the eager
    model: compilation is per process), run with compiled decoding."""
    report = decode_level(quant, model.eval(), context)
    artifact = save_artifact(model, folder)
    notes = [*report.notes, STEP_NOTE, *([PREFILL_NOTE] if bfloat16_prefill_modules(model) else [])]
    report = QuantReport(report.level, report.weight_dtype, report.layers_quantized,
                         notes, report.bits_per_weight,
                         f"{report.kernel or 'aten.linear'} in a compiled decode step")  # fmt: skip
    return CompressedModel(CompiledCausalLM(model), report, artifact, size_stats(model))
