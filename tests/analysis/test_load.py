"""Runs are collected from job folders; factors come from overrides and resolved configs."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from analysis import AnalysisError
from analysis.load import MISSING_REASON, load_runs, ordered_levels, parse_overrides
from tests.analysis.records import failed, metrics, resolved_config, write_job, write_sweep


def test_overrides_are_parsed_without_prefixes_deletions_or_hydra_keys():
    lines = ["+prune=0.5", "++bench.seq_len=64", "~seed", "hydra.verbose=true",
             "hydra/launcher=basic", "model/sub=x", "tag=a=b"]  # fmt: skip
    assert parse_overrides(lines) == {
        "prune": "0.5",
        "bench.seq_len": "64",
        "model.sub": "x",
        "tag": "a=b",
    }


def test_factors_come_from_overrides_and_config_not_folder_names(tmp_path: Path):
    for folder, quant, prune in (("prune=0.9", "int8", 0.3), ("quant=fp16", "fp32", 0.7)):
        config = resolved_config({"quant": quant, "prune": prune})
        overrides = [f"++quant={quant}", f"+prune={prune}", "hydra.job.chdir=true"]
        write_job(tmp_path / folder, overrides, config, metrics())
    runs = load_runs([tmp_path])
    assert runs.keys == ["quant", "prune"]
    assert runs.table.set_index("quant")["prune"].to_dict() == {"int8": 0.3, "fp32": 0.7}


def test_a_group_counts_by_its_name_and_a_dotted_key_by_its_value(tmp_path: Path):
    write_sweep(tmp_path, [
        ({"model": "hub", "model.name_or_path": "bert-base", "bench.seq_len": 64}, metrics()),
        ({"model": "minilm", "model.name_or_path": "pkg:minilm", "bench.seq_len": 64}, metrics()),
    ])  # fmt: skip
    runs = load_runs([tmp_path])
    assert runs.table["model"].tolist() == ["hub", "minilm"]
    assert runs.table["model.name_or_path"].tolist() == ["bert-base", "pkg:minilm"]
    assert runs.factors == ["model", "model.name_or_path"]
    assert runs.fixed == {"bench.seq_len": 64}


def test_failed_and_missing_jobs_are_listed_with_their_reasons(tmp_path: Path):
    write_sweep(tmp_path, [
        ({"prune": 0.0}, metrics()),
        ({"prune": 0.5}, failed("ValueError: bad layer")),
        ({"prune": 0.7}, None),
        ({"prune": 0.9}, metrics()),
    ])  # fmt: skip
    table = load_runs([tmp_path]).table
    assert table["status"].tolist() == ["ok", "failed", "missing", "ok"]
    assert table["reason"].tolist() == ["", "ValueError: bad layer", MISSING_REASON, ""]
    assert table["prune"].tolist() == [0.0, 0.5, 0.7, 0.9]


def test_list_values_are_left_out_and_nested_metrics_flattened(tmp_path: Path):
    write_sweep(tmp_path, [({"prune": 0.0}, metrics(accuracy=0.7))])
    columns = load_runs([tmp_path]).table.columns
    assert "compressed.quality.accuracy" in columns
    assert "ratios.latency_p50" in columns
    for listed in ("compressed.speed.samples_ms", "baseline.quality.confusion_matrix", "notes"):
        assert listed not in columns
    assert "overrides" not in columns and "config" not in columns


def test_accepts_a_job_folder_and_a_parent_of_several_sweeps(tmp_path: Path):
    write_sweep(tmp_path / "day" / "a", [({"prune": p}, metrics()) for p in (0.1, 0.2)])
    write_sweep(tmp_path / "day" / "b", [({"quant": q}, metrics()) for q in ("fp32", "int8")])
    both = load_runs([tmp_path / "day"])
    assert len(both.table) == 4
    assert both.keys == ["prune", "quant"]
    single = load_runs([tmp_path / "day" / "b" / "1"])
    assert single.table["quant"].tolist() == ["int8"]
    assert single.factors == []


def test_jobs_are_in_job_number_order(tmp_path: Path):
    write_sweep(tmp_path, [({"batch_size": b}, metrics()) for b in range(12)])
    assert load_runs([tmp_path]).table["batch_size"].tolist() == list(range(12))


def test_alias_groups_are_read_from_design_json(tmp_path: Path):
    design = {"design": "fracfact", "aliases": [["prune:quant", "batch_size:prune_method"]]}
    write_sweep(tmp_path, [({"prune": 0.1}, metrics())], design=design)
    assert load_runs([tmp_path]).aliases == [["prune:quant", "batch_size:prune_method"]]


def test_corrupt_metrics_is_a_corrupt_row_naming_the_file(tmp_path: Path):
    write_sweep(tmp_path, [({"prune": 0.1}, metrics()), ({"prune": 0.2}, '{"status": "ok",')])
    table = load_runs([tmp_path]).table
    assert table["status"].tolist() == ["ok", "corrupt"]
    assert re.search(r"corrupt .*/1/metrics\.json", table["reason"].iloc[1])
    with pytest.raises(AnalysisError, match=r"corrupt .*/1/metrics\.json"):
        load_runs([tmp_path], strict=True)


def test_corrupt_hydra_config_is_a_corrupt_row_naming_the_file(tmp_path: Path):
    write_sweep(tmp_path, [({"prune": 0.1}, metrics()), ({"prune": 0.2}, metrics())])
    (tmp_path / "0" / ".hydra" / "config.yaml").write_text("prune: [0.1\n")
    table = load_runs([tmp_path]).table
    assert table["status"].tolist() == ["corrupt", "ok"]
    assert re.search(r"corrupt .*/0/\.hydra/config\.yaml", table["reason"].iloc[0])
    with pytest.raises(AnalysisError, match=r"corrupt .*/0/\.hydra/config\.yaml"):
        load_runs([tmp_path], strict=True)


def test_zero_successful_jobs_is_an_error(tmp_path: Path):
    write_sweep(tmp_path, [({"prune": 0.1}, failed("OSError: disk full")), ({"prune": 0.2}, None)])
    with pytest.raises(AnalysisError, match="no successful job among 2: 1 failed, 1 missing"):
        load_runs([tmp_path])


@pytest.mark.parametrize("make", [lambda p: p.mkdir(), lambda p: None])
def test_a_folder_without_jobs_is_an_error(tmp_path: Path, make):
    folder = tmp_path / "not-a-sweep"
    make(folder)
    with pytest.raises(AnalysisError, match="not-a-sweep"):
        load_runs([folder])


def test_numeric_levels_sort_as_numbers_and_others_alphabetically():
    assert ordered_levels(pd.Series([10, 2, 0.5, 2])) == ["0.5", "2", "10"]
    assert ordered_levels(pd.Series(["int8", "fp32", "bf16"])) == ["bf16", "fp32", "int8"]
