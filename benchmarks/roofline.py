"""How far a measured forward pass is from what the CPU's arithmetic could do.

``forward_flops`` counts the multiply-adds of a transformer encoder's forward pass from the
model itself (every Linear's shape, and the two attention matrix products per block with the
heads that are left), so pruned models count what they really compute. ``measured_peak`` is
the arithmetic peak of the cores in use for a dtype, *measured* by a hand loop of independent
multiply-add chains in the widest instruction this CPU has (``peak_loop.c``: FMA for fp32,
bf16 or VNNI int8 dot products where present), built for this machine and run on ``threads``
threads, the best of a few runs. A peak from a table (instructions per cycle times the clock
the OS reports) is no bound: a CPU with two AVX-512 FMA units, or one in turbo, beats it, and
the fraction of the floor came out above 1 (1.46 on an Intel Xeon). The floor is FLOPs / peak;
a variant's fraction of it is floor / measured time, below 1 because no kernel outruns the
loop.
"""

from __future__ import annotations

import ctypes
import hashlib
import subprocess
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from torch import nn

SOURCE = Path(__file__).with_name("peak_loop.c")
KINDS = {"fp32": 0, "bf16": 1, "int8": 2}


def forward_flops(model: nn.Module, batch: int, seq_len: int) -> float:
    """FLOPs (2 per multiply-add) of one forward pass of ``batch`` sequences."""
    tokens = batch * seq_len
    linear = sum(m.in_features * m.out_features for m in model.modules()
                 if isinstance(m, nn.Linear))  # fmt: skip
    queries = [m for name, m in model.named_modules() if name.endswith(("query", "q_proj", ".q"))]
    attention = sum(2 * seq_len * q.out_features for q in queries)  # QK^T and AV per token
    return 2.0 * tokens * (linear + attention)


@cache
def _library() -> ctypes.CDLL:
    """``peak_loop.c`` built for this CPU (-march=native), once per source version."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    library = Path(tempfile.gettempdir()) / f"compress-peak-{digest}.so"
    if not library.exists():
        staging = library.with_suffix(f".{time.time_ns()}.so")
        command = ["gcc", "-O3", "-march=native", "-fopenmp", "-shared", "-fPIC",
                   str(SOURCE), "-o", str(staging)]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True)
        staging.replace(library)
    loaded = ctypes.CDLL(str(library))
    loaded.kernel.restype = ctypes.c_char_p
    loaded.ops_per_second.restype = ctypes.c_double
    loaded.ops_per_second.argtypes = [ctypes.c_int, ctypes.c_long, ctypes.c_int,
                                      ctypes.POINTER(ctypes.c_double)]  # fmt: skip
    return loaded


@dataclass(frozen=True)
class Peak:
    """A measured arithmetic peak (FLOP/s, or OP/s for int8) and how it was obtained."""

    dtype: str
    ops_per_s: float
    threads: int
    kernel: str

    @property
    def method(self) -> str:
        return (f"{self.dtype} peak {self.ops_per_s / 1e9:.0f} G/s measured by a hand loop of "
                f"12 independent chains ({self.kernel}) on {self.threads} threads")  # fmt: skip


def _timed(kind: int, iterations: int, threads: int) -> tuple[float, float]:
    """Operations per second of one run of the loop, and the run's wall time."""
    sink = ctypes.c_double()
    start = time.perf_counter()
    rate = _library().ops_per_second(kind, iterations, threads, ctypes.byref(sink))
    return rate, time.perf_counter() - start


def measured_peak(dtype: str, threads: int, seconds: float = 0.2, repeats: int = 5) -> Peak:
    """The best of ``repeats`` runs of about ``seconds`` each of the hand loop for ``dtype``
    (the iteration count doubled from a small one until a run takes a tenth of that)."""
    kind, iterations = KINDS[dtype], 1_000
    while (elapsed := _timed(kind, iterations, threads)[1]) < seconds / 10:
        iterations *= 2
    iterations = int(iterations * seconds / elapsed)
    best = max(_timed(kind, iterations, threads)[0] for _ in range(repeats))
    return Peak(dtype, best, threads, _library().kernel(kind).decode())
