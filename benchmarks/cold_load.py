"""Cold load of the same weights by four methods, each in fresh processes, side by side.

    python benchmarks/cold_load.py [--repeats 7] [--artifact DIR]

Methods: transformers ``from_pretrained``, ``torch.load`` of a state dict into a skeleton,
our loader reading the safetensors file (``read``), and our loader mapping it without a copy
(``zero_copy``); plus ``zero_copy`` of an int8 artifact of the same model. Each repetition
runs every method once, in rotating order, in a new Python process; the table gives median
load time, load + first batch (batch 1, 128 tokens) and ratios against ``from_pretrained``.
Library imports are done before the clock starts. The page cache is warm (no root access
to drop it), so this is load work, not disk speed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _child(method: str, folder: Path) -> None:
    """Runs in the fresh process: import, then time the load and the first batch."""
    import torch
    from transformers.initialization import no_init_weights

    from compress.backends import load_artifact
    from compress.infra.quiet import quiet_libraries
    from compress.storage.artifact import architecture_class

    quiet_libraries()
    architecture = architecture_class(folder)
    torch.set_num_threads(2)
    start = time.perf_counter()
    if method == "from_pretrained":
        model = architecture.from_pretrained(str(folder)).eval()
    elif method == "torch_load":
        config = architecture.config_class.from_pretrained(str(folder))
        with no_init_weights():
            model = architecture._from_config(config).eval()
        model.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
    else:
        model = load_artifact(folder, zero_copy=method == "zero_copy")
    loaded = time.perf_counter()
    ids = torch.randint(0, 1000, (1, 128))
    with torch.inference_mode():
        model(input_ids=ids, attention_mask=torch.ones_like(ids))
    done = time.perf_counter()
    print(json.dumps({"load_s": loaded - start, "first_batch_s": done - loaded}))


def _run(method: str, folder: Path) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", method, str(folder)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])


def _artifacts(scratch: Path, source: Path | None) -> dict[str, Path]:
    """The default model's fp32 artifact (plus a .pt copy) and an int8 one of the same model."""
    import torch

    from compress.backends import load_artifact
    from compress.backends.torch.artifact import save_artifact
    from compress.backends.torch.quantize import quantize_
    from compress.config.quant import Int8DynamicConfig
    from compress.infra.context import CompressionContext

    if source is None:
        from omegaconf import OmegaConf

        from compress.pipeline.prepare import compose_config, prepare

        model = prepare(OmegaConf.to_object(compose_config())).reference
    else:
        model = load_artifact(source)
    fp32 = scratch / "fp32"
    save_artifact(model, fp32)
    torch.save(model.state_dict(), fp32 / "model.pt")
    quantize_(Int8DynamicConfig(), model, CompressionContext())
    save_artifact(model, scratch / "int8")
    return {"fp32": fp32, "int8": scratch / "int8"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--artifact", type=Path, help="a float artifact (default: MiniLM)")
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], Path(args.child[1]))
        return
    methods = [
        ("from_pretrained", "fp32"), ("torch_load", "fp32"), ("read", "fp32"),
        ("zero_copy", "fp32"), ("zero_copy", "int8"),
    ]  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folders = _artifacts(Path(scratch), args.artifact)
        for repeat in range(args.repeats):
            shift = repeat % len(methods)
            for method, kind in methods[shift:] + methods[:shift]:
                rows.append({"method": f"{method} ({kind})", **_run(method, folders[kind])})
    table = pd.DataFrame(rows).groupby("method", sort=False).median()
    table["load_plus_first_s"] = table["load_s"] + table["first_batch_s"]
    reference = table.loc["from_pretrained (fp32)"]
    table["load_ratio"] = table["load_s"] / reference["load_s"]
    table["speedup_vs_from_pretrained"] = reference["load_s"] / table["load_s"]
    table["load_plus_first_ratio"] = table["load_plus_first_s"] / reference["load_plus_first_s"]
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "cold_load.csv")
    markdown = f"median of {args.repeats} fresh processes each\n\n" + table.to_markdown(
        floatfmt=".3f"
    )
    (out / "cold_load.md").write_text(markdown + "\n")
    print(markdown)


if __name__ == "__main__":
    main()
