"""Where a record was measured: library versions, hardware, threads and code revision."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from functools import cache
from pathlib import Path

import psutil

_PACKAGES = (
    "torch", "transformers", "hydra-core", "omegaconf", "safetensors", "numpy", "scikit-learn",
    "tokenizers",
)  # fmt: skip


def library_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0], "compress": "unknown"}
    for package in ("compress", *_PACKAGES):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


_NOTABLE_FLAGS = (
    "avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16",
    "amx_tile", "amx_bf16", "amx_fp16", "amx_int8",
)  # fmt: skip


# CPU features that give a dtype native arithmetic; without them torch converts on the fly.
NATIVE_BF16 = ("avx512_bf16", "amx_bf16")
NATIVE_FP16 = ("avx512_fp16", "amx_fp16")


@cache
def cpu_flags() -> tuple[str, ...]:
    """The CPU features that decide which kernels are fast here (vector width, int8 dot
    products, native bf16/fp16 arithmetic)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return ()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return tuple(f for f in _NOTABLE_FLAGS if f in flags)
    return ()


def hardware(threads: int) -> dict:
    return {
        "cpu_model": _cpu_model(),
        "cpu_flags": list(cpu_flags()),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "affinity_cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
        "threads": threads,
        "memory_bytes": psutil.virtual_memory().total,
        "platform": platform.platform(),
        "load_average_1m": os.getloadavg()[0],
    }


def git_revision(where: Path) -> dict:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(where), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    except (subprocess.CalledProcessError, FileNotFoundError):
        return {"commit": None, "dirty": None}


def default_threads() -> int:
    """One intra-op thread per physical core available to this process."""
    physical = psutil.cpu_count(logical=False) or 1
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else physical
    return max(1, min(physical, available))


def has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware."""
    return bool(set(NATIVE_BF16) & set(cpu_flags()))
