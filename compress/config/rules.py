"""The rules that tie config groups together (a value fine on its own, refused beside another),
and the checks a job's config gets against the model it names, all before torch is imported.

``check_combinations`` runs whenever a composed config becomes a :class:`~compress.config.job.
Config`; ``structure_problems`` compares ``prune`` with the model's ``config.json``;
``unknown_keys`` lists keys no schema declares.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from compress.config.backend import (
    LlamaCppBackendConfig,
    TorchBackendConfig,
    TorchCompiledBackendConfig,
    level_names,
)
from compress.config.bench import LoadMethod
from compress.config.errors import ConfigError
from compress.config.prune import (
    HeadAndNeuronPruningConfig,
    HeadPruningConfig,
    IterativeScheduleConfig,
    LayerPruningConfig,
    NeuronPruningConfig,
    NoPruningConfig,
    SemiStructuredPruningConfig,
    UnstructuredPruningConfig,
)
from compress.config.quant import (
    BFloat16Config,
    Float16Config,
    Float32Config,
    GroupedInt4Config,
    Int8QATConfig,
)
from compress.config.task import CausalLMTaskConfig, Decoding
from compress.config.training import NoRecoveryConfig

if TYPE_CHECKING:
    from compress.config.job import Config

# Free notes: ``+tag.<name>=<value>`` is kept in the record and never refused.
FREE_NAMESPACE = "tag"


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


def check_combinations(config: Config) -> None:
    """Raise :class:`ConfigError` for the first rule the job's groups break together."""
    for rule in _RULES:
        rule(config)


def _training(config: Config) -> None:
    trains = not isinstance(config.recovery, NoRecoveryConfig)
    if isinstance(config.quant, Int8QATConfig) and not trains:
        raise ConfigError(
            "quant=int8_qat trains under fake quantization, and recovery=none trains nothing",
            "recovery=finetune or recovery=distill",
        )
    if isinstance(config.schedule, IterativeScheduleConfig):
        if not trains:
            raise ConfigError(
                "schedule=iterative fine-tunes between pruning steps, and recovery=none "
                "trains nothing (it would equal oneshot)",
                "recovery=finetune or recovery=distill",
            )
        if not isinstance(config.prune_method, UnstructuredPruningConfig):
            raise ConfigError(
                f"schedule=iterative needs an unstructured prune_method, and "
                f"prune_method={config.prune_method.name} removes whole units",
                "schedule=oneshot with a recovery method, or prune_method=global_l1, l1, random",
            )


def _supported_level(config: Config) -> None:
    if not isinstance(config.quant, config.backend.SUPPORTED):
        raise ConfigError(
            f"quant={config.quant.name} is not supported on backend={config.backend.name}",
            ", ".join(level_names(config.backend.SUPPORTED)),
        )


def _pattern(config: Config) -> None:
    """N:M sparsity removes exactly zeros/group, in one step."""
    method = config.prune_method
    if not isinstance(method, SemiStructuredPruningConfig):
        return
    pattern = method.zeros / method.group
    if abs(config.prune - pattern) > 1e-9:
        raise ConfigError(
            f"prune_method={method.name} removes exactly {pattern:g} of the weights, "
            f"not prune={config.prune}",
            f"prune={pattern:g}",
        )
    if isinstance(config.schedule, IterativeScheduleConfig):
        raise ConfigError(
            f"prune_method={method.name} cannot be reached in steps", "schedule=oneshot"
        )


def _load_method(config: Config) -> None:
    """``from_pretrained`` opens plain float torch models: no integer weights, no sparse
    storage, no heads removed (a config cannot say which)."""
    if config.bench.load_method != LoadMethod.from_pretrained or not config.bench.cold_load:
        return
    float_level = isinstance(config.quant, Float32Config | Float16Config | BFloat16Config)
    plain = config.prune == 0 or isinstance(
        config.prune_method, NoPruningConfig | NeuronPruningConfig | LayerPruningConfig
    )
    if not (isinstance(config.backend, TorchBackendConfig) and float_level and plain):
        raise ConfigError(
            f"bench.load_method=from_pretrained cannot open a quant={config.quant.name} "
            f"backend={config.backend.name} prune_method={config.prune_method.name} artifact",
            "bench.load_method=zero_copy or read, or a float torch model whose structure "
            "its config describes",
        )


def _skip(config: Config) -> None:
    """Only the levels that can keep single modules float accept ``quant.skip`` and
    ``quant.keep_float``."""
    quant = config.quant
    if isinstance(quant, config.backend.SKIPPABLE):
        return
    for key, value, off in (("skip", quant.skip, "[]"), ("keep_float", quant.keep_float, "0")):
        if value:
            raise ConfigError(
                f"quant.{key} keeps modules float, and quant={quant.name} on "
                f"backend={config.backend.name} cannot",
                f"quant.{key}={off} or quant={', '.join(level_names(config.backend.SKIPPABLE))}",
            )


