"""Every compression method side by side in one process: size, latency and quality ratios.

    python benchmarks/compression.py --model minilm          # fine-tuned MiniLM, with quality
    python benchmarks/compression.py --model bert-base       # random-init BERT-base shape, speed
    python benchmarks/compression.py --processes 3 --only "torch int8 dynamic" "ORT int8 dynamic"

All variants are timed round-robin in the same loop (each round runs every variant once, in
alternating order), so machine drift hits them alike; ratios are medians against fp32 from
that same loop. ``--processes N`` runs the whole loop in N fresh processes one after the other
and reports the median of each figure over them (the per-process tables are kept as
``..._part<i>``). Each variant's ``floor_b1``/``floor_b8`` is the fraction of the CPU's
arithmetic floor it reaches: FLOPs of its forward pass (counted on the pruned model) / peak
of its compute dtype / measured p50. The peak is measured on this machine by a hand loop
(:mod:`roofline`), before and after the timing (the larger counts), and the header says how;
``peak_gops`` holds it per variant. Writes
``benchmarks/results/compression_<model>.{csv,json,md}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd
import torch
from omegaconf import OmegaConf
from roofline import Peak, forward_flops, measured_peak

from compress.backends import compress_on, load_artifact
from compress.config.backend import (
    OnnxRuntimeBackendConfig,
    TorchBackendConfig,
    TorchCompiledBackendConfig,
)
from compress.config.prune import (
    HeadAndNeuronPruningConfig,
    MagnitudePruningConfig,
    NoPruningConfig,
)
from compress.config.quant import (
    BFloat16Config,
    Float32Config,
    Int4WeightOnlyConfig,
    Int8DynamicConfig,
    Int8StaticConfig,
)
from compress.infra.context import CompressionContext
from compress.infra.environment import cpu_flags, default_threads
from compress.infra.quiet import quiet_libraries
from compress.models import sources
from compress.pipeline.prepare import compose_config, prepare
from compress.pruning import prune_model
from compress.storage.artifact import disk_bytes
from compress.tasks import build_task

ROOT = Path(__file__).resolve().parents[1]
TORCH, ORT, COMPILED = (
    TorchBackendConfig(),
    OnnxRuntimeBackendConfig(),
    TorchCompiledBackendConfig(),
)
# the dtype each level computes in, for the arithmetic peak it is held against
COMPUTE = {"fp32": "fp32", "bf16": "bf16", "int8": "int8", "int8_static": "int8", "int4": "fp32"}
NONE = NoPruningConfig()
STRUCTURED = HeadAndNeuronPruningConfig(name="heads_neurons")
UNSTRUCTURED = MagnitudePruningConfig(name="global_l1")


@dataclass(frozen=True)
class Variant:
    label: str
    prune: object
    amount: float
    quant: object
    backend: object


VARIANTS = [
    Variant("torch fp32", NONE, 0.0, Float32Config(), TORCH),
    Variant("torch bf16", NONE, 0.0, BFloat16Config(), TORCH),
    Variant("torch int8 dynamic", NONE, 0.0, Int8DynamicConfig(), TORCH),
    Variant("torch int8, Linears only", NONE, 0.0, Int8DynamicConfig(embeddings=False), TORCH),
    Variant("torch int8 static", NONE, 0.0, Int8StaticConfig(), TORCH),
    Variant("unstructured 50% fp32", UNSTRUCTURED, 0.5, Float32Config(), TORCH),
    Variant("unstructured 90% fp32", UNSTRUCTURED, 0.9, Float32Config(), TORCH),
    Variant("unstructured 90% int8", UNSTRUCTURED, 0.9, Int8DynamicConfig(), TORCH),
    Variant("50% heads+FFN fp32", STRUCTURED, 0.5, Float32Config(), TORCH),
    Variant("50% heads+FFN int8", STRUCTURED, 0.5, Int8DynamicConfig(), TORCH),
    Variant("ORT fp32", NONE, 0.0, Float32Config(), ORT),
    Variant("ORT int8 dynamic", NONE, 0.0, Int8DynamicConfig(), ORT),
    Variant("ORT int8 static", NONE, 0.0, Int8StaticConfig(), ORT),
    Variant("ORT int4", NONE, 0.0, Int4WeightOnlyConfig(), ORT),
    Variant("50% heads+FFN ORT int8", STRUCTURED, 0.5, Int8DynamicConfig(), ORT),
    Variant("compiled fp32", NONE, 0.0, Float32Config(), COMPILED),
    Variant("compiled bf16", NONE, 0.0, BFloat16Config(), COMPILED),
    Variant("compiled int8 dynamic", NONE, 0.0, Int8DynamicConfig(), COMPILED),
    Variant("compiled int8 static", NONE, 0.0, Int8StaticConfig(), COMPILED),
    Variant("50% heads+FFN compiled int8", STRUCTURED, 0.5, Int8DynamicConfig(), COMPILED),
    Variant("50% heads+FFN compiled int8 static", STRUCTURED, 0.5, Int8StaticConfig(), COMPILED),
    Variant("50% heads+FFN compiled bf16", STRUCTURED, 0.5, BFloat16Config(), COMPILED),
]


def _minilm():
    """The cached fine-tuned baseline, its tokenizer and the task (quality is measured)."""
    prepared = prepare(OmegaConf.to_object(compose_config()))
    baseline = prepared.baseline
    return baseline.load_model, prepared.tokenizer, prepared.task, baseline.info["outputs"]


def _bert_base():
    """BERT-base shape with random weights (no BERT-base weights ship offline): speed only.
    It shares MiniLM's uncased WordPiece vocabulary, so MiniLM's tokenizer feeds it."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    cfg = compose_config()
    task = build_task(OmegaConf.to_object(cfg.task))
    cache = Path(cfg.paths.cache_dir).expanduser()
    tokenizer = AutoTokenizer.from_pretrained(sources.resolve(cfg.model.name_or_path, cache))

    def build():
        torch.manual_seed(0)
        return BertForSequenceClassification(BertConfig(num_labels=2)).eval()

    return build, tokenizer, task, None


