"""The family table refuses, from ``config.json``'s ``model_type`` alone and without torch, a
method a family cannot take, in one line that lists the families that can."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from compress.models.families import (
    BY_BLOCK,
    FAMILIES,
    STRUCTURED_METHODS,
    family_of,
    family_problems,
    model_type_of,
)
from tests.compress.tiny import CONFIGS


def test_every_family_has_a_tiny_model_and_one_block_class():
    assert {t for f in FAMILIES for t in f.model_types} == set(CONFIGS)
    assert len(BY_BLOCK) == len(FAMILIES)


@pytest.mark.parametrize("method", STRUCTURED_METHODS)
def test_structured_pruning_refuses_an_unknown_family_listing_those_it_knows(method):
    (line,) = family_problems("albert", prune_method=method)
    assert line.startswith(f"prune_method={method} does not know the blocks of model_type=albert")
    assert "accepted:" in line and "RoBERTa (roberta)" in line and "Phi-3 (phi3)" in line
    assert family_problems("roberta", prune_method=method) == []


def test_unstructured_pruning_and_plain_levels_take_any_family():
    assert family_problems("albert", prune_method="global_l1", quant="int8") == []
    assert family_problems(None, quant="int4", backend="onnxruntime") == []


@pytest.mark.parametrize(
    ("model_type", "refused"),
    [("bert", True), ("deberta-v2", True), ("albert", True), ("modernbert", False),
     ("gpt2", False), ("phi3", False), ("gemma2", False), ("qwen3", False)],
)  # fmt: skip
def test_smoothquant_refuses_a_family_with_no_norm_to_fold_into(model_type, refused):
    problems = family_problems(model_type, quant="int8_smoothquant")
    assert bool(problems) == refused
    if refused:
        assert "quant=int8_smoothquant finds no norm that feeds only projections" in problems[0]
        assert "Gemma 2 (gemma2)" in problems[0] and "BERT (bert)" not in problems[0]


@pytest.mark.parametrize("backend", ["onnxruntime", "torch_compiled"])
def test_exporting_backends_refuse_decoders_naming_the_backend_that_runs_them(backend):
    (line,) = family_problems("qwen2", backend=backend)
    assert f"backend={backend} exports encoders only and model_type=qwen2 (Qwen2)" in line
    assert "accepted: backend=torch for it" in line and "ModernBERT (modernbert)" in line
    assert family_problems("modernbert", backend=backend) == []


def test_every_problem_is_one_line():
    lines = family_problems("llama", "heads", "int8_smoothquant", "onnxruntime")
    lines += family_problems("t5", "heads_neurons", "int8_smoothquant", "torch")
    assert len(lines) == 3 and all("\n" not in line for line in lines)


def test_model_type_is_read_from_config_json(tmp_path):
    assert model_type_of(tmp_path) is None
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "xlm-roberta"}))
    assert model_type_of(tmp_path) == "xlm-roberta"
    assert family_of(model_type_of(tmp_path)).name == "XLM-R"


def test_the_table_loads_without_torch():
    code = (
        "import sys; from compress.models.families import family_problems; "
        "family_problems('bert', 'heads', 'int8_smoothquant', 'onnxruntime'); "
        "assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
