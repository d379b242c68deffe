"""A tiny random-init model of every family the tool knows, built in code from transformers'
own config classes (no hub, no weights): 2 blocks (or as many as asked), hidden size 64, 4
query heads of 16 (2
key/value heads in the decoders that group them), 128 feed-forward neurons, vocabulary
1000. Encoders get a 16-class classification head, decoders an LM head."""

from __future__ import annotations

from collections.abc import Callable

import torch
import transformers as tf

from compress.models.families import family_of

VOCAB = 1000
_SIZES = {"vocab_size": VOCAB, "hidden_size": 64, "num_attention_heads": 4,
          "intermediate_size": 128}  # fmt: skip
# 16 classes: enough logits for a signal-to-noise ratio to mean something
_ENCODER = _SIZES | {"pad_token_id": 0, "num_labels": 16}
_DECODER = _SIZES | {"num_key_value_heads": 2, "head_dim": 16, "pad_token_id": 0,
                     "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": True}  # fmt: skip

# model_type -> its config with ``n`` blocks
# fmt: off
CONFIGS: dict[str, Callable[[int], tf.PretrainedConfig]] = {
    "bert": lambda n: tf.BertConfig(**_ENCODER, num_hidden_layers=n),
    "roberta": lambda n: tf.RobertaConfig(**_ENCODER, num_hidden_layers=n),
    "xlm-roberta": lambda n: tf.XLMRobertaConfig(**_ENCODER, num_hidden_layers=n),
    "electra": lambda n: tf.ElectraConfig(**_ENCODER, num_hidden_layers=n, embedding_size=32),
    "distilbert": lambda n: tf.DistilBertConfig(vocab_size=VOCAB, dim=64, n_layers=n, n_heads=4,
                                                hidden_dim=128, pad_token_id=0, num_labels=16),
    # relative attention with separate position projections (DeBERTa-v2's own layout)
    "deberta-v2": lambda n: tf.DebertaV2Config(**_ENCODER, num_hidden_layers=n,
                                               relative_attention=True, share_att_key=False,
                                               pos_att_type=["p2c", "c2p"],
                                               max_relative_positions=64),
    "modernbert": lambda n: tf.ModernBertConfig(**_ENCODER, num_hidden_layers=n, bos_token_id=1,
                                                eos_token_id=2, cls_token_id=1, sep_token_id=2),
    "mpnet": lambda n: tf.MPNetConfig(**_ENCODER, num_hidden_layers=n),
    "gpt2": lambda n: tf.GPT2Config(vocab_size=VOCAB, n_embd=64, n_layer=n, n_head=4,
                                    bos_token_id=1, eos_token_id=2),
    "llama": lambda n: tf.LlamaConfig(**_DECODER, num_hidden_layers=n),
    "mistral": lambda n: tf.MistralConfig(**_DECODER, num_hidden_layers=n),
    "qwen2": lambda n: tf.Qwen2Config(**_DECODER, num_hidden_layers=n),
    "qwen3": lambda n: tf.Qwen3Config(**_DECODER, num_hidden_layers=n),
    "phi3": lambda n: tf.Phi3Config(**_DECODER, num_hidden_layers=n),
    "gemma2": lambda n: tf.Gemma2Config(**_DECODER, num_hidden_layers=n),
    "gemma3_text": lambda n: tf.Gemma3TextConfig(**_DECODER, num_hidden_layers=n),
}
# fmt: on


def tiny_model(model_type: str, seed: int = 0, blocks: int = 2) -> torch.nn.Module:
    """The tiny model of ``model_type`` with ``blocks`` blocks, identical for the same seed,
    in eval mode."""
    config = CONFIGS[model_type](blocks)
    torch.manual_seed(seed)
    decoder = family_of(model_type).decoder
    auto = tf.AutoModelForCausalLM if decoder else tf.AutoModelForSequenceClassification
    return auto.from_config(config).eval()


def tiny_inputs(model_type: str, batch: int = 2, length: int = 12, seed: int = 1) -> dict:
    """Token ids (away from the special ids) and a full attention mask."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (batch, length), generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
