"""``python -m analysis`` end to end on a small sweep built in code, and its error exits. The
sweep is old-style: its records hold point estimates only, no items or timing rounds
(test_conclusions covers sweeps with them)."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.cli import main
from tests.analysis.records import failed, metrics, write_sweep

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sweep_jobs(seed: int = 0) -> list:
    """3 prune levels x 2 quant levels x 2 replicates; accuracy falls with prune, int8 is
    faster and smaller. One job failed, one never ended."""
    rng = np.random.default_rng(seed)
    jobs = []
    for prune, quant, _ in product((0.0, 0.3, 0.6), ("fp32", "int8"), range(2)):
        record = metrics(
            accuracy=0.80 - 0.1 * prune + rng.normal(0, 0.004),
            latency=(100 if quant == "fp32" else 60) + rng.normal(0, 3),
            disk=(1000 if quant == "fp32" else 260) + rng.normal(0, 1),
        )
        jobs.append(({"prune": prune, "quant": quant, "bench.repeats": 8}, record))
    jobs[3] = (jobs[3][0], failed("RuntimeError: cold load failed"))
    jobs.append(({"prune": 0.6, "quant": "int8", "bench.repeats": 8}, None))
    return jobs


def run(*args: str) -> tuple[int, str]:
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(list(args))
    return code, stdout.getvalue()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    sweep = write_sweep(tmp_path_factory.mktemp("sweep"), sweep_jobs())
    code, stdout = run(str(sweep))
    assert code == 0
    return sweep / "analysis", stdout


def test_every_figure_is_written_non_empty_and_referenced(report):
    out, _ = report
    pngs = {p.name for p in out.glob("*.png")}
    assert pngs == {
        f"{kind}_{response}{suffix}.png"
        for kind, suffix in (("main_effects", ""), ("interaction", "_prune_x_quant"), ("qq", ""))
        for response in ("accuracy", "latency", "size")
    } | {"pareto.png", "breaking.png"}
    for name in pngs:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
    assert set(re.findall(r"\]\(([^)]+\.png)\)", (out / "report.md").read_text())) == pngs


def test_html_embeds_every_figure(report):
    out, _ = report
    html = (out / "report.html").read_text()
    sources = re.findall(r'<img src="([^"]{0,30})', html)
    assert len(sources) == len(list(out.glob("*.png")))
    assert all(s.startswith("data:image/png;base64,") for s in sources)


def test_runs_csv_holds_every_job_with_its_status(report):
    out, _ = report
    table = pd.read_csv(out / "runs.csv")
    assert len(table) == 13
    assert table["status"].value_counts().to_dict() == {"ok": 11, "failed": 1, "missing": 1}
    assert table.loc[3, "reason"] == "RuntimeError: cold load failed"
    assert {"prune", "quant", "bench.repeats", "compressed.quality.accuracy"} <= set(table)


def test_summary_names_significant_factors_and_the_best_recipe(report):
    _, stdout = report
    assert stdout.startswith("11 of 13 jobs succeeded (1 failed, 1 missing: left out")
    assert "Factors: prune, quant." in stdout
    assert re.search(r"accuracy: prune \(p < 0\.001\)[;.]", stdout)
    assert re.search(r"latency p50 \(ms\): quant \(p < 0\.001\)[;.]", stdout)
    assert "The fastest recipe whose accuracy drops by at most 0.01" in stdout
    assert "is prune=0, quant=int8" in stdout
    assert "No interval of accuracy was recorded, so the choice rests on point estimates" in stdout


def test_an_old_sweep_gets_the_recipe_table_of_point_estimates(report):
    """No quality intervals; latency intervals only where a recipe ran twice (t over its runs'
    ratios); "faster" only where that interval says so; prune=0, quant=fp32 is the baseline."""
    out, _ = report
    text = (out / "report.md").read_text()
    header = (
        "| recipe | runs | size (MB) | latency p50 (ms) | latency ratio [95% CI] | faster "
        "| accuracy | Δ accuracy | note |\n"
    )
    assert text.index(header) < text.index("## Runs")
    assert re.search(
        r"\| prune=0\.6, quant=fp32 \| 2 \| [\d.e-]+ \| [\d.]+ \| [01]\.\d\d \[0\.\d\d, 1\.\d\d\] "
        r"\| no \| 0\.7\d* \| −0\.0[56]\d \|  \|\n",
        text,
    )
    assert re.search(r"\| prune=0, quant=int8 \| 1 \| [\d.e-]+ \| [\d.]+ \| 0\.\d\d \|  \|", text)
    assert re.search(r"\| prune=0, quant=fp32 \| 2 \| .* \| the baseline: nothing changed \|", text)
    for absent in ("McNemar", "Holm", "within the limit", "Item-level model", "roc.png"):
        assert absent not in text


def test_report_lists_excluded_jobs_fixed_settings_and_tests(report):
    out, _ = report
    text = (out / "report.md").read_text()
    assert "| 3 | failed | RuntimeError: cold load failed |" in text
    assert "| 12 | missing |" in text
    assert "Fixed settings (overridden, the same in every run): `bench.repeats=8`." in text
    assert "Model `accuracy ~ C(prune) + C(quant) + C(prune):C(quant)`" in text
    assert "Tukey HSD for prune" in text
    assert "Levene (equal variance)" in text
    assert "| # | recipe | runs | accuracy | quality drop |" in text


def test_type_3_log_and_chosen_responses(tmp_path: Path):
    sweep = write_sweep(tmp_path / "sweep", sweep_jobs())
    code, _ = run(str(sweep), "--out", str(tmp_path / "out"), "--typ", "3",
                  "--response", "f1", "latency", "--log", "latency")  # fmt: skip
    assert code == 2  # f1 was not recorded
    code, stdout = run(str(sweep), "--out", str(tmp_path / "out"), "--typ", "3",
                       "--response", "latency", "--log", "latency")  # fmt: skip
    assert code == 0
    text = (tmp_path / "out" / "report.md").read_text()
    assert (
        "Model `log(latency) ~ C(prune, Sum) + C(quant, Sum) + C(prune, Sum):C(quant, Sum)`" in text
    )
    assert "type III sums of squares, sum-to-zero contrasts" in text
    assert "| Intercept |" in text
    assert "log latency p50 (ms): quant" in stdout


def error_of(capsys, *args: str) -> str:
    assert main(list(args)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    return err


def test_corrupt_metrics_is_reported_as_a_row_and_a_warning(tmp_path: Path, capsys):
    jobs = sweep_jobs()[:3] + [({"prune": 0.9}, "{not json")]
    sweep = write_sweep(tmp_path / "sweep", jobs)
    assert main([str(sweep)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: 1 corrupt job record(s) left out, first:")
    assert f"corrupt {sweep / '3' / 'metrics.json'}" in err[0]
    assert "| corrupt |" in (sweep / "analysis" / "report.md").read_text()
    assert f"corrupt {sweep / '3' / 'metrics.json'}" in error_of(capsys, str(sweep), "--strict")


def test_no_successful_job_is_a_one_line_error(tmp_path: Path, capsys):
    sweep = write_sweep(tmp_path, [({"prune": 0.1}, failed("MemoryError: boom\nline 2"))])
    assert "no successful job among 1: 1 failed (first error: MemoryError: boom)" in error_of(
        capsys, str(sweep)
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--response", "bleu"], "unknown response 'bleu'"),
     (["--response", "reason"], "response reason is not numeric"),
     (["--log", "latency"], "only analysed responses can be logged")],
)  # fmt: skip
def test_bad_responses_are_one_line_errors(tmp_path: Path, capsys, args, message):
    sweep = write_sweep(tmp_path, sweep_jobs()[:4])
    assert message in error_of(capsys, str(sweep), "--response", "accuracy", *args)


def test_a_folder_that_is_not_a_sweep_is_a_one_line_error(tmp_path: Path, capsys):
    (tmp_path / "logs").mkdir()
    assert "not a sweep or run directory" in error_of(capsys, str(tmp_path))


def test_help_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "analysis", "--help"], capture_output=True, text=True, check=True
    )
    for option in ("RUN_DIR", "--response", "--log", "--typ", "--alpha", "--max-quality-drop"):
        assert option in result.stdout


def test_fractional_design_labels_aliased_effects(tmp_path: Path):
    """2^(4-1) with prune_method = prune x quant x batch_size, two replicates."""
    levels = {"prune": (0.3, 0.7), "quant": ("fp32", "int8"), "batch_size": (8, 16)}
    methods = ("l1", "global_l1")
    rng = np.random.default_rng(3)
    jobs = []
    for signs in product((0, 1), repeat=3):
        point = {
            key: values[sign] for (key, values), sign in zip(levels.items(), signs, strict=True)
        }
        point["prune_method"] = methods[sum(signs) % 2]
        for _ in range(2):
            accuracy = 0.8 - 0.05 * signs[0] - 0.03 * signs[0] * signs[1] + rng.normal(0, 0.002)
            jobs.append((point, metrics(accuracy=accuracy)))
    aliases = [["prune:quant", "batch_size:prune_method"],
               ["prune:batch_size", "quant:prune_method"],
               ["prune:prune_method", "quant:batch_size"]]  # fmt: skip
    design = {"design": "fracfact", "factors": levels, "aliases": aliases, "replicates": 2}
    sweep = write_sweep(tmp_path / "sweep", jobs, design=design)
    code, stdout = run(str(sweep), "--out", str(tmp_path / "out"), "--response", "accuracy")
    assert code == 0
    text = (tmp_path / "out" / "report.md").read_text()
    assert "| prune:quant = batch_size:prune_method (aliased) |" in text
    assert "| batch_size:prune_method |" not in text
    assert "- prune:quant = batch_size:prune_method" in text
    significant = "prune (p < 0.001), quant (p < 0.001), prune:quant = batch_size:prune_method"
    assert f"accuracy: {significant} (p < 0.001)." in stdout
