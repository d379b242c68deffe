"""Real ``-m`` sweeps on tiny models: the search sweeper (refused and failed recipes, resuming),
its MLflow runs, a ``quant.keep_float`` sweep, and the search-vs-grid benchmark in small."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from compress.pipeline.tracking import record_metrics
from tests.compress.pipeline.test_lm_job import FAST, LM
from tests.hydra_plugins.conftest import REPO, records, sweep_command

pytestmark = pytest.mark.slow

SEARCH = ["hydra/sweeper=search", "hydra.sweeper.seed=1"]


def _search(sweep_dir: Path) -> dict:
    return json.loads((sweep_dir / "search.json").read_text())


def test_search_runs_distinct_recipes_refuses_others_and_resumes(run_sweep, tmp_path):
    sweep_dir = tmp_path / "search"
    space = ["prune=0.2,0.5", "quant=fp16,int8", "quant.keep_float=0,2"]
    run_sweep(sweep_dir, *SEARCH, "hydra.sweeper.n_trials=3", *space)
    search, done = _search(sweep_dir), records(sweep_dir)
    assert sorted(done) == [0, 1, 2] and search["jobs"] == 3 and search["recipes"] == 8
    ran = [t for t in search["trials"] if t["state"] == "complete"]
    assert sorted(t["job"] for t in ran) == [0, 1, 2]
    for trial in ran:
        record = done[trial["job"]]
        assert record["status"] == "ok"
        ratios = record["ratios"]
        assert trial["values"] == [ratios["accuracy_delta"], ratios["latency_p50"],
                                   ratios["disk_bytes"]]  # fmt: skip
        assert {k: str(record["factors"].get(k, "")) for k in ("prune", "quant")} == {
            "prune": trial["params"]["prune"], "quant": trial["params"]["quant"]
        }  # fmt: skip
    assert len({json.dumps(t["params"], sort_keys=True) for t in ran}) == 3
    for trial in search["trials"]:
        if trial["state"] == "refused":  # fp16 cannot keep Linears float
            assert trial["params"]["quant"] == "fp16" and trial["params"]["quant.keep_float"] == "2"
            assert trial["job"] is None and trial["values"] is None
    assert set(search["front"]) <= {t["number"] for t in ran}

    stamps = {job: record["started_at"] for job, record in done.items()}
    run_sweep(sweep_dir, *SEARCH, "hydra.sweeper.n_trials=3", *space)
    assert _search(sweep_dir)["trials"] == search["trials"]  # the same proposals
    assert {job: r["started_at"] for job, r in records(sweep_dir).items()} == stamps


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="needs compress[track]")
def test_failed_jobs_are_failed_trials_and_failed_mlflow_runs(run_sweep, tmp_path):
    from mlflow.tracking import MlflowClient

    sweep_dir = tmp_path / "failing"
    # 50 MB cannot hold a job: it passes every check before it starts and is stopped running
    result = run_sweep(sweep_dir, *SEARCH, "hydra/callbacks=mlflow", "hydra.sweeper.n_trials=4",
                       "job.memory_limit_gb=0,0.05", "quant=fp32,int8", check=False)  # fmt: skip
    assert result.returncode == 1
    assert "told to the study as failed" in result.stderr
    search, done = _search(sweep_dir), records(sweep_dir)
    failed = [t for t in search["trials"] if t["state"] == "failed"]
    assert len(done) == 4 and len(failed) == 2
    for trial in failed:
        assert trial["params"]["job.memory_limit_gb"] == "0.05" and trial["values"] is None
        assert "out of memory" in trial["reason"] and trial["number"] not in search["front"]

    client = MlflowClient(f"sqlite:///{sweep_dir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("compress")
    runs = client.search_runs([experiment.experiment_id])
    children = {r.data.tags["job_dir"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert len(runs) == 5 and len(children) == 4
    for job, record in done.items():
        run = children[str(sweep_dir / str(job))]
        assert run.info.status == ("FINISHED" if record["status"] == "ok" else "FAILED")
        assert run.data.metrics == record_metrics(record)
        assert run.data.tags["status"] == record["status"]
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == "FAILED"  # the sweep ended with failed jobs
    assert "search.json" in {a.path for a in client.list_artifacts(parent.info.run_id)}


def test_keep_float_sweeps_on_a_tiny_llama_and_records_the_kept_linears(
    tiny_llama_dir, tmp_path, sweep_server
):
    sweep_dir = tmp_path / "keep-float"
    command = sweep_command(sweep_dir, f"model.name_or_path={tiny_llama_dir}", *FAST, *LM,
                            f"paths.cache_dir={tmp_path / 'cache'}", "bench.cold_load=false",
                            "quant=int8", "quant.keep_float=0,4,8")  # fmt: skip
    sweep_server.run(command[3:], check=True)
    done = records(sweep_dir)
    kept = {r["config"]["quant"]["keep_float"]: r["compression"]["quant"]["kept_float"]
            for r in done.values()}  # fmt: skip
    assert {k: len(v) for k, v in kept.items()} == {0: 0, 4: 4, 8: 8}
    assert kept[8][:4] == kept[4]  # one ranking, cached, read by every job
    assert len(list((tmp_path / "cache" / "sensitivity").glob("*/ranking.csv"))) == 1


def test_search_vs_grid_benchmark_in_small(tiny_job, tmp_path):
    spec = importlib.util.spec_from_file_location(
        "search_vs_grid", REPO / "benchmarks" / "search_vs_grid.py"
    )
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    out = tmp_path / "bench"
    result = benchmark.main(["--out", str(out), "--replays", "3", "--", *tiny_job,
                             "prune=0.2,0.5", "quant=fp32,int8"])  # fmt: skip
    assert result["recipes"] == 4 and result["search_jobs"] == 2
    assert result["grid_ok_jobs"] == 4 and result["search_ok_jobs"] == 2
    assert 0 < result["recipes_found"] <= 1 + 1e-9
    for sampler in ("tpe", "nsga2", "random"):
        replayed = result["replayed"][sampler]
        assert 0 < replayed["min"] <= replayed["median"] <= 1 + 1e-9
    assert (out / "search_vs_grid.md").read_text().startswith("# Search with half the jobs")
