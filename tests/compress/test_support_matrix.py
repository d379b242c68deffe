"""The support matrix of ``docs/support.md``, earned cell by cell: a tiny random-init model of
every family (``tests/compress/tiny.py``) goes through every pruning method, every level of
the torch backend, and every level of the exporting backends (encoders).

A cell is ✔ when the method ran, the model has the shapes it was pruned to, its outputs are
those of its float reference (exactly for pruning, by signal-to-noise ratio for quantized
levels), and the saved artifact reloads to the same logits. A cell the tool refuses is
refused by ``family_problems`` (the pre-flight line) *and* by the code path itself, in one
line. The last test renders the table and compares it with ``docs/support.md``
(``COMPRESS_WRITE_SUPPORT=1`` rewrites the page).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from compress.backends import compress_on, load_artifact
from compress.backends.onnxruntime.quantize import ort_quantize
from compress.backends.onnxruntime.runtime import OrtModel
from compress.backends.torch.artifact import save_artifact
from compress.config.backend import OnnxRuntimeBackendConfig, TorchBackendConfig
from compress.config.errors import ConfigError
from compress.config.prune import (
    HeadAndNeuronPruningConfig,
    HeadPruningConfig,
    LayerPruningConfig,
    MagnitudePruningConfig,
    NeuronPruningConfig,
    SemiStructuredPruningConfig,
)
from compress.config.quant import (
    BFloat16Config,
    Float16Config,
    Float32Config,
    Int4GPTQConfig,
    Int4WeightOnlyConfig,
    Int8DynamicConfig,
    Int8SmoothQuantConfig,
    Int8StaticConfig,
    Int8WeightOnlyConfig,
)
from compress.infra.context import CompressionContext
from compress.models.families import FAMILIES, family_of, family_problems
from compress.models.layers import transformer_blocks
from compress.pruning import prune_model
from compress.pruning.surgery import ffn_width, head_count, keep_heads, keep_neurons, kv_head_count
from tests.compress.tiny import tiny_inputs, tiny_model

DOC = Path(__file__).resolve().parents[2] / "docs" / "support.md"
MODEL_TYPES = [family.model_types[0] for family in FAMILIES]
ENCODERS = [t for t in MODEL_TYPES if not family_of(t).decoder]
RESULTS: dict[tuple[str, str, str], str] = {}  # (table, family, column) -> cell

PRUNING = {
    "heads": HeadPruningConfig(name="heads"),
    "neurons": NeuronPruningConfig(name="neurons"),
    "heads_neurons": HeadAndNeuronPruningConfig(name="heads_neurons"),
    "layers": LayerPruningConfig(name="layers"),
    "global_l1": MagnitudePruningConfig(name="global_l1"),
    "2to4": SemiStructuredPruningConfig(name="2to4"),
}
# level -> (config, least signal-to-noise ratio of its logits against the float model, dB)
TORCH_LEVELS = {
    "fp16": (Float16Config(), 30),
    "bf16": (BFloat16Config(), 20),
    "int8": (Int8DynamicConfig(), 15),
    "int8_static": (Int8StaticConfig(calibration_batches=1), 10),
    "int8_weight_only": (Int8WeightOnlyConfig(), 20),
    "int8_smoothquant": (Int8SmoothQuantConfig(calibration_batches=1), 15),
    "int4": (Int4WeightOnlyConfig(), 8),
    "int4_gptq": (Int4GPTQConfig(calibration_batches=1), 8),
}
ORT_LEVELS = {
    "int8": (Int8DynamicConfig(), 15),
    "int8_static": (Int8StaticConfig(calibration_batches=2), 10),
    "int4": (Int4WeightOnlyConfig(), 10),
}
COMPILED_LEVELS = {"fp32": (Float32Config(), 60), "int8_static": (Int8StaticConfig(), 10)}


def _batches(model_type: str) -> list[dict[str, torch.Tensor]]:
    """Calibration batches as a tokenizer gives them: an encoder's BERT tokenizer adds
    ``token_type_ids``, which not every encoder takes."""
    batches = [tiny_inputs(model_type, batch=4, length=12, seed=seed) for seed in (1, 2, 3)]
    if not family_of(model_type).decoder:
        batches = [b | {"token_type_ids": torch.zeros_like(b["input_ids"])} for b in batches]
    return batches


def _context(model_type: str, tmp_path: Path) -> CompressionContext:
    batches = _batches(model_type)
    return CompressionContext(calibration=lambda n: batches[:n], cache_dir=tmp_path / "cache")


def _probe(model_type: str) -> dict[str, torch.Tensor]:
    """Held-out inputs of another batch size and length than calibration's."""
    return tiny_inputs(model_type, batch=8, length=9, seed=7)


