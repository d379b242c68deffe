"""The benchmarks' arithmetic peak is measured, not read from a table: the hand loop runs the
widest multiply-add this CPU has, and a real GEMM never outruns it (a fraction of the floor
above 1 was the defect of the table peak)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from compress.infra.environment import cpu_flags

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
roofline = pytest.importorskip("roofline")
pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="the hand loop needs gcc")


def test_the_peak_says_how_it_was_measured():
    """Whether a torch GEMM stays under it is a timing, checked by the benchmark that uses it
    (benchmarks/compression.py prints the fraction of the peak; timings are no tests)."""
    peak = roofline.measured_peak("fp32", threads=1, seconds=0.1)
    assert peak.threads == 1 and "vfmadd" in peak.kernel and "hand loop" in peak.method
    assert peak.ops_per_s > 0


def test_each_dtype_runs_the_instruction_this_cpu_has():
    flags = set(cpu_flags())
    bf16 = roofline.measured_peak("bf16", threads=1, seconds=0.05).kernel
    assert ("vdpbf16ps" in bf16) == ("avx512_bf16" in flags)
    int8 = roofline.measured_peak("int8", threads=1, seconds=0.05).kernel
    assert ("vpdpbusd" in int8) == bool({"avx512_vnni", "avx_vnni"} & flags)
