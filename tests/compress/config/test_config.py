"""Every option of every config group composes; bad values fail with one clear line."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import MISSING, OmegaConf

from compress.config import store
from compress.config.errors import ConfigError
from compress.config.job import Config
from compress.config.model import ModelConfig
from tests.conftest import CONF_DIR

GROUPS = {
    group: sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
    for group in ("model", "task", "prune_method", "quant", "backend", "recovery", "schedule")
}
# options that need a partner setting to form a valid job
LLAMA_CPP = ["backend=llama_cpp", "task=lm"]
PARTNERS = {
    "int8_qat": ["recovery=finetune"],
    "iterative": ["recovery=finetune"],
    "llama_cpp": ["task=lm", "quant=fp32"],
    **{level: LLAMA_CPP for level in ("q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k")},
}


@pytest.mark.parametrize(
    ("group", "option"), [(g, o) for g, options in GROUPS.items() for o in options]
)
def test_every_option_composes_into_its_schema(compose_config, group, option):
    cfg = compose_config([f"{group}={option}", *PARTNERS.get(option, [])])
    config = OmegaConf.to_object(cfg)
    node = getattr(config, group)
    assert node.name == option
    schemas = store.SCHEMAS.get(group, {option: ModelConfig})  # models: one schema, no defaults
    assert isinstance(node, store.schema_type(schemas[option]))


@pytest.mark.parametrize("group", sorted(store.SCHEMAS))
def test_one_name_per_option(group):
    """YAML option = schema entry = the ``name`` the job and its record carry."""
    assert sorted(GROUPS[group]) == sorted(store.SCHEMAS[group])


def test_defaults_are_one_compressed_job(compose_config):
    config = OmegaConf.to_object(compose_config())
    assert (config.model.name, config.quant.name, config.prune_method.name) == (
        "minilm",
        "int8",
        "global_l1",
    )
    assert 0 < config.prune < 1


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("prune=1.5", "prune=1.5 is outside [0, 1)"),
        ("prune=-0.1", "prune=-0.1 is outside [0, 1)"),
        ("batch_size=0", "batch_size=0 is not a positive integer, accepted: 1, 2, 3, ..."),
        ("bench.repeats=0", "bench.repeats=0 is not a positive integer"),
    ],
)
def test_out_of_range_values_raise_one_line(compose_config, override, fragment):
    with pytest.raises(ConfigError) as caught:
        OmegaConf.to_object(compose_config([override]))
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_level_the_backend_lacks_is_refused_with_the_accepted_ones(compose_config):
    with pytest.raises(ConfigError) as caught:
        OmegaConf.to_object(compose_config(["quant=fp16", "backend=onnxruntime"]))
    assert str(caught.value) == (
        "quant=fp16 is not supported on backend=onnxruntime, "
        "accepted: fp32, int8, int8_static, int4"
    )


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (["quant=q4_k_m", "backend=torch"],
         "quant=q4_k_m is not supported on backend=torch, accepted: fp32, fp16, bf16, int8, "
         "int8_static, int8_qat, int8_weight_only, int8_smoothquant, int4, int4_gptq"),
        (["quant=int4", "backend=llama_cpp", "task=lm"],
         "quant=int4 is not supported on backend=llama_cpp, accepted: fp32, fp16, bf16, q8_0, "
         "q4_0, q4_k_m, q5_k_m, q6_k"),
        (["backend=llama_cpp"],
         "backend=llama_cpp runs causal LMs, not task=sentiment, accepted: task=lm or "
         "task=generation"),
        (["backend=llama_cpp", "task=generation", "task.decoding=speculative"],
         "task.decoding=speculative drafts with the compressed model inside transformers' "
         "generate, which cannot call a llama.cpp model, accepted: task.decoding=standard"),
        (["backend=llama_cpp", "task=lm", "quant=q4_0", "quant.skip=[lm_head]"],
         "quant.skip keeps modules float, and quant=q4_0 on backend=llama_cpp cannot, "
         "accepted: quant.skip=[] or quant=fp32"),
    ],
)  # fmt: skip
def test_llama_cpp_combinations_are_refused_in_one_line(compose_config, overrides, line):
    with pytest.raises(ConfigError) as caught:
        OmegaConf.to_object(compose_config(overrides))
    assert str(caught.value) == line


def test_llama_cpp_levels_compose_on_causal_lm_tasks(compose_config):
    for level in ("fp32", "q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k"):
        config = OmegaConf.to_object(
            compose_config(["backend=llama_cpp", "task=lm", f"quant={level}"])
        )
        assert config.quant.name == level and config.backend.name == "llama_cpp"
    config = OmegaConf.to_object(compose_config(["backend=llama_cpp", "task=lm", "quant=q4_k_m"]))
    assert config.quant.imatrix and config.quant.FILE_TYPE == "MOSTLY_Q4_K_M"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["quant=int8_qat"], "quant=int8_qat trains under fake quantization"),
        (["schedule=iterative"], "schedule=iterative fine-tunes between pruning steps"),
        (
            ["schedule=iterative", "recovery=distill", "prune_method=heads"],
            "schedule=iterative needs an unstructured prune_method",
        ),
        (["recovery=distill", "recovery.alpha=1.5"], "recovery.alpha=1.5 is outside [0, 1]"),
    ],
)
def test_training_combinations_are_checked_before_the_job(compose_config, overrides, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        OmegaConf.to_object(compose_config(overrides))


@pytest.mark.parametrize(("override", "group"), [("quant=int3", "quant"), ("model=nope", "model")])
def test_unknown_option_names_the_accepted_ones(compose_config, override, group):
    with pytest.raises(MissingConfigException) as caught:
        compose_config([override])
    message = str(caught.value)
    assert override.replace("=", "/") in message
    assert all(option in message for option in GROUPS[group])


def test_wrong_type_fails_at_composition(compose_config):
    with pytest.raises(ConfigCompositionException, match="prune=half") as caught:
        compose_config(["prune=half"])
    assert "could not be converted to Float" in str(caught.value.__cause__)


CHOICES = [
    ("prune_method.scope=foo", [], "blocks, attention, ffn, all"),
    ("prune_method.importance=foo", ["prune_method=heads"], "weight_norm, gradient"),
    ("prune_method.drop=foo", ["prune_method=layers"], "top, bottom"),
    ("schedule.curve=foo", ["schedule=iterative"], "cubic, linear"),
    ("task.decoding=foo", ["task=lm"], "standard, speculative"),
    ("bench.load_method=foo", [], "zero_copy, read, from_pretrained"),
    ("bench.lengths=foo", [], "fixed, data"),
]


@pytest.mark.parametrize(("override", "partners", "accepted"), CHOICES)
def test_a_bad_choice_fails_at_composition_naming_the_accepted_ones(
    compose_config, override, partners, accepted
):
    with pytest.raises(ConfigCompositionException) as caught:
        compose_config([*partners, override])
    assert f"Invalid value 'foo', expected one of [{accepted}]" in str(caught.value.__cause__)


def test_a_bad_choice_is_refused_before_torch_is_imported():
    script = (
        "import sys\n"
        "from hydra import compose, initialize_config_dir\n"
        "from compress.config.store import CONF_DIR, register_configs\n"
        "register_configs()\n"
        "try:\n"
        "    with initialize_config_dir(str(CONF_DIR), version_base='1.3'):\n"
        "        compose('config', overrides=['prune_method.scope=foo'])\n"
        "except Exception as error:\n"
        "    print(type(error).__name__, 'torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.split() == ["ConfigCompositionException", "False"], result.stderr


def _schema_defaults(schema: object) -> dict:
    """Every field's default, nested dataclasses as dicts; fields without one are left out. An
    option registered as an instance (several options share its dataclass) has its values."""
    if not isinstance(schema, type):
        return {k: v for k, v in dataclasses.asdict(schema).items() if v is not MISSING}
    defaults = {}
    for spec in dataclasses.fields(schema):
        if spec.default_factory is not dataclasses.MISSING:
            value = spec.default_factory()
            defaults[spec.name] = (
                _schema_defaults(type(value)) if dataclasses.is_dataclass(value) else value
            )
        elif spec.default is not dataclasses.MISSING and spec.default is not MISSING:
            defaults[spec.name] = spec.default
    return defaults


def _restated(values: dict, defaults: dict, prefix: str = "") -> list[str]:
    restated = []
    for key, value in values.items():
        default = defaults.get(key, dataclasses.MISSING)
        if isinstance(value, dict) and isinstance(default, dict):
            restated += _restated(value, default, f"{prefix}{key}.")
        elif value == default:
            restated.append(f"{prefix}{key}: {value}")
    return restated


def _yaml_schema(path: Path, values: dict) -> type | None:
    """The schema a YAML option starts from (``/schema/<group>/<name>@_here_``)."""
    if path == CONF_DIR / "config.yaml":
        return Config
    for entry in values.get("defaults", []):
        match = re.fullmatch(r"/schema/(\w+)/(\w+)@_here_", str(entry))
        if match:
            return store.SCHEMAS[match[1]][match[2]]
    return None


SCHEMA_YAMLS = sorted(p for p in CONF_DIR.rglob("*.yaml") if "hydra" not in p.parts)


@pytest.mark.parametrize("path", SCHEMA_YAMLS, ids=lambda p: str(p.relative_to(CONF_DIR)))
def test_no_yaml_restates_a_schema_default(path: Path):
    values = yaml.safe_load(path.read_text()) or {}
    schema_type = _yaml_schema(path, values)
    if schema_type is None:  # model options: name and path have no default to restate
        schema_type = ModelConfig
    values.pop("defaults", None)
    assert _restated(values, _schema_defaults(schema_type)) == []
