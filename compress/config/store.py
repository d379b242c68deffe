"""Every option of every config group under one name, registered in Hydra's ConfigStore.

One name per thing: the YAML option ``conf/<group>/<option>.yaml``, its schema entry
``/schema/<group>/<option>``, the ``name`` the composed config carries and the level the
record writes are the same word. Options that share a dataclass (``global_l1`` and ``l1``,
``heads`` and ``heads_gradient``, the classification presets) are registered as that
dataclass under their own name; the YAML then carries only what else differs.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.config_store import ConfigStore

from compress.config.backend import (
    LlamaCppBackendConfig,
    OnnxRuntimeBackendConfig,
    TorchBackendConfig,
    TorchCompiledBackendConfig,
)
from compress.config.job import Config
from compress.config.prune import (
    HeadAndNeuronPruningConfig,
    HeadPruningConfig,
    IterativeScheduleConfig,
    LayerPruningConfig,
    MagnitudePruningConfig,
    NeuronPruningConfig,
    NoPruningConfig,
    OneShotScheduleConfig,
    RandomPruningConfig,
    SemiStructuredPruningConfig,
)
from compress.config.quant import (
    BFloat16Config,
    Float16Config,
    Float32Config,
    GGUFQ4_0Config,
    GGUFQ4_K_MConfig,
    GGUFQ5_K_MConfig,
    GGUFQ6_KConfig,
    GGUFQ8_0Config,
    Int4GPTQConfig,
    Int4WeightOnlyConfig,
    Int8DynamicConfig,
    Int8QATConfig,
    Int8SmoothQuantConfig,
    Int8StaticConfig,
    Int8WeightOnlyConfig,
)
from compress.config.task import (
    ClassificationTaskConfig,
    GenerationTaskConfig,
    LanguageModelingTaskConfig,
)
from compress.config.training import (
    DistillRecoveryConfig,
    FinetuneRecoveryConfig,
    NoRecoveryConfig,
)

# The YAML options of every config group, shipped inside the package.
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

# group -> option -> its schema: a dataclass whose ``name`` default is the option, or an
# instance named after the option where several options share one dataclass.
SCHEMAS: dict[str, dict[str, object]] = {
    "task": {
        "classification": ClassificationTaskConfig,
        "sentiment": ClassificationTaskConfig(name="sentiment"),
        "topics": ClassificationTaskConfig(name="topics"),
        "lm": LanguageModelingTaskConfig,
        "generation": GenerationTaskConfig,
    },
    "prune_method": {
        "none": NoPruningConfig,
        "global_l1": MagnitudePruningConfig(name="global_l1"),
        "l1": MagnitudePruningConfig(name="l1"),
        "random": RandomPruningConfig,
        "2to4": SemiStructuredPruningConfig,
        "heads": HeadPruningConfig,
        "heads_gradient": HeadPruningConfig(name="heads_gradient"),
        "neurons": NeuronPruningConfig,
        "heads_neurons": HeadAndNeuronPruningConfig,
        "layers": LayerPruningConfig,
    },
    "quant": {
        "fp32": Float32Config,
        "fp16": Float16Config,
        "bf16": BFloat16Config,
        "int8": Int8DynamicConfig,
        "int8_static": Int8StaticConfig,
        "int4": Int4WeightOnlyConfig,
        "int8_qat": Int8QATConfig,
        "int8_weight_only": Int8WeightOnlyConfig,
        "int8_smoothquant": Int8SmoothQuantConfig,
        "int4_gptq": Int4GPTQConfig,
        "q8_0": GGUFQ8_0Config,
        "q4_0": GGUFQ4_0Config,
        "q4_k_m": GGUFQ4_K_MConfig,
        "q5_k_m": GGUFQ5_K_MConfig,
        "q6_k": GGUFQ6_KConfig,
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
        "llama_cpp": LlamaCppBackendConfig,
    },
}


def schema_type(schema: object) -> type:
    """The dataclass of a :data:`SCHEMAS` entry (a dataclass or an instance of one)."""
    return schema if isinstance(schema, type) else type(schema)


def schema_types(group: str) -> list[type]:
    """The distinct dataclasses of a group's options, in option order."""
    return list(dict.fromkeys(schema_type(schema) for schema in SCHEMAS[group].values()))


def register_configs() -> None:
    """Register the top-level schema and every option's schema under ``schema/<group>``."""
    store = ConfigStore.instance()
    store.store(name="config_schema", node=Config)
    for group, options in SCHEMAS.items():
        for name, node in options.items():
            store.store(group=f"schema/{group}", name=name, node=node)