def _int4_group_size(config: Config) -> None:
    """Backends' int4 kernels take different group sizes (torch's not 16)."""
    sizes = config.backend.INT4_GROUP_SIZES
    if isinstance(config.quant, GroupedInt4Config) and config.quant.group_size not in sizes:
        raise ConfigError(
            f"quant.group_size={config.quant.group_size} is unsupported on "
            f"backend={config.backend.name}",
            ", ".join(map(str, sizes)),
        )


def _compiled(config: Config) -> None:
    """Classifiers compile ahead of time (PT2E int8), causal LMs compile their decode step (the
    weight-only levels); a causal LM compiles in the timed loop's warm-up."""
    backend = config.backend
    if not isinstance(backend, TorchCompiledBackendConfig):
        return
    causal = isinstance(config.task, CausalLMTaskConfig)
    levels = backend.DECODING if causal else backend.CLASSIFICATION
    if not isinstance(config.quant, levels):
        raise ConfigError(
            f"quant={config.quant.name} is not supported on backend=torch_compiled for "
            f"task={config.task.name}",
            ", ".join(level_names(levels)),
        )
    if causal and config.task.decoding == Decoding.speculative:
        raise ConfigError(
            "task.decoding=speculative on backend=torch_compiled: assisted generation has no "
            "static-cache compiled step",
            "task.decoding=standard",
        )
    if causal and config.bench.warmup < 1:
        raise ConfigError(
            "bench.warmup=0 on backend=torch_compiled: the decode step compiles in the first "
            "call, which would be timed",
            "bench.warmup >= 1",
        )


def _llama_cpp(config: Config) -> None:
    if not isinstance(config.backend, LlamaCppBackendConfig):
        return
    if not isinstance(config.task, CausalLMTaskConfig):
        raise ConfigError(
            f"backend=llama_cpp runs causal LMs, not task={config.task.name}",
            "task=lm or task=generation",
        )
    if config.task.decoding == Decoding.speculative:
        raise ConfigError(
            "task.decoding=speculative drafts with the compressed model inside transformers' "
            "generate, which cannot call a llama.cpp model",
            "task.decoding=standard",
        )


_RULES = (
    _training, _llama_cpp, _compiled, _supported_level, _pattern, _load_method, _skip,
    _int4_group_size,
)  # fmt: skip

# What each structured method removes: (config type, config.json keys of the count, unit).
_NEURONS = (("intermediate_size", "n_inner"), "feed-forward neurons per block")
_UNITS = (
    (HeadPruningConfig, ("num_attention_heads", "n_head"), "attention heads per block"),
    (HeadAndNeuronPruningConfig, *_NEURONS),
    (NeuronPruningConfig, *_NEURONS),
    (LayerPruningConfig, ("num_hidden_layers", "n_layer"), "blocks"),
)


def structure_problems(config: Config, model_config: dict) -> list[str]:
    """Whether ``prune`` leaves at least one of each unit the method removes, by the model's
    ``config.json`` (``model_config``)."""
    problems = []
    for config_type, keys, unit in _UNITS:
        total = next((model_config[k] for k in keys if model_config.get(k)), None)
        if isinstance(config.prune_method, config_type) and total and config.prune > 0:
            try:
                units_to_remove(config.prune, int(total), unit)
            except ConfigError as error:
                problems.append(str(error))
    return problems


def backend_problems(config: Config, model_config: dict) -> list[str]:
    """A model architecture the backend cannot write (llama.cpp: the GGUF families it knows),
    by the model's ``config.json``."""
    if not isinstance(config.backend, LlamaCppBackendConfig):
        return []
    model_type = model_config.get("model_type")
    if model_type in config.backend.MODEL_TYPES:
        return []
    return [
        f"backend=llama_cpp cannot write model_type={model_type} as GGUF, accepted: "
        f"model_type {', '.join(config.backend.MODEL_TYPES)} (e.g. model=smollm2)"
    ]


def unknown_key(key: str, known: list[str]) -> str:
    """The line refusing ``key``, naming the closest known key."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    nearest = f"{close[0]} (the closest key)" if close else "a key that --cfg job lists"
    return f"{key} is not a config key, accepted: {nearest}, or +{FREE_NAMESPACE}.<name>=<note>"


def unknown_keys(node: DictConfig, schema: type, prefix: str = "") -> list[str]:
    """One line per key of ``node`` that ``schema`` does not declare (``hydra`` and the free
    ``tag`` namespace aside)."""
    fields = [spec.name for spec in dataclasses.fields(schema)]
    problems = []
    for key in node.keys():
        if not prefix and key in ("hydra", FREE_NAMESPACE):
            continue
        if key not in fields:
            problems.append(unknown_key(f"{prefix}{key}", [f"{prefix}{f}" for f in fields]))
            continue
        child = node._get_node(key)
        child_type = OmegaConf.get_type(child) if isinstance(child, DictConfig) else None
        if child_type is not None and dataclasses.is_dataclass(child_type):
            problems += unknown_keys(child, child_type, f"{prefix}{key}.")
    return problems
