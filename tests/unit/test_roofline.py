"""The benchmarks' arithmetic peak is measured, not read from a table: the hand loop runs the
widest multiply-add this CPU has, and a real GEMM never outruns it (a fraction of the floor
above 1 was the defect of the table peak)."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest
import torch

from compress.infra.environment import cpu_flags

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
roofline = pytest.importorskip("roofline")
pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="the hand loop needs gcc")


def _gemm_flops_per_s(size: int = 512, calls: int = 20) -> float:
    """The best of three timings of ``calls`` fp32 matrix products on one thread."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(calls):
                torch.mm(a, b)
            best = min(best, time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return 2 * size**3 * calls / best


def test_a_gemm_reaches_at_most_the_measured_fp32_peak():
    peak = roofline.measured_peak("fp32", threads=1, seconds=0.1)
    assert _gemm_flops_per_s() <= peak.ops_per_s
    assert peak.threads == 1 and "vfmadd" in peak.kernel and "hand loop" in peak.method


def test_each_dtype_runs_the_instruction_this_cpu_has():
    flags = set(cpu_flags())
    bf16 = roofline.measured_peak("bf16", threads=1, seconds=0.05).kernel
    assert ("vdpbf16ps" in bf16) == ("avx512_bf16" in flags)
    int8 = roofline.measured_peak("int8", threads=1, seconds=0.05).kernel
    assert ("vpdpbusd" in int8) == bool({"avx512_vnni", "avx_vnni"} & flags)