def _compress(variant: Variant, build, context: CompressionContext, folder: Path):
    model = build()
    start = time.perf_counter()
    prune_model(variant.prune, model, variant.amount, context)
    flops = {batch: forward_flops(model, batch, 128) for batch in (1, 8)}
    compressed = compress_on(variant.backend, model, variant.quant, context, folder)
    seconds = time.perf_counter() - start
    return compressed, seconds, flops


def run(
    model_name: str,
    repeats: int,
    warmup: int,
    quality: bool,
    variants: list[Variant],
) -> tuple[pd.DataFrame, dict[str, Peak]]:
    quiet_libraries()
    threads = default_threads()
    torch.set_num_threads(threads)
    build, tokenizer, task, reference = {"minilm": _minilm, "bert-base": _bert_base}[model_name]()
    # compiled variants keep their packages in the jobs' cache: later processes load them
    cache = Path(compose_config().paths.cache_dir).expanduser()
    context = CompressionContext(
        calibration=partial(task.calibration_batches, tokenizer), cache_dir=cache
    )
    rows, runners = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        for variant in variants:
            folder = Path(scratch) / variant.label.replace(" ", "_").replace("%", "")
            compressed, seconds, flops = _compress(variant, build, context, folder)
            row = {"method": variant.label, "disk_bytes": disk_bytes(folder),
                   "compress_s": seconds, "dtype": COMPUTE[variant.quant.name],
                   **{f"flops_b{b}": f for b, f in flops.items()}}  # fmt: skip
            if quality and reference is not None:
                scores, _ = task.evaluate(compressed.model, tokenizer, reference=reference)
                row |= {"accuracy": scores["accuracy"], "agreement": scores["agreement"]}
            if variant.backend is TORCH:  # the saved artifact must load back
                load_artifact(folder)
            rows.append(row)
            runners[variant.label] = compressed.model
            print(f"built {variant.label}: {row['disk_bytes'] / 1e6:.1f} MB", flush=True)
        table = pd.DataFrame(rows).set_index("method")
        before = {d: measured_peak(d, threads) for d in table["dtype"].unique()}
        for batch in (1, 8):
            latency = task.measure_speed(runners, tokenizer, batch,
                                         _bench(repeats, warmup))  # fmt: skip
            table[f"p50_ms_b{batch}"] = [latency[m]["p50_ms"] for m in table.index]
            table[f"cv_b{batch}"] = [latency[m]["cv"] for m in table.index]
        after = {d: measured_peak(d, threads) for d in before}
        peaks = {d: max(before[d], after[d], key=lambda p: p.ops_per_s) for d in before}
        table["peak_gops"] = table["dtype"].map(lambda d: peaks[d].ops_per_s / 1e9)
        for batch in (1, 8):
            seconds = table[f"p50_ms_b{batch}"] / 1000
            table[f"floor_b{batch}"] = table[f"flops_b{batch}"] / 1e9 / table["peak_gops"] / seconds
    fp32 = table.loc["torch fp32"]
    table["size_ratio"] = table["disk_bytes"] / fp32["disk_bytes"]
    for batch in (1, 8):
        table[f"latency_ratio_b{batch}"] = table[f"p50_ms_b{batch}"] / fp32[f"p50_ms_b{batch}"]
    if "accuracy" in table:
        table["accuracy_delta"] = table["accuracy"] - fp32["accuracy"]
    return table, peaks


