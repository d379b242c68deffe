"""The model families the tool knows, as data: where a family's transformer block keeps the
parts that structured pruning cuts, which norm feeds which projections (SmoothQuant), and
which backends export it. A new family that shares a shape costs a table entry.

Torch-free and cheap: :func:`family_problems` refuses a method a family cannot take from
``config.json``'s ``model_type``, before any weight loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BlockLayout:
    """Dotted paths, inside one transformer block, of the parts structured pruning cuts.

    Fused projections are named once per part they hold, in the order of their output rows:
    ``query = key = value = "attn.c_attn"`` says the rows are ``[query | key | value]``
    (query heads, then key/value heads); ``up = ("mlp.gate_up_proj",) * 2`` says they are two
    equal halves (``[gate | up]``). ``head_rows``: other projections with one row block per
    query head (DeBERTa's relative-position projections), cut with the query heads where the
    block has them. ``head_bias_kwarg`` names a per-head bias passed into the attention
    module on every call (MPNet's relative position bias): it is sliced to the kept heads.
    ``head_config`` names the config fields (query heads, key/value heads, head size) that
    describe the kept heads when every block keeps as many; ``None`` where the model derives
    its head size from the head count (loading then cuts the recorded heads out again).
    ``width_config``: the config field of the feed-forward width.
    """

    attention: str
    query: str
    key: str
    value: str
    output: str
    up: tuple[str, ...]
    down: str
    head_rows: tuple[str, ...] = ()
    head_bias_kwarg: str | None = None
    head_config: tuple[str, str, str] | None = None
    width_config: str = "intermediate_size"


# SmoothQuant: per block, a norm and every projection that reads its output (nothing else
# does: pre-norm blocks). Post-norm encoders have none (their norm also feeds the residual).
Folds = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class Family:
    """One model family: the ``model_type`` values of its ``config.json``, the class name of
    its transformer block, how that block is laid out, and its SmoothQuant folds.
    ``onnx_fusion``: ONNX Runtime's BERT fusions apply to its exported graph.
    ``whole_tables``: embedding tables the model reads whole (``.weight``) instead of looking
    rows up, which an int8 row lookup cannot stand in for (they stay float)."""

    name: str
    model_types: tuple[str, ...]
    block: str
    layout: BlockLayout
    decoder: bool = False
    folds: Folds = ()
    onnx_fusion: bool = True
    whole_tables: tuple[str, ...] = ()


# fmt: off
_BERT = BlockLayout(
    attention="attention.self", query="attention.self.query", key="attention.self.key",
    value="attention.self.value", output="attention.output.dense",
    up=("intermediate.dense",), down="output.dense",
)
_DEBERTA = BlockLayout(
    attention="attention.self", query="attention.self.query_proj",
    key="attention.self.key_proj", value="attention.self.value_proj",
    output="attention.output.dense", up=("intermediate.dense",), down="output.dense",
    head_rows=("attention.self.pos_query_proj", "attention.self.pos_key_proj"),
)
_DISTILBERT = BlockLayout(
    attention="attention", query="attention.q_lin", key="attention.k_lin",
    value="attention.v_lin", output="attention.out_lin", up=("ffn.lin1",), down="ffn.lin2",
    width_config="hidden_dim",
)
_MPNET = BlockLayout(
    attention="attention.attn", query="attention.attn.q", key="attention.attn.k",
    value="attention.attn.v", output="attention.attn.o",
    up=("intermediate.dense",), down="output.dense", head_bias_kwarg="position_bias",
)
_MODERNBERT = BlockLayout(  # Wqkv: [query | key | value]; Wi: [input | gate]
    attention="attn", query="attn.Wqkv", key="attn.Wqkv", value="attn.Wqkv",
    output="attn.Wo", up=("mlp.Wi", "mlp.Wi"), down="mlp.Wo",
)
_GPT2 = BlockLayout(  # Conv1D layers (transposed weights); c_attn: [query | key | value]
    attention="attn", query="attn.c_attn", key="attn.c_attn", value="attn.c_attn",
    output="attn.c_proj", up=("mlp.c_fc",), down="mlp.c_proj", width_config="n_inner",
)
_HEAD_CONFIG = ("num_attention_heads", "num_key_value_heads", "head_dim")
# grouped KV heads: query head h reads key/value head h // (query heads / KV heads)
_LLAMA = BlockLayout(
    attention="self_attn", query="self_attn.q_proj", key="self_attn.k_proj",
    value="self_attn.v_proj", output="self_attn.o_proj",
    up=("mlp.gate_proj", "mlp.up_proj"), down="mlp.down_proj", head_config=_HEAD_CONFIG,
)
_PHI3 = BlockLayout(  # qkv_proj: [query | key | value]; gate_up_proj: [gate | up]
    attention="self_attn", query="self_attn.qkv_proj", key="self_attn.qkv_proj",
    value="self_attn.qkv_proj", output="self_attn.o_proj",
    up=("mlp.gate_up_proj", "mlp.gate_up_proj"), down="mlp.down_proj",
    head_config=_HEAD_CONFIG,
)
_QKV = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")
_LLAMA_FOLDS: Folds = (
    ("input_layernorm", _QKV), ("post_attention_layernorm", ("mlp.gate_proj", "mlp.up_proj")),
)
# Gemma normalizes the attention output too (post_attention_layernorm): the MLP's own norm
# is pre_feedforward_layernorm; both scale by (1 + weight)
_GEMMA_FOLDS: Folds = (
    ("input_layernorm", _QKV), ("pre_feedforward_layernorm", ("mlp.gate_proj", "mlp.up_proj")),
)

FAMILIES: tuple[Family, ...] = (
    Family("BERT", ("bert",), "BertLayer", _BERT),
    Family("RoBERTa", ("roberta",), "RobertaLayer", _BERT),
    Family("XLM-R", ("xlm-roberta",), "XLMRobertaLayer", _BERT),
    Family("ELECTRA", ("electra",), "ElectraLayer", _BERT),
    Family("DistilBERT", ("distilbert",), "TransformerBlock", _DISTILBERT),
    Family("DeBERTa-v2/v3", ("deberta-v2",), "DebertaV2Layer", _DEBERTA,
           whole_tables=("rel_embeddings",)),
    # layer 0 has no attention norm (nn.Identity): the embeddings' norm also feeds the residual
    Family("ModernBERT", ("modernbert",), "ModernBertEncoderLayer", _MODERNBERT,
           folds=(("attn_norm", ("attn.Wqkv",)), ("mlp_norm", ("mlp.Wi",))), onnx_fusion=False),
    Family("MPNet", ("mpnet",), "MPNetLayer", _MPNET),
    Family("GPT-2", ("gpt2",), "GPT2Block", _GPT2, decoder=True,
           folds=(("ln_1", ("attn.c_attn",)), ("ln_2", ("mlp.c_fc",)))),
    Family("Llama", ("llama",), "LlamaDecoderLayer", _LLAMA, True, _LLAMA_FOLDS),
    Family("Mistral", ("mistral",), "MistralDecoderLayer", _LLAMA, True, _LLAMA_FOLDS),
    Family("Qwen2", ("qwen2",), "Qwen2DecoderLayer", _LLAMA, True, _LLAMA_FOLDS),
    Family("Qwen3", ("qwen3",), "Qwen3DecoderLayer", _LLAMA, True, _LLAMA_FOLDS),
    Family("Phi-3", ("phi3",), "Phi3DecoderLayer", _PHI3, decoder=True, folds=(
        ("input_layernorm", ("self_attn.qkv_proj",)),
        ("post_attention_layernorm", ("mlp.gate_up_proj",)),
    )),
    Family("Gemma 2", ("gemma2",), "Gemma2DecoderLayer", _LLAMA, True, _GEMMA_FOLDS),
    Family("Gemma 3", ("gemma3_text",), "Gemma3DecoderLayer", _LLAMA, True, _GEMMA_FOLDS),
)
# fmt: on

BY_MODEL_TYPE = {model_type: f for f in FAMILIES for model_type in f.model_types}
BY_BLOCK = {f.block: f for f in FAMILIES}

# prune_method options that cut a family's blocks by its layout (compress/conf/prune_method)
STRUCTURED_METHODS = ("heads", "heads_gradient", "neurons", "heads_neurons", "layers")
# quantization levels that fold into a family's norms
FOLDING_LEVELS = ("int8_smoothquant",)
# backends that export encoders only (a decoder's key/value cache is no exported output)
ENCODER_BACKENDS = ("onnxruntime", "torch_compiled")


def family_of(model_type: str | None) -> Family | None:
    return BY_MODEL_TYPE.get(model_type or "")


def model_type_of(folder: Path) -> str | None:
    """``model_type`` of the ``config.json`` in ``folder``; None where there is none."""
    try:
        return json.loads((Path(folder) / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


# config.json keys that name how many positions a model takes, by family
POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


def positions_of(model_config: dict) -> int | None:
    """How many token positions the model of this ``config.json`` takes; None if it says not."""
    return next((int(model_config[k]) for k in POSITION_KEYS if model_config.get(k)), None)


def _names(families) -> str:
    return ", ".join(f"{f.name} ({'/'.join(f.model_types)})" for f in families)


def family_problems(
    model_type: str | None,
    prune_method: str = "none",
    quant: str = "fp32",
    backend: str = "torch",
) -> list[str]:
    """One line per method (given by its config option name) that the family of
    ``model_type`` cannot take, each listing the families that can; empty when all can.
    An unknown ``model_type`` is refused only by the methods that need the family's layout."""
    family = family_of(model_type)
    seen = f"model_type={model_type}" + (f" ({family.name})" if family else "")
    problems = []
    if prune_method in STRUCTURED_METHODS and family is None:
        problems.append(
            f"prune_method={prune_method} does not know the blocks of {seen}, accepted: "
            f"a model of the families {_names(FAMILIES)}"
        )
    if quant in FOLDING_LEVELS and (family is None or not family.folds):
        foldable = [f for f in FAMILIES if f.folds]
        problems.append(
            f"quant={quant} finds no norm that feeds only projections in {seen}, so it would "
            f"smooth nothing, accepted: quant=int8_weight_only or int8 for it, or a model of "
            f"the families {_names(foldable)}"
        )
    if backend in ENCODER_BACKENDS and family is not None and family.decoder:
        encoders = [f for f in FAMILIES if not f.decoder]
        problems.append(
            f"backend={backend} exports encoders only and {seen} is a decoder, accepted: "
            f"backend=torch for it, or a model of the families {_names(encoders)}"
        )
    return problems
