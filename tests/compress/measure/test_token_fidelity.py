"""Token-level fidelity to the baseline: KL divergence, top-1 agreement and the change of the
reference token's probability, against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compress.measure.perplexity import perplexity
from compress.measure.token_fidelity import position_fidelity
from tests.fixtures.decoders import tiny_llama


def test_kl_top1_and_probability_change_match_a_direct_computation_on_a_toy_case():
    # 2 positions, 3-token vocabulary; baseline P, compressed Q written out by hand
    p = np.array([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]])
    q = np.array([[0.5, 0.4, 0.1], [0.2, 0.6, 0.2]])
    targets = torch.tensor([1, 2])
    figures = position_fidelity(torch.tensor(np.log(q)), torch.tensor(np.log(p)), targets)
    kl = [sum(p[i, v] * np.log(p[i, v] / q[i, v]) for v in range(3)) for i in range(2)]
    assert figures["kl"].tolist() == pytest.approx(kl, rel=1e-12)
    assert kl[0] == pytest.approx(0.7 * np.log(0.7 / 0.5) + 0.2 * np.log(0.2 / 0.4))
    assert figures["top1"].tolist() == [True, False]  # argmax 0 = 0; then 2 vs 1
    assert figures["prob_delta"].tolist() == pytest.approx([0.4 - 0.2, 0.2 - 0.5])


def test_identical_logits_have_zero_kl_and_full_agreement():
    logits = torch.randn(300, 50, generator=torch.Generator().manual_seed(0)) * 5
    figures = position_fidelity(logits, logits.clone(), torch.randint(0, 50, (300,)))
    assert (figures["kl"] == 0).all() and figures["top1"].all()
    assert (figures["prob_delta"] == 0).all()


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="do not match"):
        position_fidelity(torch.zeros(3, 5), torch.zeros(3, 4), torch.zeros(3, dtype=torch.long))


def test_perplexity_against_the_same_model_has_zero_kl_and_agreement_one(token_ids):
    model = tiny_llama()
    result = perplexity(model, token_ids, window=8, stride=3, reference=model)
    assert result["kl_divergence"] == result["kl_divergence_p99"] == 0
    assert result["top1_agreement"] == 1 and result["ref_prob_delta"] == 0
    assert sum(result["window_top1"]) == result["tokens"]
    assert len(result["window_kl"]) == result["windows"]


def test_perplexity_against_another_model_matches_each_position_computed_alone(token_ids):
    """KL over strided windows equals the KL of each token's distributions, each computed
    from the same context one forward at a time."""
    model, baseline = tiny_llama(seed=1), tiny_llama(seed=0)
    result = perplexity(model, token_ids, window=64, stride=32, reference=baseline)
    kls, agree = [], []
    with torch.no_grad():
        for t in range(1, len(token_ids)):
            ids = token_ids[:t].unsqueeze(0)
            log_q = torch.log_softmax(model(input_ids=ids).logits[0, -1].double(), -1)
            log_p = torch.log_softmax(baseline(input_ids=ids).logits[0, -1].double(), -1)
            kls.append(float((log_p.exp() * (log_p - log_q)).sum()))
            agree.append(bool(log_q.argmax() == log_p.argmax()))
    assert result["kl_divergence"] > 0.01
    assert result["kl_divergence"] == pytest.approx(np.mean(kls), rel=1e-4)
    assert result["kl_divergence_median"] == pytest.approx(np.median(kls), rel=1e-4)
    assert result["top1_agreement"] == pytest.approx(np.mean(agree))
