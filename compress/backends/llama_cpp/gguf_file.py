"""The pruned float model written as a GGUF file that llama.cpp loads, with the ``gguf`` package's
writer (what llama.cpp's ``convert_hf_to_gguf.py`` uses; that script ships only in the
llama-cpp-python source tree, not in its wheel, and reads a saved folder, not a model in
memory).

Families are data (:data:`FAMILIES`): the GGUF architecture and whether llama.cpp's rotary
embedding of that architecture pairs neighbouring features (Llama: ``rope_type`` norm), in
which case each head's query and key rows are interleaved from transformers' two halves, as
the converter does. Pruned models keep their real shapes, read from each block's weights:
blocks that all keep the same heads and FFN width (what this tool's pruning methods leave)
are written as the family's own architecture; blocks that differ as llama.cpp's ``deci``
architecture (the same Llama block, with per-block ``head_count``, ``head_count_kv`` and
``feed_forward_length`` arrays). Removed blocks are simply not there.

The vocabulary of a byte-level BPE tokenizer (SmolLM2's, Llama 3's, Qwen2's) is written as
llama.cpp's ``gpt2`` vocabulary with its merges, padded to the embedding rows, with the
pre-tokenizer ``default``; any other tokenizer as ``none`` (placeholder tokens). The pipeline
hands llama.cpp token ids, never text, so neither matters to the measurements; a user who
feeds the file text needs the BPE form (and, for exact splitting, the model's own
pre-tokenizer name).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np
import torch
from torch import nn

from compress.models.layers import transformer_blocks


@dataclass(frozen=True)
class Structure:
    """What every block of the (pruned) model keeps, read from its weights."""

    heads: list[int]
    kv_heads: list[int]
    ffn: list[int]
    head_dim: int

    @property
    def uniform(self) -> bool:
        return len({*zip(self.heads, self.kv_heads, self.ffn, strict=True)}) == 1

    def kv_values_per_token(self) -> int:
        """Keys and values one token caches in all blocks."""
        return sum(2 * kv * self.head_dim for kv in self.kv_heads)


@dataclass(frozen=True)
class Family:
    """``arch``: the GGUF architecture of a model whose blocks all keep the same shapes;
    ``varied``: the one that reads per-block head and FFN counts, where llama.cpp has one
    (its ``llama`` architecture reads block 0's for all; ``deci``, the same Llama block, reads
    each block's); ``interleave_rope``: llama.cpp's rope of these architectures pairs
    features (i, i+1), so q and k rows are permuted."""

    arch: gguf.MODEL_ARCH
    interleave_rope: bool
    varied: gguf.MODEL_ARCH | None = None

    def arch_for(self, structure: Structure) -> gguf.MODEL_ARCH:
        if structure.uniform:
            return self.arch
        if self.varied is None:
            raise ValueError(
                f"llama.cpp's {gguf.MODEL_ARCH_NAMES[self.arch]} architecture needs the same "
                "head and FFN counts in every block"
            )
        return self.varied


FAMILIES = {
    "llama": Family(gguf.MODEL_ARCH.LLAMA, interleave_rope=True, varied=gguf.MODEL_ARCH.DECI),
    "qwen2": Family(gguf.MODEL_ARCH.QWEN2, interleave_rope=False),
}
# float level -> (the GGUF file type, the type of 2-D weights)
FLOAT_TYPES = {
    "fp32": (gguf.LlamaFileType.ALL_F32, gguf.GGMLQuantizationType.F32),
    "fp16": (gguf.LlamaFileType.MOSTLY_F16, gguf.GGMLQuantizationType.F16),
    "bf16": (gguf.LlamaFileType.MOSTLY_BF16, gguf.GGMLQuantizationType.BF16),
}


def family_of(model: nn.Module) -> Family:
    model_type = getattr(model.config, "model_type", None)
    if model_type not in FAMILIES:
        raise ValueError(
            f"the GGUF writer does not know model_type={model_type}; known: {', '.join(FAMILIES)}"
        )
    return FAMILIES[model_type]


def structure_of(model: nn.Module) -> Structure:
    blocks = transformer_blocks(model)
    head_dim = int(blocks[0].self_attn.head_dim)
    heads = [b.self_attn.q_proj.out_features // head_dim for b in blocks]
    kv_heads = [b.self_attn.k_proj.out_features // head_dim for b in blocks]
    ffn = [b.mlp.gate_proj.out_features for b in blocks]
    return Structure(heads, kv_heads, ffn, head_dim)


def _per_block(values: list[int]) -> int | list[int]:
    return values[0] if len(set(values)) == 1 else values


def interleave_rope(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """Rows of each head reordered from transformers' halves (x_i paired with x_{i+d/2}) to
    llama.cpp's neighbours (x_2i with x_2i+1): ``convert_hf_to_gguf``'s ``permute``."""
    shape = weight.shape
    halves = weight.reshape(heads, 2, shape[0] // heads // 2, *shape[1:])
    return halves.swapaxes(1, 2).reshape(shape)


def _rope_theta(config) -> float:
    parameters = getattr(config, "rope_parameters", None) or {}
    return float(parameters.get("rope_theta") or getattr(config, "rope_theta", None) or 10000.0)


def rope_problem(model_config: dict) -> str | None:
    """Rotary scaling this writer does not carry over (llama3, yarn, linear...)."""
    parameters = model_config.get("rope_parameters") or model_config.get("rope_scaling") or {}
    kind = parameters.get("rope_type") or parameters.get("type") or "default"
    return None if kind == "default" else f"rope_type={kind}"


def _merges(tokenizer) -> list[str]:
    """A byte-level BPE tokenizer's merges (``"a b"``); empty for any other kind."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    model = json.loads(backend.to_str()).get("model", {}) if backend is not None else {}
    if model.get("type") != "BPE":
        return []
    return [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]


def _tokens(tokenizer, vocab_size: int) -> tuple[list[str], list[int]]:
    """Token strings by id (padded to the embedding rows) and their GGUF types."""
    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    special = set(tokenizer.all_special_ids)
    added = set(getattr(tokenizer, "added_tokens_decoder", {}))
    tokens, types = [], []
    for index in range(vocab_size):
        if index not in by_id:
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        tokens.append(by_id[index])
        kind = gguf.TokenType.CONTROL if index in special else gguf.TokenType.NORMAL
        types.append(gguf.TokenType.USER_DEFINED if index in added - special else kind)
    return tokens, types


def _metadata(writer: gguf.GGUFWriter, model: nn.Module, structure: Structure) -> None:
    config = model.config
    writer.add_name(str(getattr(config, "_name_or_path", "") or "compressed model"))
    writer.add_context_length(int(config.max_position_embeddings))
    writer.add_embedding_length(int(config.hidden_size))
    writer.add_block_count(len(structure.heads))
    writer.add_feed_forward_length(_per_block(structure.ffn))
    writer.add_head_count(_per_block(structure.heads))
    writer.add_head_count_kv(_per_block(structure.kv_heads))
    writer.add_key_length(structure.head_dim)
    writer.add_value_length(structure.head_dim)
    writer.add_rope_dimension_count(structure.head_dim)
    writer.add_rope_freq_base(_rope_theta(config))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_vocab_size(int(config.vocab_size))


def _vocabulary(writer: gguf.GGUFWriter, tokenizer, vocab_size: int) -> str:
    """A byte-level BPE tokenizer as llama.cpp's ``gpt2`` vocabulary (tokens, types, merges,
    special ids, chat template); any other as ``none`` (``vocab_size`` placeholder tokens: the
    file runs on token ids only). Returns the vocabulary type written."""
    merges = _merges(tokenizer)
    if not merges:
        writer.add_tokenizer_model("none")
        return "none"
    tokens, types = _tokens(tokenizer, vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    for name, index in (("bos", tokenizer.bos_token_id), ("eos", tokenizer.eos_token_id),
                        ("pad", tokenizer.pad_token_id)):  # fmt: skip
        if index is not None:
            getattr(writer, f"add_{name}_token_id")(int(index))
    writer.add_add_bos_token(False)
    if isinstance(getattr(tokenizer, "chat_template", None), str):
        writer.add_chat_template(tokenizer.chat_template)
    return "gpt2"


def gguf_tensors(model: nn.Module, structure: Structure) -> dict[str, torch.Tensor]:
    """The model's float32 tensors by GGUF name, q and k rows in llama.cpp's rope order."""
    family = family_of(model)
    names = gguf.get_tensor_name_map(family.arch_for(structure), len(structure.heads))
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    tensors = {}
    for name, tensor in model.state_dict().items():
        if tied and name == "lm_head.weight":
            continue  # llama.cpp multiplies by token_embd when output is absent
        gguf_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ValueError(f"the GGUF writer has no name for tensor {name}")
        tensor = tensor.detach().float()
        if family.interleave_rope and ".self_attn." in name:
            block = int(name.split(".layers.")[1].split(".")[0])
            if ".q_proj." in name:
                tensor = interleave_rope(tensor, structure.heads[block])
            elif ".k_proj." in name:
                tensor = interleave_rope(tensor, structure.kv_heads[block])
        tensors[gguf_name] = tensor
    return tensors


def write_gguf(model: nn.Module, tokenizer, path: Path, level: str = "fp32") -> Structure:
    """Write ``model`` (float, on the CPU) as a GGUF file of float ``level`` (fp32, fp16,
    bf16: the type of its 2-D weights; norms and biases stay float32)."""
    file_type, weight_type = FLOAT_TYPES[level]
    structure = structure_of(model)
    arch = family_of(model).arch_for(structure)
    writer = gguf.GGUFWriter(str(path), gguf.MODEL_ARCH_NAMES[arch])
    _metadata(writer, model, structure)
    writer.add_file_type(int(file_type))
    _vocabulary(writer, tokenizer, int(model.config.vocab_size))
    for name, tensor in gguf_tensors(model, structure).items():
        data = tensor.numpy()
        kind = weight_type if data.ndim == 2 else gguf.GGMLQuantizationType.F32
        if kind == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(name, np.ascontiguousarray(data))
        elif kind == gguf.GGMLQuantizationType.F16:
            writer.add_tensor(name, data.astype(np.float16))
        else:
            writer.add_tensor(name, gguf.quants.quantize(data, kind), raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return structure
