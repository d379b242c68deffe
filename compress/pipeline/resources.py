"""What a job will ask of this machine, checked before any model loads (torch-free, from the
model's ``config.json`` and its safetensors headers): memory for the weights it holds and the
activations of its largest batch, threads within the cores it may use, sequence lengths within
the model's positions, and an architecture transformers knows.

The memory figure is an estimate, deliberately on the low side (it refuses what cannot fit,
not what might not): the child-process watch (``compress.pipeline.isolation``) is the
backstop for the rest.
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import psutil

from compress.config.job import Config
from compress.config.task import CausalLMTaskConfig, ClassificationTaskConfig
from compress.models.families import positions_of

GIB = 2**30
FLOAT32 = 4
# Float32 copies of the weights a job holds at once: the baseline (also the teacher and the
# speed reference), the model being compressed, and the compressed model being saved/loaded.
WEIGHT_COPIES = 3
# Training keeps, besides the weights: gradients and AdamW's two moments.
TRAINING_COPIES = 4
_HIDDEN = ("hidden_size", "n_embd", "d_model", "dim")
_LAYERS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
_HEADS = ("num_attention_heads", "n_head")
_INTERMEDIATE = ("intermediate_size", "n_inner", "ffn_dim", "hidden_dim")
_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I8": 1, "U8": 1, "BOOL": 1}


def _first(model_config: dict, keys: tuple[str, ...]) -> int | None:
    return next((int(model_config[k]) for k in keys if model_config.get(k)), None)


@dataclass(frozen=True)
class Shape:
    """The sizes of a model that memory depends on, read from its ``config.json``."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    kv_width: int  # key/value features per token and layer (grouped heads: fewer)

    @classmethod
    def of(cls, model_config: dict) -> Shape | None:
        hidden, layers = _first(model_config, _HIDDEN), _first(model_config, _LAYERS)
        if not hidden or not layers:
            return None
        heads = _first(model_config, _HEADS) or 1
        kv_heads = int(model_config.get("num_key_value_heads") or heads)
        head_dim = int(model_config.get("head_dim") or hidden // heads)
        intermediate = _first(model_config, _INTERMEDIATE) or 4 * hidden
        vocab = int(model_config.get("vocab_size") or 0)
        return cls(hidden, layers, heads, intermediate, vocab, kv_heads * head_dim)

    def parameters(self) -> int:
        """Blocks (attention and a plain two-matrix FFN) and the token embeddings: BERT's and
        GPT-2's count to a few percent, a gated FFN's (Llama) a third low."""
        block = 2 * self.hidden * self.hidden + 2 * self.hidden * self.kv_width
        block += 2 * self.hidden * self.intermediate
        return self.layers * block + self.vocab * self.hidden

    def activations(self, batch: int, tokens: int, keep_layers: bool = False) -> int:
        """Float32 bytes alive in one forward at ``batch`` × ``tokens`` (every layer's when
        they are kept for a backward pass): hidden states, the FFN's inner width and the
        attention scores, plus the logits of a language-model head."""
        per_layer = batch * tokens * (4 * self.hidden + self.intermediate)
        per_layer += 2 * batch * self.heads * tokens * tokens
        layers = self.layers if keep_layers else 1
        return FLOAT32 * (per_layer * layers)

    def kv_cache(self, batch: int, tokens: int) -> int:
        return FLOAT32 * 2 * self.layers * batch * tokens * self.kv_width


def checkpoint_parameters(folder: Path) -> int | None:
    """The exact parameter count from the safetensors headers in ``folder`` (no tensor is
    read), or None when the weights are in another format."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for path in files:
        with path.open("rb") as stream:
            (length,) = struct.unpack("<Q", stream.read(8))
            header = json.loads(stream.read(length))
        for name, tensor in header.items():
            if name != "__metadata__":
                count = 1
                for size in tensor["shape"]:
                    count *= size
                total += count
    return total


def _limit(config: Config) -> tuple[int, str]:
    if config.job.memory_limit_gb:
        return int(config.job.memory_limit_gb * GIB), "job.memory_limit_gb"
    available = psutil.virtual_memory().available
    return int(0.9 * available), "90% of the memory available; job.memory_limit_gb sets it"


# tokens per text assumed for ``task.max_length=null`` (the 95th percentile of the train rows)
DATA_LENGTH_BOUND = 512


def _workloads(config: Config, positions: int | None) -> list[tuple[str, str, int, int, bool]]:
    """(key, label, batch, tokens, keeps layers) of each forward the job runs. A length taken
    from the data (``task.max_length=null``) is not known before the data is tokenized: it is
    estimated at the model's positions up to ``DATA_LENGTH_BOUND`` (a decoder's 32k positions
    would refuse every batch; the memory watch stops a job whose data is longer still)."""
    bench, task = config.bench, config.task
    loads = [("batch_size", "the timed batch", config.batch_size, bench.seq_len, False)]
    if isinstance(task, ClassificationTaskConfig):
        length = task.max_length or min(positions or bench.seq_len, DATA_LENGTH_BOUND)
        loads.append(("task.eval_batch_size", "evaluation", task.eval_batch_size,
                      length, False))  # fmt: skip
        loads.append(("task.finetune.batch_size", "baseline training",
                      task.finetune.batch_size, length, True))  # fmt: skip
    if isinstance(task, CausalLMTaskConfig):
        for size in task.memory_batch_sizes:
            loads.append(("task.memory_batch_sizes", "generation memory", size,
                          bench.seq_len + task.speed_new_tokens, False))  # fmt: skip
    return loads


def memory_problems(config: Config, model_config: dict, folder: Path | None) -> list[str]:
    """Refuse a job whose weights and largest batch cannot fit in the memory it may use."""
    shape = Shape.of(model_config)
    if shape is None:
        return []
    parameters = (checkpoint_parameters(folder) if folder else None) or shape.parameters()
    weights = WEIGHT_COPIES * FLOAT32 * parameters
    limit, source = _limit(config)
    problems = []
    for key, label, batch, tokens, training in _workloads(config, positions_of(model_config)):
        held = weights + (TRAINING_COPIES - 1) * FLOAT32 * parameters * training
        needed = held + shape.activations(batch, tokens, training)
        if isinstance(config.task, CausalLMTaskConfig):
            needed += shape.kv_cache(batch, tokens)
        if needed <= limit:
            continue
        per_item = max(1, (needed - held) // batch)
        most = (limit - held) // per_item
        accepted = f"{key} <= {most}" if most >= 1 else "a machine with more memory"
        problems.append(
            f"{key}={batch} needs about {needed / GIB:.3g} GiB for {label} (weights "
            f"{FLOAT32 * parameters / GIB:.2f} GiB x {WEIGHT_COPIES} copies, activations at "
            f"{batch} x {tokens} tokens), more than the {limit / GIB:.1f} GiB this job may use "
            f"({source}), accepted: {accepted}"
        )
    return problems


def position_problems(config: Config, model_config: dict) -> list[str]:
    """Sequence lengths the job asks for beyond the model's positions."""
    positions = positions_of(model_config)
    if not positions:
        return []
    task, lengths = config.task, {"bench.seq_len": config.bench.seq_len}
    if isinstance(task, ClassificationTaskConfig) and task.max_length is not None:
        lengths["task.max_length"] = task.max_length
    if isinstance(task, CausalLMTaskConfig):
        lengths["bench.seq_len + task.speed_new_tokens"] = (
            config.bench.seq_len + task.speed_new_tokens
        )
        lengths["task.calibration_length"] = task.calibration_length
        if hasattr(task, "window"):
            lengths["task.window"] = task.window
    from_data = {"task.max_length": ", or null (from the data)"}
    return [
        f"{key}={value} exceeds the {positions} positions of model={config.model.name}, "
        f"accepted: {key} <= {positions}{from_data.get(key, '')}"
        for key, value in lengths.items()
        if value > positions
    ]


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def thread_problems(config: Config) -> list[str]:
    """More intra-op threads than cores only oversubscribes them (and hangs on 2 cores)."""
    cores = _cores()
    if config.threads <= cores:
        return []
    return [f"threads={config.threads} is more than the {cores} cores this job may use, "
            f"accepted: 0 (one per physical core) or 1 ... {cores}"]  # fmt: skip


def _known_model_types() -> set[str]:
    """Architectures the installed transformers has a folder for (found without importing
    it, which would import torch)."""
    spec = importlib.util.find_spec("transformers")
    if spec is None or not spec.submodule_search_locations:
        return set()
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    return {path.name for path in models.iterdir() if path.is_dir()}


def architecture_problems(config: Config, model_config: dict) -> list[str]:
    """A config.json transformers cannot turn into a model."""
    model_type = model_config.get("model_type")
    where = f"model.name_or_path={config.model.name_or_path}"
    if not model_type:
        return [f"{where}: its config.json has no model_type, so transformers cannot tell which "
                "architecture it is, accepted: a folder saved with save_pretrained"]  # fmt: skip
    known = _known_model_types()
    if known and str(model_type).replace("-", "_") not in known:
        return [
            f"{where}: model_type={model_type} is not an architecture this transformers "
            "knows, accepted: a model_type of transformers (e.g. bert, llama, qwen2)"
        ]
    return []
