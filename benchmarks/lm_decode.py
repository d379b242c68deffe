"""SmolLM2 decoding and perplexity: every torch quantization level eager and with compiled
decoding (``backend=torch_compiled``), and llama.cpp on the GGUF files ``backend=llama_cpp``
writes, side by side in one process.

    python benchmarks/lm_decode.py                       # SmolLM2-135M, batch 1, 32 new tokens
    python benchmarks/lm_decode.py --batch-sizes 1 4 --repeats 30
    python benchmarks/lm_decode.py --levels fp32 int8_weight_only int4 --no-llama-cpp
    python benchmarks/lm_decode.py --compiled fp32 int8_weight_only --gguf f32 q8_0 q4_k_m

``compiled:<level>`` rows decode with a static KV cache, each greedy step an AOTInductor package
(and, for the weight-only levels on a CPU with bf16 units, a compiled bfloat16 prefill; see
``compress.backends.compiled.decoding``), compiled in the warm-up rounds, never timed; the
Inductor cache under ``paths.cache_dir`` is reused across runs. ``llama.cpp <type>`` rows are
the fp32 model written as GGUF and quantized by llama.cpp's own quantizer (importance matrix
from the calibration text where the type takes one) exactly as ``backend=llama_cpp`` does,
plus the shipped Q4_1 GGUF file itself; llama.cpp (``pip install '.[llama]'``, built from
source for this CPU) scores the same token ids and windows and decodes the same prompts, timed
in the same interleaved loop. Without the package those rows are left out, and the header
says so.

Per-token decode latency (KV cache, greedy), time to first token and tokens/s come from one
interleaved loop (each round runs every variant once, in alternating order), so machine drift
hits them alike; ratios are against fp32 from that same loop. Perplexity of each variant on
the same fixed held-out Wikipedia slice. Writes ``benchmarks/results/lm_decode.{csv,md}``.

Caveat: SmolLM2 ships as 4-bit GGUF weights expanded to float32, so its "fp32" already carries
4-bit rounding: int8 costs less perplexity here than on a model trained in float32, and int4
re-rounds weights that were 4-bit already (on another grid), which costs more than it would on
the original float model.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path

import pandas as pd
import torch
from omegaconf import OmegaConf

from compress.backends.torch.quantize import quantize_
from compress.config.quant import (
    BFloat16Config,
    Float32Config,
    Int4GPTQConfig,
    Int4WeightOnlyConfig,
    Int8DynamicConfig,
    Int8SmoothQuantConfig,
    Int8WeightOnlyConfig,
)
from compress.infra.context import CompressionContext
from compress.infra.environment import cpu_flags, default_threads
from compress.infra.quiet import quiet_libraries
from compress.measure.decoding import generation_stats, interleaved_generations, timed_generate
from compress.models import sources
from compress.pipeline.prepare import compose_config
from compress.tasks import build_task
from compress.tasks.causal_lm import load_causal_lm

ROOT = Path(__file__).resolve().parents[1]
LEVELS = {
    "fp32": Float32Config(),
    "bf16": BFloat16Config(),
    "int8": Int8DynamicConfig(),
    "int8_per_channel": Int8DynamicConfig(per_channel=True),
    "int8_weight_only": Int8WeightOnlyConfig(),
    "int8_smoothquant": Int8SmoothQuantConfig(),
    "int4": Int4WeightOnlyConfig(group_size=32),
    "int4_g64": Int4WeightOnlyConfig(group_size=64),
    "int4_gptq": Int4GPTQConfig(group_size=32),
    "int4_gptq_g64": Int4GPTQConfig(group_size=64),
}
LLAMA_CPP = "llama.cpp Q4_1 (shipped)"
# Levels compiled decoding runs, and the GGUF types written like backend=llama_cpp does.
COMPILED = ["fp32", "bf16", "int8_weight_only", "int8_smoothquant", "int4", "int4_gptq"]
GGUF_TYPES = ["f32", "q8_0", "q4_0", "q4_k_m", "q5_k_m"]


def _variants(
    model: torch.nn.Module, levels: list[str], context: CompressionContext
) -> tuple[dict[str, torch.nn.Module], dict[str, dict]]:
    """Each level applied to its own copy of the fp32 model, and what its report says."""
    variants, reports = {}, {}
    for level in levels:
        variant = copy.deepcopy(model)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = quantize_(LEVELS[level], variant, context)
        variants[level] = variant.eval()
        reports[level] = {"layers_quantized": report.layers_quantized,
                          "bits_per_weight": report.bits_per_weight, "kernel": report.kernel,
                          "quantize_s": time.perf_counter() - start}  # fmt: skip
    return variants, reports


def _compiled(variants: dict, reports: dict, levels: list[str]) -> dict:
    """``compiled:<level>``: the eager variant of that level with compiled decoding (the
    same quantized weights: compiling adds no copy)."""
    from compress.backends.compiled.decoding import CompiledCausalLM

    compiled = {}
    for level in levels:
        compiled[f"compiled:{level}"] = CompiledCausalLM(variants[level])
        reports[f"compiled:{level}"] = dict(reports[level], kernel=f"compiled {level}")
    return compiled


def _llama_cpp(model, gguf: Path, types: list[str], context, folder: Path, wanted: bool):
    """llama.cpp on the GGUF of each type (written and quantized as ``backend=llama_cpp``
    does) and on the shipped file; or nothing and why not (not wanted, not installed)."""
    if not wanted:
        return {}, {}, "llama.cpp not measured (--no-llama-cpp)"
    if importlib.util.find_spec("llama_cpp") is None:
        return {}, {}, "llama.cpp not measured (llama-cpp-python is not installed)"
    from compress.backends import compress_on
    from compress.backends.llama_cpp.runtime import LlamaCppModel
    from compress.config.backend import LlamaCppBackendConfig
    from compress.config.store import SCHEMAS

    peers, reports = {}, {}
    for kind in types:
        level = SCHEMAS["quant"]["fp32" if kind == "f32" else kind]()
        start = time.perf_counter()
        compressed = compress_on(LlamaCppBackendConfig(), copy.deepcopy(model), level, context,
                                 folder / kind)  # fmt: skip
        name = f"llama.cpp {kind.upper()}"
        peers[name] = compressed.model
        reports[name] = {"layers_quantized": compressed.quant.layers_quantized,
                         "bits_per_weight": compressed.quant.bits_per_weight,
                         "kernel": f"llama.cpp {compressed.quant.weight_dtype}",
                         "quantize_s": time.perf_counter() - start}  # fmt: skip
    peers[LLAMA_CPP] = LlamaCppModel(gguf, model.config)
    reports[LLAMA_CPP] = {"kernel": "llama.cpp Q4_1 (the shipped file)"}
    return peers, reports, "llama.cpp: GGUF written by backend=llama_cpp, and the shipped file"


def run(args: argparse.Namespace) -> tuple[pd.DataFrame, str]:
    """Long because it is the whole benchmark: build the variants, score them, time them."""
    quiet_libraries()
    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    overrides = ["model=smollm2", "task=lm", f"task.eval_tokens={args.eval_tokens}"]
    cfg = compose_config(overrides)
    cache = Path(cfg.paths.cache_dir).expanduser()
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache / "inductor"))
    task = build_task(OmegaConf.to_object(cfg.task))
    pretrained = sources.resolve(cfg.model.name_or_path, cache)
    model, tokenizer = load_causal_lm(pretrained)
    context = CompressionContext(calibration=partial(task.calibration_batches, tokenizer),
                                 tokenizer=tokenizer)  # fmt: skip
    variants, rows = _variants(model, args.levels, context)
    variants |= _compiled(variants, rows, args.compiled)
    folder = tempfile.TemporaryDirectory()  # the GGUF files, until the end of the run
    peers, peer_rows, peer_line = _llama_cpp(
        model, sources.gguf_file(cfg.model.name_or_path), args.gguf, context,
        Path(folder.name), args.llama_cpp,
    )  # fmt: skip
    variants |= peers
    rows |= peer_rows
    for level, variant in variants.items():
        if level.startswith("compiled:"):  # its forward pass is the eager level's
            rows[level] |= {
                k: rows[level.partition(":")[2]][k] for k in ("perplexity", "eval_tokens")
            }
            continue
        quality, _ = task.evaluate(variant, tokenizer)
        rows[level] |= {"perplexity": quality["perplexity"], "eval_tokens": quality["tokens"]}
        print(f"{level}: perplexity {quality['perplexity']:.3f}", flush=True)
    load = os.getloadavg()[0]
    for batch in args.batch_sizes:
        inputs = task.speed_inputs(tokenizer, batch, args.prompt_tokens)
        runners = {level: partial(timed_generate, variant, inputs, args.new_tokens,
                                  pad_token_id=tokenizer.pad_token_id)
                   for level, variant in variants.items()}  # fmt: skip
        runs = interleaved_generations(runners, args.warmup, args.repeats)
        for level, level_runs in runs.items():
            stats = generation_stats(level_runs, batch, args.new_tokens)
            rows[level] |= {
                f"decode_ms_p50_b{batch}": stats["decode_ms_p50"],
                f"decode_ms_p90_b{batch}": stats["decode_ms_p90"],
                f"ttft_ms_b{batch}": stats["ttft_ms"],
                f"tokens_per_s_b{batch}": stats["tokens_per_s"],
            }
    for peer in peers.values():
        peer.close()
    folder.cleanup()
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("level")
    fp32 = table.loc["fp32"]
    table["perplexity_ratio"] = table["perplexity"] / fp32["perplexity"]
    for batch in args.batch_sizes:
        column = f"decode_ms_p50_b{batch}"
        table[f"decode_ratio_b{batch}"] = table[column] / fp32[column]
    header = (
        f"SmolLM2-135M-Instruct (4-bit GGUF weights expanded to fp32), {threads} threads, "
        f"CPU flags {list(cpu_flags()) or 'none of AVX512/VNNI/AMX/bf16'}, torch "
        f"{torch.__version__}; "
        f"prompt {args.prompt_tokens} tokens, {args.new_tokens} new tokens, median over "
        f"{args.repeats} interleaved repeats after {args.warmup} warm-up; perplexity on "
        f"{int(fp32['eval_tokens'])} held-out Wikipedia tokens (window 512, stride 256); "
        f"1-minute load average at timing start {load:.1f}; {peer_line}"
    )
    return table, header


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", nargs="+", default=list(LEVELS), choices=list(LEVELS))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1])
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--eval-tokens", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=0, help="0: one per physical core")
    parser.add_argument(
        "--compiled",
        nargs="*",
        default=COMPILED,
        choices=COMPILED,
        help="levels also run with compiled decoding (each in --levels)",
    )
    parser.add_argument(
        "--gguf",
        nargs="*",
        default=GGUF_TYPES,
        choices=GGUF_TYPES,
        help="GGUF types llama.cpp runs, written like backend=llama_cpp",
    )
    parser.add_argument("--no-llama-cpp", dest="llama_cpp", action="store_false")
    args = parser.parse_args()
    if args.levels[0] != "fp32":
        parser.error("--levels must start with fp32 (the ratios' reference)")
    if not set(args.compiled) <= set(args.levels):
        parser.error("--compiled levels must be among --levels")
    table, header = run(args)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "lm_decode.csv")
    markdown = f"{header}\n\n{table.to_markdown(floatfmt='.3f')}\n"
    (out / "lm_decode.md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
