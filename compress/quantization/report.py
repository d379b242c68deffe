"""What every quantization handler, on every backend, reports about its work."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class QuantReport:
    """``layers_quantized``: modules converted; ``notes``: caveats a reader of the record must
    know (such as a dtype this CPU has no arithmetic units for)."""

    level: str
    weight_dtype: str
    layers_quantized: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)
