"""Cold load in a fresh process: time to load a saved artifact and run its first batch, and
the process's peak resident memory (a clean figure, since nothing else was loaded).

Run as ``python -m compress.pipeline.coldload <artifact dir> --batch-size 8 --seq-len 128``;
prints one JSON line. :func:`measure_cold_load` runs it and parses that line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

from compress.config.bench import LoadMethod

_START = time.perf_counter()


def _from_pretrained(folder: Path):
    from compress.storage.artifact import architecture_class, read_manifest

    manifest = read_manifest(folder)
    special = [key for key in ("quantized", "sparse", "heads") if manifest.get(key)]
    if manifest.get("backend") != "torch" or special:
        raise ValueError(
            f"load_method=from_pretrained opens only plain float torch artifacts; {folder} has "
            f"{', '.join(special) or manifest.get('backend')}: use zero_copy or read"
        )
    return architecture_class(folder).from_pretrained(str(folder)).eval()


def _loader(method: str):
    from compress.backends import load_artifact

    loaders = {
        "zero_copy": partial(load_artifact, zero_copy=True),
        "read": partial(load_artifact, zero_copy=False),
        "from_pretrained": _from_pretrained,
    }
    return loaders[method]


def _measure(folder: Path, batch_size: int, seq_len: int, threads: int, method: str) -> dict:
    import torch

    from compress.backends import import_runtime
    from compress.infra.quiet import quiet_libraries

    quiet_libraries()
    import_runtime(folder)  # library code is imported here, not inside the timed load
    load = _loader(method)
    imported = time.perf_counter()
    torch.set_num_threads(threads)
    model = load(folder)
    loaded = time.perf_counter()
    vocab = int(getattr(model.config, "vocab_size", 1000))
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, vocab, (batch_size, seq_len), generator=generator)
    with torch.inference_mode():
        model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids))
    done = time.perf_counter()
    return {
        "method": method,
        "import_s": imported - _START,
        "load_s": loaded - imported,
        "first_batch_ms": (done - loaded) * 1000.0,
        "peak_rss_bytes": _peak_rss_bytes(),
    }


def _peak_rss_bytes() -> int:
    """This process's resident high-water mark. ``getrusage`` is wrong here: Linux carries
    ``ru_maxrss`` across ``exec``, so a child would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure_cold_load(
    folder: Path, batch_size: int, seq_len: int, threads: int, method: str = "zero_copy"
) -> dict:
    command = [
        sys.executable, "-m", "compress.pipeline.coldload", str(folder),
        "--batch-size", str(batch_size), "--seq-len", str(seq_len), "--threads", str(threads),
        "--method", method,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"cold load of {folder} failed: {tail[0]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--method", default="zero_copy", choices=[m.value for m in LoadMethod])
    args = parser.parse_args(argv)
    measured = _measure(args.folder, args.batch_size, args.seq_len, args.threads, args.method)
    print(json.dumps(measured))


if __name__ == "__main__":
    main()
