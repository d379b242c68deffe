"""Quantized module kinds that torch does not ship ready to drop into a float model."""

from __future__ import annotations

import torch
from torch import nn
from torch.ao.nn import quantized

from compress.infra.environment import has_native_bf16
from compress.quantization.grid import int4_dequantize, int4_value, unpack_nibbles


def float_matmul_from_rows(native_bf16: bool) -> int | None:
    """From how many input rows the weight-only int8 Linear multiplies in float32 on its
    weight dequantized for the call, instead of on torch's int8 kernel; None: never.

    The kernel takes bfloat16 activations. A CPU without bf16 units (every AVX2 one, AVX-512
    before avx512_bf16) rounds them in software, and the kernel then costs more per row than
    a float32 matmul: a 576x1536 Linear, 2 threads, AVX2 EPYC, 4.2 ms on the kernel vs 2.9 ms
    dequantized + float32 at 128 rows, 11.8 vs 7.4 ms at 512, while one row (a decoding step)
    takes 0.2 ms on the kernel and 1.5 ms dequantized (``benchmarks/weight_only_kernels.py``)."""
    return None if native_bf16 else 128


# Chosen once, by this CPU's flags (the level's notes say which ran).
FLOAT_MATMUL_FROM_ROWS = float_matmul_from_rows(has_native_bf16())


