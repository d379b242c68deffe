"""A GGUF model run by llama.cpp (through llama-cpp-python's C bindings) that answers like a
transformers causal LM: ``model(input_ids=...)`` returns ``.logits`` of every position, and
``generate(...)`` decodes greedily (or samples) with llama.cpp's KV cache, handing each new
token to a streamer, so that the tasks time, score and compare it exactly as they do the
torch models.

A batch of prompts is a batch of llama.cpp sequences in one context (left padding is dropped:
each sequence starts at position 0). One context is kept and reused; it is rebuilt, outside
any timed call of the same shape, when a call needs more sequences or more cells per
sequence than it has.
"""

from __future__ import annotations

import ctypes
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from compress.backends.token_loop import NoStreamer, new_tokens

# KV cells per sequence are allocated in multiples of this.
_CELLS = 256
_LOGS_OFF = None  # the C callback that drops llama.cpp's log lines; kept alive here


def _silence(llama_cpp) -> None:
    global _LOGS_OFF
    if _LOGS_OFF is None:
        _LOGS_OFF = llama_cpp.llama_log_callback(lambda level, text, data: None)
        llama_cpp.llama_log_set(_LOGS_OFF, ctypes.c_void_p())
        llama_cpp.llama_backend_init()


class _Context:
    """A llama.cpp context for ``sequences`` sequences of up to ``cells`` tokens each, and a
    batch big enough for all of them at once."""

    def __init__(
        self,
        llama_cpp,
        model,
        sequences: int,
        cells: int,
        threads: int,
        kv_type: int,
        flash_attention: int,
    ) -> None:
        params = llama_cpp.llama_context_default_params()
        params.type_k = params.type_v = kv_type
        params.flash_attn_type = flash_attention
        params.n_ctx = sequences * cells
        params.n_batch = params.n_ctx
        params.n_ubatch = min(512, params.n_ctx)
        params.n_seq_max = sequences
        params.n_threads = params.n_threads_batch = threads
        params.no_perf = True
        self.lib, self.sequences, self.cells = llama_cpp, sequences, cells
        self.ctx = llama_cpp.llama_init_from_model(model, params)
        if not self.ctx:
            raise RuntimeError(f"llama.cpp could not create a context of {params.n_ctx} cells")
        self.batch = llama_cpp.llama_batch_init(params.n_ctx, 0, 1)

    def fits(self, sequences: int, cells: int) -> bool:
        return sequences <= self.sequences and cells <= self.cells

    def clear(self) -> None:
        self.lib.llama_memory_clear(self.lib.llama_get_memory(self.ctx), True)

    def decode(self, tokens: list[tuple[int, int, int, bool]], vocab: int) -> np.ndarray:
        """Run ``(token, position, sequence, wants_logits)`` entries in one batch; the logits
        of the entries that want them, in order."""
        batch = self.batch
        for i, (token, position, sequence, logits) in enumerate(tokens):
            batch.token[i] = token
            batch.pos[i] = position
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = sequence
            batch.logits[i] = logits
        batch.n_tokens = len(tokens)
        status = self.lib.llama_decode(self.ctx, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode failed ({status}) on {len(tokens)} tokens")
        outputs = sum(1 for entry in tokens if entry[3])
        pointer = self.lib.llama_get_logits(self.ctx)
        return np.ctypeslib.as_array(pointer, shape=(outputs, vocab)).copy()

    def free(self) -> None:
        self.lib.llama_batch_free(self.batch)
        self.lib.llama_free(self.ctx)


def system_info() -> str:
    """What llama.cpp's CPU backend was built with (its kernels follow these flags)."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    return " ".join(part.split(" = ")[0].strip() for part in info.split("|")
                    if part.strip().endswith("= 1")).replace("CPU : ", "")  # fmt: skip


def _rows(input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> list[list[int]]:
    """Each row's tokens without its padding."""
    if attention_mask is None:
        return input_ids.tolist()
    return [row[mask.bool()].tolist() for row, mask in zip(input_ids, attention_mask, strict=True)]


def _choose(logits: torch.Tensor, sample: bool, temperature: float, top_p: float) -> torch.Tensor:
    """The next token of each row: the most likely, or drawn (torch's seeded generator) from
    the distribution at ``temperature`` cut to its top-``top_p`` mass."""
    if not sample:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, -1)
    ordered, order = probs.sort(-1, descending=True)
    outside = ordered.cumsum(-1) - ordered > top_p  # the first token is always kept
    ordered = ordered.masked_fill(outside, 0.0)
    picked = torch.multinomial(ordered / ordered.sum(-1, keepdim=True), 1)
    return order.gather(-1, picked).squeeze(-1)


# KV cache element types by name: their ggml type and bytes per element
KV_TYPES = {"f16": (1, 2), "f32": (0, 4)}
# llama.cpp's flash attention setting by name (llama_flash_attn_type)
FLASH_ATTENTION = {"auto": -1, "off": 0, "on": 1}


