"""Which weight-only product is faster on this CPU, by input rows: torch's int8 and int4
kernels (bfloat16 activations) against a float32 matmul on the weight dequantized for the call.

The answer decides ``compress.backends.torch.modules.FLOAT_MATMUL_FROM_ROWS``: on a CPU
without bf16 units the int8 kernel rounds activations in software and loses to float32 from
some row count on.

    python benchmarks/weight_only_kernels.py                  # SmolLM2's FFN Linear, 2 threads
    python benchmarks/weight_only_kernels.py --shape 384 1536 --threads 1

Prints, per row count, the median ms of each product over interleaved repeats, and the ratio
of the dequantized float32 product to the kernel (below 1: dequantizing is faster).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from compress.backends.torch.modules import Int4Linear, Int8WeightOnlyLinear
from compress.infra.environment import cpu_flags
from compress.quantization.grid import int4_rtn, int8_per_channel, pack_nibbles


def products(out_features: int, in_features: int) -> dict[str, Callable]:
    weight = torch.randn(out_features, in_features, generator=torch.Generator().manual_seed(0))
    int8 = Int8WeightOnlyLinear(*int8_per_channel(weight * 0.02, torch.bfloat16))
    levels, scale, zero = int4_rtn(weight * 0.02, 64)
    int4 = Int4Linear(pack_nibbles(levels), scale, zero)

    def kernel_int8(x):  # the kernel itself, whatever the module would choose here
        return torch.ops.aten._weight_int8pack_mm(x.bfloat16(), int8.weight_int8, int8.scale)

    return {
        "int8 kernel": kernel_int8,
        "int8 dequantized": lambda x: torch.nn.functional.linear(x, int8.dequantized_weight()),
        "int4 kernel": int4.product,
        "int4 dequantized": lambda x: torch.nn.functional.linear(x, int4.dequantized_weight()),
        "fp32": lambda x: torch.nn.functional.linear(x, weight),
    }


def measure(functions: dict[str, Callable], x: torch.Tensor, repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in functions}
    for function in functions.values():
        function(x)  # warm-up
    for _ in range(repeats):  # interleaved: drift hits every product alike
        for name, function in functions.items():
            start = time.perf_counter()
            function(x)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) * 1e3 for name, values in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=2, default=[1536, 576], metavar=("OUT", "IN"))
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 8, 32, 64, 128, 256, 512])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    functions = products(*args.shape)
    print(f"CPU flags {list(cpu_flags())}, {args.threads} threads, Linear {args.shape[1]} -> "
          f"{args.shape[0]}, median ms of {args.repeats} interleaved repeats")  # fmt: skip
    print(
        "| rows | "
        + " | ".join(functions)
        + " | int8 dequantized / kernel | int4 dequantized / kernel |"
    )
    print("|---" * (len(functions) + 3) + "|")
    for rows in args.rows:
        x = torch.randn(rows, args.shape[1], generator=torch.Generator().manual_seed(rows))
        ms = measure(functions, x, args.repeats)
        ratios = [ms[f"{bits} dequantized"] / ms[f"{bits} kernel"] for bits in ("int8", "int4")]
        print(f"| {rows} | " + " | ".join(f"{v:.3f}" for v in ms.values())
              + f" | {ratios[0]:.2f} | {ratios[1]:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