def _bench(repeats: int, warmup: int):
    from compress.config.bench import BenchConfig

    return BenchConfig(seq_len=128, warmup=warmup, repeats=repeats, cold_load=False)


def _chosen(labels: list[str] | None) -> list[Variant]:
    """The variants named (all by default), torch fp32 first: every ratio's reference."""
    known = {v.label: v for v in VARIANTS}
    unknown = sorted(set(labels or []) - set(known))
    if unknown:
        raise SystemExit(f"error: unknown variant {unknown}, accepted: {sorted(known)}")
    names = ["torch fp32", *[n for n in labels or known if n != "torch fp32"]]
    return [known[name] for name in names]


def _in_processes(args: argparse.Namespace) -> pd.DataFrame:
    """The loop run in ``args.processes`` fresh processes in turn; the median of each figure."""
    tables = []
    for part in range(args.processes):
        command = [
            sys.executable,
            __file__,
            "--model",
            args.model,
            "--repeats",
            str(args.repeats),
            "--warmup",
            str(args.warmup),
            "--part",
            str(part),
        ]
        command += ["--only", *args.only] if args.only else []  # fmt: skip
        subprocess.run(command, check=True)
        stem = _stem(args.model, part)
        tables.append(pd.read_csv(f"{stem}.csv", index_col="method"))
    stacked = pd.concat(tables)
    return stacked.groupby(level="method", sort=False).median()


def _stem(model: str, part: int | None) -> Path:
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    return out / f"compression_{model}" if part is None else out / f"compression_{model}_part{part}"


def _write(table: pd.DataFrame, stem: Path, header: str) -> None:
    table.to_csv(f"{stem}.csv")
    markdown = header + table.to_markdown(floatfmt=".3f")
    Path(f"{stem}.md").write_text(markdown + "\n")
    Path(f"{stem}.json").write_text(json.dumps(table.reset_index().to_dict("records"), indent=1))
    print(markdown, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["minilm", "bert-base"], default="minilm")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--only", nargs="+", metavar="VARIANT", help="these variants only")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--part", type=int, help=argparse.SUPPRESS)  # one of --processes
    args = parser.parse_args()
    header = (
        f"{args.model}, seq 128, {default_threads()} threads, CPU flags {list(cpu_flags())}, "
        f"torch {torch.__version__}, median of {args.repeats} interleaved repeats"
        + (f", then the median over {args.processes} processes" if args.processes > 1 else "")
    )
    if args.processes > 1:
        note = "; each process measured its own arithmetic peak (peak_gops: their median)"
        _write(_in_processes(args), _stem(args.model, None), f"{header}{note}\n\n")
        return
    variants = _chosen(args.only)
    quality = args.model == "minilm" and not args.part  # deterministic: measured once
    table, peaks = run(args.model, args.repeats, args.warmup, quality, variants)
    methods = "; ".join(peak.method for peak in peaks.values())
    columns = ["size_ratio", "latency_ratio_b1", "latency_ratio_b8", "floor_b1", "floor_b8"]
    columns += ["accuracy_delta", "agreement"] if "accuracy_delta" in table else []
    columns += ["p50_ms_b1", "p50_ms_b8", "cv_b1", "cv_b8", "peak_gops", "disk_bytes"]
    header += f". Arithmetic floor: {methods} (the larger of before and after the timing)\n\n"
    _write(table[columns], _stem(args.model, args.part), header)


if __name__ == "__main__":
    main()
