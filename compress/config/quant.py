"""``quant``: the quantization levels (each backend lists the ones it runs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from omegaconf import MISSING

from compress.config.errors import ConfigError, check_positive


@dataclass
class QuantConfig:
    """A quantization level; a backend lists the levels it runs in ``SUPPORTED``.

    ``skip``: modules kept in float (mixed precision), by qualified name: a glob
    (``*.down_proj``, ``lm_head``) or a regular expression matching the whole name
    (``model.layers.(0|1).mlp.down_proj``); a module inside a matching one (a Linear of a
    matching block) stays float too. A pattern that names no module of the model fails the
    job. Only the levels a backend lists in ``SKIPPABLE`` honour it; on the others a
    non-empty ``skip`` is refused before the job starts.

    ``keep_float``: also keep the K Linears float that harm the model most when quantized at
    this level, by the sensitivity ranking of this model, task, level and prune settings
    (computed once on calibration data, cached under ``paths.cache_dir/sensitivity``): a
    number, so mixed precision can be swept or searched. The K are counted among the Linears
    ``skip`` does not already keep float (the two add up); the record lists them under
    ``compression.quant.kept_float``. Refused where ``skip`` is.
    """

    name: str = MISSING
    skip: list[str] = field(default_factory=list)
    keep_float: int = 0

    def __post_init__(self) -> None:
        if self.keep_float < 0:
            raise ConfigError(
                f"quant.keep_float={self.keep_float} is negative",
                "0 (no Linear kept float by sensitivity), 1, 2, ...",
            )


@dataclass
class Float32Config(QuantConfig):
    """Weights and activations stay float32: the uncompressed reference level."""

    name: str = "fp32"


@dataclass
class Float16Config(QuantConfig):
    """Half precision weights and activations: fast only on CPUs with fp16 arithmetic
    (avx512_fp16, amx_fp16); elsewhere converted on the fly (the record notes it)."""

    name: str = "fp16"


@dataclass
class BFloat16Config(QuantConfig):
    """bfloat16 weights and activations: fast on CPUs with avx512_bf16 or amx_bf16;
    elsewhere converted on the fly (the record notes it)."""

    name: str = "bf16"


@dataclass
class Int8DynamicConfig(QuantConfig):
    """int8 weights, activations quantized on the fly per batch (dynamic quantization).

    ``per_channel`` gives every output channel its own weight scale (more accurate, same
    speed); the default per-tensor scale is what ``torch.ao`` and ONNX Runtime do by default.
    ``embeddings`` also stores the embedding tables as int8 rows with their own scale (a
    weight-only lookup, as ONNX Runtime's Gather quantization does): in a small encoder the
    word embeddings are about half of all parameters, so int8 Linear layers alone leave the
    file at ~0.6x.
    """

    name: str = "int8"
    per_channel: bool = False
    embeddings: bool = True


@dataclass
class Int8StaticConfig(QuantConfig):
    """int8 weights and int8 activations whose ranges are fixed beforehand by running
    ``calibration_batches`` batches of calibration data through the model."""

    name: str = "int8_static"
    calibration_batches: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("quant.calibration_batches", self.calibration_batches)


# Group sizes ONNX Runtime's MatMulNBits accepts; torch's int4 CPU kernel
# (aten._weight_int4pack_mm_for_cpu) takes all but 16.
INT4_GROUP_SIZES = (16, 32, 64, 128, 256)


@dataclass
class GroupedInt4Config(QuantConfig):
    """What the 4-bit weight levels share: weights in groups of ``group_size`` consecutive
    input channels, each group with its own scale and zero point; activations stay float."""

    group_size: int = 32

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.group_size not in INT4_GROUP_SIZES:
            raise ConfigError(
                f"quant.group_size={self.group_size} is unsupported",
                ", ".join(map(str, INT4_GROUP_SIZES)),
            )


@dataclass
class Int4WeightOnlyConfig(GroupedInt4Config):
    """4-bit weights rounded to the nearest level of their group's grid (asymmetric on torch,
    symmetric on ONNX Runtime); activations stay float."""

    name: str = "int4"


@dataclass
class Int4GPTQConfig(GroupedInt4Config):
    """4-bit weights chosen by GPTQ (Frantar et al. 2023, "GPTQ: Accurate Post-Training
    Quantization for Generative Pre-trained Transformers"): each Linear's columns are
    quantized one at a time and the error of each is spread over the columns not yet
    quantized, weighted by the inverse Hessian H = 2 X^T X of the layer's inputs on
    ``calibration_batches`` batches; ``percdamp`` of H's mean diagonal is added to its
    diagonal so that it inverts. ``act_order`` quantizes the columns of largest H diagonal
    first (group scales still cover consecutive columns, fixed before the pass). Stored and
    run like ``int4``: GPTQ only chooses other 4-bit values."""

    name: str = "int4_gptq"
    calibration_batches: int = 8
    percdamp: float = 0.01
    act_order: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("quant.calibration_batches", self.calibration_batches)
        if not 0 < self.percdamp < 1:
            raise ConfigError(f"quant.percdamp={self.percdamp} is outside (0, 1)", "e.g. 0.01")


@dataclass
class Int8WeightOnlyConfig(QuantConfig):
    """int8 weights with one symmetric scale per output channel; activations stay float32
    (the product runs on torch's weight-only int8 CPU kernel): no activation outlier can
    hurt, at half the speed-up of int8 activations."""

    name: str = "int8_weight_only"


@dataclass
class Int8SmoothQuantConfig(QuantConfig):
    """SmoothQuant (Xiao et al. 2023, "SmoothQuant: Accurate and Efficient Post-Training
    Quantization for Large Language Models"): activation outliers are moved into the weights
    by per-input-channel factors s_j = max|X_j|^alpha / max|W_j|^(1 - alpha), measured on
    ``calibration_batches`` batches and folded into the norm that precedes the Linears (its
    weight and bias divided by s, the Linears' input columns multiplied by s: the float
    model is unchanged). Then W8A8: int8 weights per output channel, int8 activations per
    token, scaled on the fly. Linears no norm precedes are W8A8 unsmoothed (see the notes)."""

    name: str = "int8_smoothquant"
    alpha: float = 0.5
    calibration_batches: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("quant.calibration_batches", self.calibration_batches)
        if not 0 <= self.alpha <= 1:
            raise ConfigError(f"quant.alpha={self.alpha} is outside [0, 1]", "0 <= alpha <= 1")


@dataclass
class Int8QATConfig(QuantConfig):
    """Quantization-aware training: the recovery training runs with int8 fake quantization of
    every Linear's weights and inputs (straight-through gradients), then the model is
    converted to real dynamic int8, the same kernels as ``quant=int8``."""

    name: str = "int8_qat"


@dataclass
class GGUFQuantConfig(QuantConfig):
    """A llama.cpp quantization type (``backend=llama_cpp``): the pruned model is written as a
    float32 GGUF and llama.cpp's own quantizer (``llama_model_quantize``) rewrites it as
    ``FILE_TYPE``, the llama.cpp file type of that name (``llama-quantize``'s choice of block
    type per tensor included: the ``_M`` mixes keep some tensors at more bits)."""

    FILE_TYPE: ClassVar[str] = ""


@dataclass
class GGUFImatrixQuantConfig(GGUFQuantConfig):
    """A llama.cpp type whose rounding weighs each input column by an importance matrix
    (``imatrix``): the mean square of each Linear's inputs over ``calibration_batches``
    batches of calibration text, computed on the pruned float model (what llama.cpp's
    ``llama-imatrix`` collects) and handed to the quantizer. ``imatrix=false`` rounds without."""

    imatrix: bool = True
    calibration_batches: int = 8

    def __post_init__(self) -> None:
        check_positive("quant.calibration_batches", self.calibration_batches)


@dataclass
class GGUFQ8_0Config(GGUFQuantConfig):
    """llama.cpp Q8_0: blocks of 32 int8 weights with one fp16 scale (8.5 bits per weight);
    no importance matrix (its rounding has no choice to weigh)."""

    name: str = "q8_0"
    FILE_TYPE: ClassVar[str] = "MOSTLY_Q8_0"


@dataclass
class GGUFQ4_0Config(GGUFImatrixQuantConfig):
    """llama.cpp Q4_0: blocks of 32 4-bit weights with one fp16 scale (4.5 bits per weight)."""

    name: str = "q4_0"
    FILE_TYPE: ClassVar[str] = "MOSTLY_Q4_0"


@dataclass
class GGUFQ4_K_MConfig(GGUFImatrixQuantConfig):
    """llama.cpp Q4_K_M: 4-bit k-quants (super-blocks of 256 with 6-bit sub-block scales),
    with half of the attention value and FFN down projections at Q6_K (about 4.8 bits)."""

    name: str = "q4_k_m"
    FILE_TYPE: ClassVar[str] = "MOSTLY_Q4_K_M"


@dataclass
class GGUFQ5_K_MConfig(GGUFImatrixQuantConfig):
    """llama.cpp Q5_K_M: 5-bit k-quants, some tensors at Q6_K (about 5.7 bits per weight)."""

    name: str = "q5_k_m"
    FILE_TYPE: ClassVar[str] = "MOSTLY_Q5_K_M"


@dataclass
class GGUFQ6_KConfig(GGUFImatrixQuantConfig):
    """llama.cpp Q6_K: 6-bit k-quants (6.56 bits per weight)."""

    name: str = "q6_k"
    FILE_TYPE: ClassVar[str] = "MOSTLY_Q6_K"