class StaticInt8Linear(nn.Module):
    """A Linear with int8 weights (per output channel) and int8 activations whose ranges were
    fixed by calibration: float in, float out, so it replaces ``nn.Linear`` anywhere.

    The input is quantized with the calibrated scale, multiplied by fbgemm's int8 kernel,
    requantized to the calibrated output range and dequantized.
    """

    def __init__(self, linear: quantized.Linear, input_scale: float, input_zero_point: int):
        super().__init__()
        self.linear = linear
        self.input_scale = input_scale
        self.input_zero_point = input_zero_point
        self.in_features = linear.in_features
        self.out_features = linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1]).float()
        q = torch.quantize_per_tensor(flat, self.input_scale, self.input_zero_point, torch.quint8)
        return self.linear(q).dequantize().reshape(*shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class Int8Embedding(quantized.Embedding):
    """torch's weight-only int8 embedding lookup (uint8 rows, a float scale and offset per
    row) made a drop-in for ``nn.Embedding``: its kernel rejects non-contiguous index views,
    which transformers passes (sliced position ids, expanded token type ids)."""

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return super().forward(indices.contiguous())


class PackedLinear(nn.Module):
    """A Linear whose weight is held as integers in the layout its CPU kernel reads: float in,
    float out, so it replaces ``nn.Linear`` anywhere (``KERNEL`` names the op that runs).

    ``stored()`` gives the plain tensors that rebuild it exactly (what an artifact keeps; see
    :mod:`.codecs`), ``from_stored`` rebuilds it from them, possibly memory-mapped: nothing
    is copied that the kernel can read as stored. The tensors are non-persistent buffers:
    they reach the file through the codec, never through the state dict.
    """

    KERNEL = ""
    # inputs of this many rows or more multiply on product_bfloat16 (None: never); set only
    # while a compiled prefill is captured (compress.backends.compiled.decoding), where
    # Inductor fuses the weight's dequantization into one pass
    bfloat16_from_rows: int | None = None
    # stored tensor name -> attribute ("weight" for a plain integer matrix: stored sparse
    # when pruning left it mostly zeros, see compress.storage.sparse)
    STORED: dict[str, str] = {}

    def __init__(self, out_features: int, in_features: int, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("bias", None if bias is None else bias.detach(), persistent=False)

    def _keep(self, **tensors: torch.Tensor) -> None:
        for name, tensor in tensors.items():
            self.register_buffer(name, tensor, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).float().contiguous()
        rows = self.bfloat16_from_rows
        out = self.product_bfloat16(flat) if rows and flat.shape[0] >= rows else self.product(flat)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def product(self, flat: torch.Tensor) -> torch.Tensor:
        """``flat @ W.T`` for a 2-D float32 input."""
        raise NotImplementedError

    def product_bfloat16(self, flat: torch.Tensor) -> torch.Tensor:
        """``flat @ W.T`` as a bfloat16 matmul on the weight dequantized for the call: for
        many rows on a CPU with bf16 units, where the integer kernel dequantizes each tile
        again for every few rows (SmolLM2's 1536x576 int4 Linear at 128 rows, 2 threads,
        AVX-512 EPYC: 765 us on the kernel, 501 us dequantized in one compiled pass and
        multiplied in bfloat16). Eager, the dequantization takes several passes and loses."""
        raise NotImplementedError

    def stored(self) -> dict[str, torch.Tensor]:
        tensors = {key: getattr(self, attribute) for key, attribute in self.STORED.items()}
        return tensors | ({} if self.bias is None else {"bias": self.bias})

    def dequantized_weight(self) -> torch.Tensor:
        """The float32 ``[out, in]`` weight the stored integers and scales stand for."""
        raise NotImplementedError

    def rows(self, indices: torch.Tensor) -> torch.Tensor:
        """Float32 rows ``indices`` of the weight (the lookup of a tied input embedding)."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class Int8WeightOnlyLinear(PackedLinear):
    """int8 weights (one symmetric scale per output row), float activations: torch's
    weight-only int8 CPU kernel converts the weights as it multiplies. The kernel is fast for
    bfloat16 activations only (its float32 path is a reference loop, ~40x slower than a
    float32 matmul), so activations and scales go in as bfloat16, and the output comes back
    in float32 (it carries bfloat16 rounding, ~0.2% relative). On a CPU without bf16 units,
    inputs of :data:`FLOAT_MATMUL_FROM_ROWS` rows or more skip the kernel (see
    :func:`float_matmul_from_rows`)."""

    KERNEL = "aten._weight_int8pack_mm"
    STORED = {"weight": "weight_int8", "scale": "scale"}

    def __init__(self, weight_int8: torch.Tensor, scale: torch.Tensor, bias=None) -> None:
        super().__init__(*weight_int8.shape, bias)
        self._keep(weight_int8=weight_int8, scale=scale)

    @classmethod
    def from_stored(cls, stored: dict[str, torch.Tensor]) -> Int8WeightOnlyLinear:
        return cls(stored["weight"], stored["scale"], stored.get("bias"))

    def product(self, flat: torch.Tensor) -> torch.Tensor:
        if FLOAT_MATMUL_FROM_ROWS is not None and flat.shape[0] >= FLOAT_MATMUL_FROM_ROWS:
            return nn.functional.linear(flat, self.dequantized_weight())
        out = torch.ops.aten._weight_int8pack_mm(flat.bfloat16(), self.weight_int8, self.scale)
        return out.float()

    def product_bfloat16(self, flat: torch.Tensor) -> torch.Tensor:
        # int8 levels are exact in bfloat16: the scale goes on the output, as in the kernel
        return (flat.bfloat16() @ self.weight_int8.bfloat16().t()).float() * self.scale.float()

    def dequantized_weight(self) -> torch.Tensor:
        return self.weight_int8.float() * self.scale.float()[:, None]

    def rows(self, indices: torch.Tensor) -> torch.Tensor:
        return self.weight_int8[indices].float() * self.scale[indices].float()[:, None]


class DynamicInt8Linear(Int8WeightOnlyLinear):
    """W8A8: int8 weights per output row (float32 scales), and each token's activations
    quantized to int8 on the fly with its own symmetric scale; the integer product (int32
    accumulation) runs on ``torch._int_mm`` (oneDNN, VNNI where the CPU has it) and is scaled
    back to float32."""

    KERNEL = "aten._int_mm"

    def product(self, flat: torch.Tensor) -> torch.Tensor:
        token_scale = flat.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127
        tokens = (flat / token_scale).round().clamp(-127, 127).to(torch.int8)
        return torch._int_mm(tokens, self.weight_int8.t()).float() * token_scale * self.scale


class Int4Linear(PackedLinear):
    """4-bit weights, ``scale * (level - 8) + zero`` per group of ``group_size`` consecutive
    inputs (bfloat16 scales and zeros, see :func:`compress.quantization.grid.int4_params`),
    on torch's int4 CPU kernel, which like the int8 one is fast for bfloat16 activations only
    (they go in as bfloat16, the output comes back as float32).

    The file keeps two levels per byte in a layout that is the same on every CPU
    (``packed``); the kernel's own tile layout depends on the vector width, so it is built
    here, with the kernel's table of scales and zeros (the stored ones, as they are)."""

    KERNEL = "aten._weight_int4pack_mm_for_cpu"
    STORED = {"packed": "packed", "scale": "scale", "zero": "zero"}

    def __init__(self, packed: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bias=None):
        super().__init__(packed.shape[0], 2 * packed.shape[1], bias)
        self.group_size = self.in_features // scale.shape[1]
        self._keep(packed=packed, scale=scale, zero=zero)
        levels = unpack_nibbles(packed).to(torch.int32)
        weight = torch.ops.aten._convert_weight_to_int4pack_for_cpu(levels, 1)
        table = torch.stack([scale, zero], dim=-1).transpose(0, 1).bfloat16().contiguous()
        self._keep(kernel_weight=weight, kernel_scales=table)

    @staticmethod
    def fits(linear: nn.Linear, group_size: int) -> bool:
        """The kernel's shape limits: outputs a multiple of 16, inputs of the group size."""
        return linear.out_features % 16 == 0 and linear.in_features % group_size == 0

    @classmethod
    def from_stored(cls, stored: dict[str, torch.Tensor]) -> Int4Linear:
        return cls(stored["packed"], stored["scale"], stored["zero"], stored.get("bias"))

    def product(self, flat: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten._weight_int4pack_mm_for_cpu(
            flat.bfloat16(), self.kernel_weight, self.group_size, self.kernel_scales
        ).float()

    def product_bfloat16(self, flat: torch.Tensor) -> torch.Tensor:
        # The weight's columns in the stored bytes' order (every low level, then every high
        # one), the input's reordered to match: interleaving the levels back costs Inductor a
        # separate copy (304 vs 60 us for 1536x576), reordering the input a few rows does not.
        out, half = self.packed.shape
        by_group = (out, self.scale.shape[1], -1)
        scale, zero = self.scale.float()[..., None], self.zero.float()[..., None]
        low, high = (
            int4_value(levels.view(by_group).float(), scale, zero).view(out, half)
            for levels in (self.packed & 0x0F, self.packed >> 4)
        )
        weight = torch.cat([low, high], dim=1).bfloat16()
        rows = flat.shape[0]
        reordered = flat.bfloat16().view(rows, half, 2).transpose(1, 2).reshape(rows, -1)
        return (reordered @ weight.t()).float()

    def dequantized_weight(self) -> torch.Tensor:
        levels = unpack_nibbles(self.packed)
        return int4_dequantize(levels, self.scale, self.zero, self.group_size)

    def rows(self, indices: torch.Tensor) -> torch.Tensor:
        levels = unpack_nibbles(self.packed[indices])
        return int4_dequantize(levels, self.scale[indices], self.zero[indices], self.group_size)


def embedding_scale(embedding: nn.Module) -> float:
    """The factor an input embedding multiplies its rows by (Gemma's ``embed_scale``, the
    square root of the hidden size; 1 for a plain ``nn.Embedding``)."""
    return float(getattr(embedding, "embed_scale", 1.0))


class TiedEmbedding(nn.Module):
    """The input embedding of a model whose LM head shares its weight (SmolLM2, GPT-2,
    Gemma), once that head is a :class:`PackedLinear`: the lookup dequantizes rows of the
    head's integer weight (times the embedding's own ``scale``, see
    :func:`embedding_scale`), so the table is stored and held once, as in the float model,
    and quantized.

    The head is bound with :meth:`bind` and is not a submodule, so that it keeps its one
    qualified name (the one its codec stores it under)."""

    def __init__(self, padding_idx: int | None = None, scale: float = 1.0) -> None:
        super().__init__()
        self.padding_idx = padding_idx
        self.scale = scale
        self.__dict__["head"] = None

    def bind(self, head: PackedLinear) -> TiedEmbedding:
        self.__dict__["head"] = head
        return self

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        rows = self.head.rows(indices.reshape(-1)).reshape(*indices.shape, -1)
        return rows * self.scale if self.scale != 1.0 else rows

    def extra_repr(self) -> str:
        return f"rows of the quantized {type(self.head).__name__} it is tied to, scale={self.scale}"