def _logits(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits.float()


def _snr_db(reference: torch.Tensor, other: torch.Tensor) -> float:
    noise = (reference - other).pow(2).sum().clamp_min(1e-30)
    return float(10 * torch.log10(reference.pow(2).sum() / noise))


def _expect_refusal(model_type: str, problems: list[str], run) -> str:
    """The code path refuses too, in one line; the cell names the reason (the pre-flight
    line's, said of any model)."""
    with pytest.raises(ConfigError) as refused:
        run()
    assert "\n" not in str(refused.value) and "accepted:" in str(refused.value)
    reason = problems[0].split(", accepted:")[0].split(", so ")[0]
    seen = f"model_type={model_type} ({family_of(model_type).name})"
    return "refused: " + reason.replace(seen, "the model")


def _refused(table: str, model_type: str, cell: str) -> None:
    """A backend refuses a family whole: every column of its table."""
    for column in TABLES[table][2]:
        RESULTS[table, model_type, column] = cell


def _check_shapes(model, method: str, before: dict) -> None:
    blocks = transformer_blocks(model)
    if method in ("heads", "heads_neurons"):
        assert {head_count(b) for b in blocks} == {before["heads"] // 2}
        assert {kv_head_count(b) for b in blocks} <= {before["kv_heads"], before["kv_heads"] // 2}
    if method in ("neurons", "heads_neurons"):
        assert {ffn_width(b) for b in blocks} == {before["width"] // 2}
    if method == "layers":
        assert len(blocks) == model.config.num_hidden_layers == before["blocks"] // 2


@pytest.mark.parametrize("method", list(PRUNING))
@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_pruning(model_type, method, tmp_path):
    model, inputs = tiny_model(model_type), _probe(model_type)
    first = transformer_blocks(model)[0]
    before = {"heads": head_count(first), "kv_heads": kv_head_count(first),
              "width": ffn_width(first), "blocks": len(transformer_blocks(model))}  # fmt: skip
    report = prune_model(PRUNING[method], model, 0.5, _context(model_type, tmp_path))
    _check_shapes(model, method, before)
    if not report.structured:
        assert report.zero_fraction == pytest.approx(0.5, abs=0.01)
    save_artifact(model, tmp_path / "artifact")
    torch.testing.assert_close(
        _logits(load_artifact(tmp_path / "artifact"), inputs), _logits(model, inputs)
    )
    RESULTS["pruning", model_type, method] = "✔"


def _one_block(model_type: str) -> torch.nn.Module:
    """What the quantization and backend cells start from: one block (blocks are alike, and
    the pruning cells run on two), to keep the matrix within a few minutes."""
    return tiny_model(model_type, blocks=1)


def _pruned(model_type: str) -> torch.nn.Module:
    """The recipe's model: half the heads and half the neurons of every block removed."""
    model = _one_block(model_type)
    prune_model(PRUNING["heads_neurons"], model, 0.5, CompressionContext())
    return model


@pytest.mark.parametrize("level", list(TORCH_LEVELS))
@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_torch_level_on_a_pruned_model(model_type, level, tmp_path):
    config, bound_db = TORCH_LEVELS[level]
    model, context, inputs = _pruned(model_type), _context(model_type, tmp_path), _probe(model_type)
    reference = _logits(model, inputs)
    problems = family_problems(model_type, quant=config.name)

    def run():
        return compress_on(TorchBackendConfig(), model, config, context, tmp_path / "artifact")

    if problems:
        RESULTS["torch", model_type, level] = _expect_refusal(model_type, problems, run)
        return
    compressed = run()
    assert _snr_db(reference, _logits(compressed.model, inputs)) > bound_db
    reloaded = load_artifact(tmp_path / "artifact")
    torch.testing.assert_close(_logits(reloaded, inputs), _logits(compressed.model, inputs))
    RESULTS["torch", model_type, level] = "✔"


def _half_pruned(model_type: str) -> torch.nn.Module:
    """What the exporting backends get: two blocks, the first cut as heads_neurons at
    prune=0.5 cuts every block (heads 0 and 2 of 4, every other neuron), the second whole:
    one export covers a pruned and an unpruned block."""
    model = tiny_model(model_type)
    first = transformer_blocks(model)[0]
    keep_heads(first, [0, 2])
    keep_neurons(first, range(0, ffn_width(first), 2))
    return model


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_onnxruntime(model_type, tmp_path):
    """fp32 through the backend; the quantized levels from the same exported graph (the
    backend quantizes what it exported, with the same tools)."""
    problems = family_problems(model_type, backend="onnxruntime")
    model = tiny_model(model_type) if problems else _half_pruned(model_type)
    context, inputs = _context(model_type, tmp_path), _probe(model_type)

    def run():
        return compress_on(OnnxRuntimeBackendConfig(), model, Float32Config(), context,
                           tmp_path / "fp32")  # fmt: skip

    if problems:
        _refused("onnxruntime", model_type, _expect_refusal(model_type, problems, run))
        return
    reference = _logits(model, inputs)
    compressed = run()
    assert _snr_db(reference, _logits(compressed.model, inputs)) > 60
    torch.testing.assert_close(
        _logits(load_artifact(tmp_path / "fp32"), inputs), _logits(compressed.model, inputs)
    )
    RESULTS["onnxruntime", model_type, "fp32"] = "✔"
    for level, (config, bound_db) in ORT_LEVELS.items():
        source = tmp_path / f"{level}-source.onnx"
        shutil.copy(tmp_path / "fp32" / "model.onnx", source)
        ort_quantize(config, source, tmp_path / f"{level}.onnx", context)
        runner = OrtModel(tmp_path / f"{level}.onnx", model.config)
        assert _snr_db(reference, _logits(runner, inputs)) > bound_db, level
        RESULTS["onnxruntime", model_type, level] = "✔"


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_compiled_capture(model_type, tmp_path):
    """What the compiled backend compiles: the captured program, run as it is (compiling it,
    ~20 s a package, is the slow tier's): fp32 on the half-pruned model, static int8 (PT2E)
    on a one-block pruned one."""
    from compress.backends.compiled.quantize import capture
    from compress.backends.inputs import accepted_inputs, refuse_family

    problems = family_problems(model_type, backend="torch_compiled")
    if problems:
        refusal = _expect_refusal(
            model_type, problems, lambda: refuse_family(tiny_model(model_type), "torch_compiled")
        )
        _refused("torch_compiled", model_type, refusal)
        return
    context, inputs = _context(model_type, tmp_path), _probe(model_type)
    for level, (config, bound_db) in COMPILED_LEVELS.items():
        model = _half_pruned(model_type) if level == "fp32" else _pruned(model_type)
        sample = accepted_inputs(model, next(iter(context.calibration_batches(1, "export"))))
        probe = {k: inputs.get(k, torch.zeros_like(inputs["input_ids"])) for k in sample}
        reference = _logits(model, inputs)
        program, _ = capture(config, model, sample, context)
        with torch.no_grad():
            logits = program.module()(**probe)
        assert _snr_db(reference, logits.float()) > bound_db, level
        RESULTS["torch_compiled", model_type, level] = "✔"


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_every_refusal_is_one_that_family_problems_gives_before_loading(model_type):
    family = family_of(model_type)
    assert bool(family_problems(model_type, quant="int8_smoothquant")) == (not family.folds)
    for backend in ("onnxruntime", "torch_compiled"):
        assert bool(family_problems(model_type, backend=backend)) == family.decoder
    for method in PRUNING:
        assert family_problems(model_type, prune_method=method) == []


# table -> (title, what the cells say, its columns)
TABLES = {
    "pruning": (
        "Pruning (backend=torch, prune=0.5)",
        "each method on the whole model: shapes as pruned, artifact reloads to the same logits",
        list(PRUNING),
    ),
    "torch": (
        "Quantization on backend=torch (one block, pruned as heads_neurons at prune=0.5)",
        "logits within the level's signal-to-noise bound of the float model, artifact reloads "
        "to the same logits",
        list(TORCH_LEVELS),
    ),
    "onnxruntime": (
        "backend=onnxruntime (one block pruned as heads_neurons at prune=0.5, one whole)",
        "exported (dynamic batch and length), run at another shape than exported, within the "
        "level's bound; the fp32 artifact reloads to the same logits",
        ["fp32", *ORT_LEVELS],
    ),
    "torch_compiled": (
        "backend=torch_compiled (fp32: one block pruned as heads_neurons at prune=0.5, one "
        "whole; int8_static: one block, pruned)",
        "captured whole by torch.export (PT2E-quantized for int8_static, observers on float "
        "activations only), run at another shape than captured, within the level's bound",
        list(COMPILED_LEVELS),
    ),
}


def _row(table: str, model_type: str, columns: list[str], reasons: list[str]) -> str:
    family = family_of(model_type)
    cells = []
    for column in columns:
        cell = RESULTS[table, model_type, column]
        if cell.startswith("refused: "):
            reason = cell.removeprefix("refused: ")
            reasons += [reason] if reason not in reasons else []
            cell = f"refused ({reasons.index(reason) + 1})"
        cells.append(cell)
    return f"| {family.name} | `{model_type}` | " + " | ".join(cells) + " |"


def render() -> str:
    """docs/support.md from the cells the tests above recorded."""
    lines = [
        "# Support matrix: model families × methods × backends",
        "",
        "Generated by `tests/compress/test_support_matrix.py` (default test tier), which builds "
        "a tiny random-init model of every family in code (`tests/compress/tiny.py`: hidden "
        "size 64, 4 heads, 2 key/value heads in the decoders that group them; 1 block for the "
        "torch levels, 2 for the others) and runs every method on it. Rewrite this page with "
        "`COMPRESS_WRITE_SUPPORT=1 python -m pytest tests/compress/test_support_matrix.py`. "
        "Family data (block layouts, fused projections, SmoothQuant folds) lives in "
        "`compress/models/families.py`; a refused cell is refused before the weights load, "
        "from `config.json`'s `model_type` (`family_problems`), in one line.",
    ]
    reasons: list[str] = []
    for table, (title, meaning, columns) in TABLES.items():
        lines += ["", f"## {title}", "", f"✔: {meaning}.", ""]
        lines += ["| family | model_type | " + " | ".join(columns) + " |"]
        lines += ["|---|---|" + "---|" * len(columns)]
        lines += [_row(table, model_type, columns, reasons) for model_type in MODEL_TYPES]
    lines += ["", "## Refusals", ""]
    lines += [f"{n}. {reason}." for n, reason in enumerate(reasons, 1)]
    lines += ["", *WHY]
    lines += ["", "## Not in the matrix", "", *NOT_IN_THE_MATRIX]
    return "\n".join(lines) + "\n"


WHY = [
    "Post-norm encoders (BERT and its descendants, DistilBERT, DeBERTa, MPNet) normalise the "
    "residual stream itself, so every norm also feeds the next residual sum and SmoothQuant's "
    "factors cannot be folded into it; ModernBERT is pre-norm and is smoothed. A decoder's "
    "forward returns its key/value cache, which neither exporter takes as an output; decoders "
    "run on `backend=torch`, and as causal LMs (`task=lm`, `task=generation`) also on "
    "`backend=torch_compiled` (compiled decode steps; docs/llm.md).",
]
NOT_IN_THE_MATRIX = [
    "- `prune_method=heads_gradient` cuts with the same surgery as `heads` (it ranks heads "
    "by gradients on labelled batches); `random` zeroes weights like `global_l1`.",
    "- `quant=int8_qat` trains under fake quantization, then converts with `int8`'s kernels.",
    "- Compiling with AOTInductor (~20 s a package) is the slow tier's: "
    "`tests/compress/backends/test_compiled_families.py` compiles every encoder family, and "
    "`tests/compress/backends/test_compiled.py` every level on BERT.",
    "- `backend=onnxruntime` levels run from the graph the fp32 cell exported (what the "
    "backend itself does); `bf16` and dynamic `int8` on `backend=torch_compiled` are "
    "`tests/compress/backends/test_compiled.py`'s (BERT).",
]


def test_docs_support_md_is_the_matrix():
    expected = sum(len(TABLES[t][2]) for t in TABLES) * len(MODEL_TYPES)
    if len(RESULTS) < expected:
        pytest.skip(f"{len(RESULTS)} of {expected} cells ran (a subset was selected)")
    page = render()
    if os.environ.get("COMPRESS_WRITE_SUPPORT") == "1":
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(page)
    assert DOC.read_text() == page, "docs/support.md is out of date: COMPRESS_WRITE_SUPPORT=1"
