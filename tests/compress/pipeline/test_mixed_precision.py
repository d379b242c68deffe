"""``quant.keep_float=K``: the K Linears most sensitive to the level stay float, chosen by a
ranking on calibration data that is computed once and cached; jobs on a tiny Llama."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from compress.config.quant import Float32Config, Int8DynamicConfig
from compress.infra.context import CompressionContext
from compress.pipeline import mixed_precision
from compress.pipeline.job import run_job
from compress.pipeline.mixed_precision import keep_most_sensitive, rank_linears
from tests.compress.pipeline.test_lm_job import FAST, LM
from tests.fixtures.decoders import tiny_llama

DAMAGED = "model.layers.1.mlp.up_proj"


def _damaged_llama() -> torch.nn.Module:
    """A tiny Llama whose one Linear has one outlier weight: per-tensor int8 then rounds all its
    other weights to zero, so quantizing it alone moves the outputs most."""
    model = tiny_llama()
    with torch.no_grad():
        model.get_submodule(DAMAGED).weight[0, 0] = 200
    return model


@pytest.fixture
def context() -> CompressionContext:
    ids = torch.randint(5, 30000, (4, 2, 24), generator=torch.Generator().manual_seed(3))
    batches = [{"input_ids": i, "attention_mask": torch.ones_like(i), "labels": i} for i in ids]
    return CompressionContext(calibration=lambda n: batches[:n])


def test_ranking_puts_the_damaged_linear_first(context):
    model = _damaged_llama()
    table = rank_linears(model, Int8DynamicConfig(), context)
    assert table.iloc[0]["group"] == DAMAGED
    linears = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    assert sorted(table["group"]) == sorted(linears)
    assert (table["harm"].diff().dropna() <= 0).all()


class _Baseline:  # what the ranking key reads of a cached baseline
    folder = Path("tiny-llama-lm")


def _config(compose_config, *overrides: str):
    return OmegaConf.to_object(compose_config(["task=lm", *overrides]))


def test_keep_float_adds_to_skip_and_reuses_the_cached_ranking(
    compose_config, context, tmp_path, monkeypatch
):
    model = _damaged_llama()
    config = _config(compose_config, "quant=int8", "quant.keep_float=3",
                     "quant.skip=[model.layers.1.mlp.up_proj,'*.q_proj']")  # fmt: skip
    kept = keep_most_sensitive(config, _Baseline(), model, context, tmp_path)
    assert len(kept.names) == 3 and DAMAGED not in kept.names
    assert not any(name.endswith("q_proj") for name in kept.names)
    assert kept.quant.skip == [DAMAGED, "*.q_proj", *kept.names]
    assert kept.quant.keep_float == 3 and "kept the 3 Linears" in kept.notes[0]
    assert len(list((tmp_path / "sensitivity").glob("*/ranking.csv"))) == 1

    def no_scan(*args):
        raise AssertionError("the cached ranking was not reused")

    monkeypatch.setattr(mixed_precision, "rank_linears", no_scan)
    again = keep_most_sensitive(config, _Baseline(), model, context, tmp_path)
    assert again.names == kept.names
    more = _config(compose_config, "quant=int8", "quant.keep_float=40")
    everything = keep_most_sensitive(more, _Baseline(), model, context, tmp_path)
    assert len(everything.names) == 2 * 7 + 1 and "every one of them" in everything.notes[1]


def test_keep_float_on_fp32_and_zero_changes_nothing(compose_config, context, tmp_path):
    model = tiny_llama()
    fp32 = _config(compose_config, "quant=fp32", "quant.keep_float=4")
    kept = keep_most_sensitive(fp32, _Baseline(), model, context, tmp_path)
    assert isinstance(kept.quant, Float32Config) and kept.names == []
    assert "changes nothing" in kept.notes[0]
    zero = _config(compose_config, "quant=int8")
    assert keep_most_sensitive(zero, _Baseline(), model, context, tmp_path).names == []
    assert not (tmp_path / "sensitivity").exists()


def test_lm_job_records_the_linears_kept_float(compose_config, tiny_llama_dir):
    cfg = compose_config([f"model.name_or_path={tiny_llama_dir}", *FAST, *LM, "quant=int8",
                          "quant.keep_float=4", "bench.cold_load=false"])  # fmt: skip
    record = run_job(cfg)
    assert record["status"] == "ok", record["error"]
    quant = record["compression"]["quant"]
    assert len(quant["kept_float"]) == 4
    # every Linear, the LM head and embed_tokens (16 at keep_float=0), less those kept float
    assert quant["layers_quantized"] == 2 * 7 + 1 + 1 - 4
    stored = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert stored["compression"]["quant"]["kept_float"] == quant["kept_float"]
    assert any(quant["kept_float"][0] in note for note in record["notes"])
