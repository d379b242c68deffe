"""The baseline's default training on data shapes it was not tuned on: what it learned, how
long it trained, and why it stopped.

    python benchmarks/baseline_shapes.py [--shapes tiny,three_classes,...] [--out DIR]

Each shape is written as local CSV files and run as one light job (``prune=0 quant=fp32``,
a brief timing) with a fresh MiniLM head and the generic ``task.finetune`` defaults, in its
own cache folder so every baseline is trained here. One row per shape: train / validation /
held-out rows, classes, epochs and steps trained, the stop reason, the best validation
macro-F1, the held-out F1 (macro; of class 1 for two classes) and accuracy against the majority
class (the gate's exact binomial p), and the training seconds. ``three_classes`` is a user's
3-class case: the 723 utterances of three chatterbot categories in a train and an eval file,
some eval texts repeated from training.
``shuffled`` is ``tiny`` with its labels permuted: the gate must fire.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress.pipeline.job import run_job  # noqa: E402
from compress.pipeline.prepare import compose_config  # noqa: E402
from tests.compress.tasks import shapes  # noqa: E402

LIGHT = ["task=classification", "prune_method=none", "prune=0", "quant=fp32", "job.isolate=false",
         "bench.cold_load=false", "bench.repeats=3", "bench.warmup=1", "batch_size=1",
         "keep_artifact=false"]  # fmt: skip
PAIRS = ["task.data.text_column=a", "task.data.text_pair_column=b", "task.data.label_column=topic"]


def _three_classes(folder: Path) -> list[str]:
    """The 723 utterances of the three largest chatterbot categories: 500 in the train file,
    the other 223 and 15 copied from the train file (as a user's short repeated statements
    are) in the eval file."""
    frame = shapes.many_classes(classes=3, each=300)
    train, held_out = frame.iloc[:500], frame.iloc[500:]
    held_out = pd.concat([held_out, train.iloc[:15]])
    train_file = shapes.write(train, folder / "three_train.csv")
    eval_file = shapes.write(held_out, folder / "three_eval.csv")
    return [f"task.data.files.train={train_file}", f"task.data.files.eval={eval_file}"]


def _one_file(build, *columns: str):
    def overrides(folder: Path, name: str) -> list[str]:
        return [f"task.data.files.train={shapes.write(build(), folder / f'{name}.csv')}", *columns]

    return overrides


SHAPES = {
    "tiny": _one_file(shapes.tiny),
    "imbalanced": _one_file(shapes.imbalanced),
    "many_classes": _one_file(shapes.many_classes),
    "long_texts": _one_file(shapes.long_texts, "task.max_length=256"),
    "pairs": _one_file(shapes.exchanges, *PAIRS),
    "three_classes": lambda folder, name: _three_classes(folder),
    "shuffled": _one_file(lambda: shapes.shuffled(shapes.tiny())),
}


def _row(name: str, record: dict) -> dict:
    baseline = record["baseline"]
    data, gate, training = baseline["data"], baseline["gate"], baseline["training"]
    quality = baseline["quality"]
    return {
        "shape": name,
        "train/val/eval": f"{data['train']}/{data['validation']}/{gate['n']}",
        "classes": len(quality.get("f1_per_class") or {}) or 2,
        "eval dropped": data.get("eval_overlap", 0),
        "max_length": data.get("max_length"),
        "epochs": training["epochs"],
        "steps": training["steps"],
        "stopped": training["stopped"]["reason"],
        "best val macro-F1": round(training["best"]["validation_f1_macro"], 3),
        "eval F1": round(quality.get("f1_macro", quality["f1"]), 3),
        "eval acc": round(gate["accuracy"], 3),
        "majority": round(gate["majority_share"], 3),
        "gate p": f"{gate['p_value']:.2g}",
        "learned": baseline["learned"],
        "train s": round(training["seconds"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--out", type=Path, default=ROOT / "multirun" / "baseline_shapes")
    args = parser.parse_args()
    rows = []
    for name in args.shapes.split(","):
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        cfg = compose_config([*LIGHT, *SHAPES[name](folder, name)])
        cfg.paths.output_dir, cfg.paths.cache_dir = str(folder / "job"), str(folder / "cache")
        rows.append(_row(name, run_job(cfg)))
        print(pd.DataFrame(rows).to_string(index=False), flush=True)


if __name__ == "__main__":
    main()
