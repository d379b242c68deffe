"""What every quantization handler, on every backend, reports about its work."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class QuantReport:
    """``layers_quantized``: modules converted; ``notes``: caveats a reader of the record must
    know (such as a dtype this CPU has no arithmetic units for). ``bits_per_weight``: bits
    the artifact stores per weight of a quantized Linear (scales and zero points included;
    the float width for float levels), so that 4-bit levels with different group sizes and
    scale formats compare; ``kernel``: the op that multiplies by those weights;
    ``kept_float``: the Linears ``quant.keep_float`` kept float, most sensitive first."""

    level: str
    weight_dtype: str
    layers_quantized: int
    notes: list[str] = field(default_factory=list)
    bits_per_weight: float | None = None
    kernel: str | None = None
    kept_float: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)
