"""Recovery training: masks hold, the distillation loss is the textbook one, schedules reach
their target exactly, and QAT ends in a real int8 model."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from compress.backends.torch.artifact import save_artifact
from compress.backends.torch.quantize import quantize_
from compress.config.prune import IterativeScheduleConfig, OneShotScheduleConfig
from compress.config.quant import Int8QATConfig
from compress.infra.context import CompressionContext
from compress.models.layers import block_linears
from compress.pipeline.baseline import Baseline
from compress.pipeline.pruned import pruned_model_key as recovery_key
from compress.pruning.schedules import schedule_amounts
from compress.quantization.qat import add_fake_quantization
from compress.recovery.losses import distillation_loss
from compress.recovery.recipe import prune_and_recover
from compress.storage.artifact import disk_bytes
from tests.conftest import tiny_bert


def test_distillation_loss_equals_the_hand_computed_value():
    student = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    teacher = torch.tensor([[1.0, 1.0], [0.0, 3.0]])
    labels = torch.tensor([0, 1])
    alpha, temperature = 0.25, 2.0
    hard = sum(-math.log(math.exp(s[y]) / sum(math.exp(v) for v in s))
               for s, y in zip(student.tolist(), labels.tolist(), strict=True)) / 2  # fmt: skip
    soft = 0.0
    for s_row, t_row in zip(student.tolist(), teacher.tolist(), strict=True):
        p = [math.exp(v / temperature) for v in t_row]
        q = [math.exp(v / temperature) for v in s_row]
        p, q = [v / sum(p) for v in p], [v / sum(q) for v in q]
        soft += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    expected = alpha * hard + (1 - alpha) * temperature**2 * soft / 2
    got = distillation_loss(student, teacher, labels, alpha, temperature)
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_cubic_schedule_prunes_fast_first_and_ends_at_the_target():
    amounts = schedule_amounts(IterativeScheduleConfig(steps=4, curve="cubic"), 0.8)
    assert amounts == pytest.approx([0.8 * (1 - (1 - i / 4) ** 3) for i in range(1, 5)])
    assert amounts[-1] == 0.8
    linear = schedule_amounts(IterativeScheduleConfig(steps=4, curve="linear"), 0.8)
    assert linear == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert schedule_amounts(OneShotScheduleConfig(), 0.8) == [0.8]


def _tiny_batches(inputs):
    labels = torch.tensor([0, 1, 0, 1])

    def batches(batch_size: int, seed: int):
        return itertools.repeat({**inputs, "labels": labels})

    return batches


def _config(compose_config, *overrides):
    return OmegaConf.to_object(compose_config(["prune_method=global_l1", *overrides]))


@pytest.mark.parametrize("recovery", ["finetune", "distill"])
def test_iterative_recovery_reaches_the_target_and_keeps_pruned_weights_zero(
    compose_config, tiny_inputs, recovery
):
    config = _config(
        compose_config, "prune=0.7", f"recovery={recovery}", "recovery.steps=3",
        "schedule=iterative", "schedule.steps=3", "schedule.finetune_steps=2",
        "recovery.learning_rate=0.01",
    )  # fmt: skip
    model, teacher = tiny_bert(), tiny_bert()
    before = {n: layer.weight.clone() for n, layer in block_linears(model).items()}
    report, training = prune_and_recover(
        config, model, teacher, _tiny_batches(tiny_inputs), CompressionContext()
    )
    # trained after the last pruning step, yet exactly round(0.7 n) weights are still zero
    assert report.zeros_in_scope == round(0.7 * report.weights_in_scope)
    zeros = sum(int((layer.weight == 0).sum()) for layer in block_linears(model).values())
    assert zeros == report.zeros_in_scope
    assert (training["steps"], training["pruning_steps"]) == (2 + 2 + 3, 3)
    assert training["samples_seen"] == 7 * 4
    survivors = [layer.weight[layer.weight != 0] for layer in block_linears(model).values()]
    originals = [before[n][layer.weight != 0] for n, layer in block_linears(model).items()]
    assert any(not torch.equal(a, b) for a, b in zip(survivors, originals, strict=True))


def test_qat_trains_under_fake_quantization_and_converts_to_real_int8(
    compose_config, tiny_inputs, tmp_path
):
    config = _config(compose_config, "prune=0.5", "recovery=finetune", "recovery.steps=2",
                     "quant=int8_qat")  # fmt: skip
    model = tiny_bert()
    prune_and_recover(config, model, tiny_bert(), _tiny_batches(tiny_inputs), CompressionContext())
    assert any(hasattr(m, "parametrizations") for m in model.modules())
    save_artifact(tiny_bert(), tmp_path / "fp32")
    report = quantize_(Int8QATConfig(), model, CompressionContext())
    save_artifact(model, tmp_path / "qat")
    assert report.layers_quantized == 2 * 6 + 2 + 3  # Linears + embedding tables
    assert not any(hasattr(m, "parametrizations") for m in model.modules())
    assert disk_bytes(tmp_path / "qat") < disk_bytes(tmp_path / "fp32")


def test_fake_quantization_rounds_weights_to_the_int8_grid_with_straight_through_gradients():
    model = tiny_bert()
    add_fake_quantization(model)
    linear = model.bert.encoder.layer[0].intermediate.dense
    weight = linear.weight
    scale = float(linear.parametrizations.weight.original.detach().abs().max()) / 127
    assert torch.allclose(weight / scale, (weight / scale).round(), atol=1e-4)
    F.linear(torch.ones(1, 32), weight).sum().backward()
    assert linear.parametrizations.weight.original.grad is not None


def test_distillation_of_language_model_logits_scores_next_tokens():
    generator = torch.Generator().manual_seed(0)
    student = torch.randn(2, 5, 7, generator=generator)
    teacher = torch.randn(2, 5, 7, generator=generator)
    tokens = torch.randint(0, 7, (2, 5), generator=generator)
    flat = distillation_loss(
        student[:, :-1].reshape(-1, 7), teacher[:, :-1].reshape(-1, 7),
        tokens[:, 1:].reshape(-1), 0.5, 2.0,
    )  # fmt: skip
    assert float(distillation_loss(student, teacher, tokens, 0.5, 2.0)) == pytest.approx(
        float(flat)
    )


def test_the_recovered_model_cache_key_covers_the_seed(compose_config, tmp_path):
    """Jobs of one recipe under seed=0,1 must not share a cached recovered model: a replicate
    that reuses another's training repeats nothing but the timing."""
    baseline = Baseline(tmp_path / "minilm-sentiment-abc", {})
    keys = {
        seed: recovery_key(_config(compose_config, "recovery=finetune", f"seed={seed}"), baseline)
        for seed in (0, 1)
    }
    assert keys[0] != keys[1]
    same = _config(compose_config, "recovery=finetune", "seed=0", "quant=int8")
    assert recovery_key(same, baseline) == keys[0]  # quantization happens after the cache
