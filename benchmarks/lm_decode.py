"""SmolLM2 decoding and perplexity, every torch quantization level and llama.cpp side by side
in one process.

    python benchmarks/lm_decode.py                       # SmolLM2-135M, batch 1, 32 new tokens
    python benchmarks/lm_decode.py --batch-sizes 1 4 --repeats 30
    python benchmarks/lm_decode.py --levels fp32 int8_weight_only int4 --no-llama-cpp

``llama.cpp`` (the ``llama-cpp-python`` package, ``pip install '.[llama]'``; built from source
for this CPU) runs the shipped GGUF file itself (Q4_1) at batch 1: the same token ids, the
same perplexity windows, greedy decoding of the same prompt, timed in the same interleaved
loop. Without the package the row is left out, and the header says so.

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
import os
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
LLAMA_CPP = "llama.cpp Q4_1"


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


def _llama_cpp(gguf: Path, threads: int, wanted: bool):
    """llama.cpp on the GGUF file, or ``None`` and why not (not wanted, not installed)."""
    if not wanted:
        return None, "llama.cpp not measured (--no-llama-cpp)"
    try:
        from llama_cpp_runner import LlamaCppModel
    except ImportError as error:
        return None, f"llama.cpp not measured ({error})"
    return LlamaCppModel(gguf, threads), "llama.cpp: the shipped GGUF as it is, batch 1"


def run(args: argparse.Namespace) -> tuple[pd.DataFrame, str]:
    quiet_libraries()
    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    overrides = ["model=smollm2", "task=lm", f"task.eval_tokens={args.eval_tokens}"]
    cfg = compose_config(overrides)
    task = build_task(OmegaConf.to_object(cfg.task))
    pretrained = sources.resolve(cfg.model.name_or_path, Path(cfg.paths.cache_dir).expanduser())
    model, tokenizer = load_causal_lm(pretrained)
    context = CompressionContext(calibration=partial(task.calibration_batches, tokenizer))
    variants, rows = _variants(model, args.levels, context)
    gguf = sources.gguf_file(cfg.model.name_or_path)
    peer, peer_line = _llama_cpp(gguf, threads, args.llama_cpp)
    for level, variant in variants.items():
        quality, _ = task.evaluate(variant, tokenizer)
        rows[level] |= {"perplexity": quality["perplexity"], "eval_tokens": quality["tokens"]}
        print(f"{level}: perplexity {quality['perplexity']:.3f}", flush=True)
    if peer is not None:
        c = task.config
        quality = peer.perplexity(task.eval_ids(tokenizer), c.window, c.stride)
        rows[LLAMA_CPP] = {"perplexity": quality["perplexity"], "eval_tokens": quality["tokens"],
                           "kernel": "llama.cpp ggml (Q4_1 dot products)"}  # fmt: skip
        print(f"{LLAMA_CPP}: perplexity {quality['perplexity']:.3f}", flush=True)
    load = os.getloadavg()[0]
    for batch in args.batch_sizes:
        inputs = task.speed_inputs(tokenizer, batch, args.prompt_tokens)
        runners = {level: partial(timed_generate, variant, inputs, args.new_tokens,
                                  pad_token_id=tokenizer.pad_token_id)
                   for level, variant in variants.items()}  # fmt: skip
        if peer is not None and batch == 1:
            runners[LLAMA_CPP] = partial(peer.timed_generate, inputs["input_ids"][0],
                                         args.new_tokens)  # fmt: skip
        runs = interleaved_generations(runners, args.warmup, args.repeats)
        for level, level_runs in runs.items():
            stats = generation_stats(level_runs, batch, args.new_tokens)
            rows[level] |= {
                f"decode_ms_p50_b{batch}": stats["decode_ms_p50"],
                f"decode_ms_p90_b{batch}": stats["decode_ms_p90"],
                f"ttft_ms_b{batch}": stats["ttft_ms"],
                f"tokens_per_s_b{batch}": stats["tokens_per_s"],
            }
    if peer is not None:
        peer.close()
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("level")
    fp32 = table.loc["fp32"]
    table["perplexity_ratio"] = table["perplexity"] / fp32["perplexity"]
    for batch in args.batch_sizes:
        column = f"decode_ms_p50_b{batch}"
        table[f"decode_ratio_b{batch}"] = table[column] / fp32[column]
    header = (
        f"SmolLM2-135M-Instruct (4-bit GGUF weights expanded to fp32), {threads} threads, "
        f"CPU flags {list(cpu_flags()) or 'none of AVX512/VNNI/AMX'}, torch {torch.__version__}; "
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
    parser.add_argument("--no-llama-cpp", dest="llama_cpp", action="store_false")
    args = parser.parse_args()
    if args.levels[0] != "fp32":
        parser.error("--levels must start with fp32 (the ratios' reference)")
    table, header = run(args)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "lm_decode.csv")
    markdown = f"{header}\n\n{table.to_markdown(floatfmt='.3f')}\n"
    (out / "lm_decode.md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
