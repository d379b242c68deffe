"""Tiny causal LMs built in code: a Llama with grouped key/value heads (like SmolLM2) and a
GPT-2 (Conv1D projections), plus MiniLM's real WordPiece tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import (
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerBase,
)

from compress.models import sources
from tests.conftest import MINILM

VOCAB = 30522  # MiniLM's tokenizer


def tiny_llama(seed: int = 0, **overrides) -> LlamaForCausalLM:
    """2 blocks, 6 query heads of size 8 in 2 key/value groups of 3; peaked logits (large
    init) so that greedy choices are far from ties."""
    torch.manual_seed(seed)
    sizes = {
        "hidden_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 6,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "intermediate_size": 64,
        "vocab_size": VOCAB,
        "max_position_embeddings": 256,
        "tie_word_embeddings": True,
        "initializer_range": 0.2,
    }
    return LlamaForCausalLM(LlamaConfig(**(sizes | overrides))).eval()


def tiny_gpt2(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=256, vocab_size=VOCAB,
                        initializer_range=0.2, bos_token_id=1, eos_token_id=2)  # fmt: skip
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(sources.resolve(MINILM, tmp_path_factory.mktemp("unused")))


@pytest.fixture(scope="session")
def tiny_llama_dir(
    tmp_path_factory: pytest.TempPathFactory, tokenizer: PreTrainedTokenizerBase
) -> Path:
    """The tiny Llama saved like a hub checkpoint, with MiniLM's tokenizer."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    tiny_llama().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def token_ids(tokenizer: PreTrainedTokenizerBase) -> torch.Tensor:
    text = (
        "Anarchism is a political philosophy that advocates self-governed societies based on "
        "voluntary institutions. These are often described as stateless societies."
    )
    return torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"])