class LlamaCppModel:
    """A GGUF file loaded by llama.cpp; ``config`` is the transformers config of the model it
    was written from, ``kv_values_per_token`` the keys and values one token caches (all
    blocks), ``kv_cache`` their type (``KV_TYPES``), ``flash_attention`` llama.cpp's setting
    (``FLASH_ATTENTION``; its CPU kernel computes in float16)."""

    def __init__(
        self,
        path: Path,
        config,
        kv_values_per_token: int = 0,
        threads: int = 0,
        kv_cache: str = "f16",
        flash_attention: str = "auto",
    ) -> None:
        import llama_cpp

        _silence(llama_cpp)
        self.lib, self.config, self.path = llama_cpp, config, Path(path)
        self.kv_type, element_bytes = KV_TYPES[kv_cache]
        self.flash_attention = FLASH_ATTENTION[flash_attention]
        self.kv_bytes_per_token = kv_values_per_token * element_bytes
        self.threads = threads or torch.get_num_threads()
        params = llama_cpp.llama_model_default_params()
        self.model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {path}")
        self.vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(self.model))
        self._context: _Context | None = None

    def context(self, sequences: int, cells: int) -> _Context:
        """The kept context, rebuilt when it is too small for this call; cleared."""
        if self._context is None or not self._context.fits(sequences, cells):
            if self._context is not None:
                self._context.free()
            cells = -(-cells // _CELLS) * _CELLS
            self._context = _Context(self.lib, self.model, sequences, cells, self.threads,
                                     self.kv_type, self.flash_attention)  # fmt: skip
        self._context.clear()
        return self._context

    def __call__(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **unused
    ) -> SimpleNamespace:
        """Logits of every position of every row (zeros at padding), each row on its own."""
        batch, length = input_ids.shape
        logits = torch.zeros(batch, length, self.vocab)
        for index, row in enumerate(_rows(input_ids, attention_mask)):
            context = self.context(1, len(row))
            entries = [(token, position, 0, True) for position, token in enumerate(row)]
            logits[index, length - len(row) :] = torch.from_numpy(
                context.decode(entries, self.vocab)
            )
        return SimpleNamespace(logits=logits)

    def _eos(self, eos_token_id) -> set[int]:
        eos = eos_token_id if eos_token_id is not None else self.config.eos_token_id
        return set(eos if isinstance(eos, list | tuple) else [] if eos is None else [eos])

    def _prefill(self, rows: list[list[int]], new_tokens: int) -> tuple[_Context, torch.Tensor]:
        """Every row's prompt in one batch, one sequence each; the logits of its last token."""
        context = self.context(len(rows), max(map(len, rows)) + new_tokens)
        entries = [(token, position, seq, position == len(row) - 1)
                   for seq, row in enumerate(rows)
                   for position, token in enumerate(row)]  # fmt: skip
        return context, torch.from_numpy(context.decode(entries, self.vocab))

    @torch.inference_mode()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        max_new_tokens: int = 20,
        min_new_tokens: int = 0,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        streamer=None,
        pad_token_id: int | None = None,
        eos_token_id: int | list[int] | None = None,
        return_dict_in_generate: bool = False,
        **unused,
    ):
        """transformers' ``generate`` for the arguments the tasks pass: the prompt rows, then
        up to ``max_new_tokens`` new ones (end of sequence suppressed before
        ``min_new_tokens``; a finished row is padded with ``pad_token_id``). Long because it
        keeps transformers' signature."""
        rows = _rows(input_ids, attention_mask)
        streamer = streamer or NoStreamer()
        streamer.put(input_ids)
        context, logits = self._prefill(rows, max_new_tokens)

        def next_logits(step: int, tokens: torch.Tensor) -> torch.Tensor:
            entries = [(int(t), len(row) + step, seq, True)
                       for seq, (t, row) in enumerate(zip(tokens, rows, strict=True))]  # fmt: skip
            return torch.from_numpy(context.decode(entries, self.vocab))

        new = new_tokens(logits, next_logits, max_new_tokens, min_new_tokens,
                         self._eos(eos_token_id), pad_token_id if pad_token_id is not None else 0,
                         streamer, partial(_choose, sample=do_sample, temperature=temperature,
                                           top_p=top_p))  # fmt: skip
        sequences = torch.cat([input_ids, new], 1)
        if not return_dict_in_generate:
            return sequences
        cached = sum(map(len, rows)) + len(rows) * (new.shape[1] - 1)
        return SimpleNamespace(sequences=sequences, past_key_values=None,
                               kv_cache_bytes=cached * self.kv_bytes_per_token)  # fmt: skip

    def eval(self) -> LlamaCppModel:
        return self

    def close(self) -> None:
        """Free the context and the model now."""
        if self._context is not None:
            self._context.free()
            self._context = None
        if self.model:
            self.lib.llama_model_free(self.model)
            self.model = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # at interpreter exit the library may be unloaded first
            pass
