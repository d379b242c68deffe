"""Conclusions with their uncertainty: the recipe table against the baseline, the best recipe by
non-inferiority, the power of the eval set and the item-level factor models, on sweeps whose
jobs keep their items and timing rounds."""

from __future__ import annotations

import contextlib
import io
import re
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from analysis.cli import main
from analysis.comparison import (
    DROP_HIGH,
    HOLM,
    ITEMS,
    LATENCY_MS,
    RUNS,
    SPEED,
    Choice,
    P,
    conclude,
    headline_of,
    non_inferior,
    recipe_table,
)
from analysis.item_tests import ACCURACY, estimable
from analysis.pareto import best_recipe, recipes
from analysis.render import Table, Text
from analysis.responses import LATENCY, SIZE
from analysis.results import Options, Results, analyse
from analysis.sections import item_model_blocks
from analysis.summary import power_warning, summary
from compress.stats.paired import min_detectable_difference
from tests.analysis.records import paired_job, write_sweep

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PERPLEXITY = "compressed.quality.perplexity"
REPLICATED = "prune=0.3, quant=int8"


def paired_sweep(root: Path, seed: int = 0) -> Path:
    """prune x quant, one run each and a second of prune=0.3, quant=int8. prune=0.6 answers 30%
    of the items differently (a real effect on accuracy); quant changes latency and size only."""
    rng = np.random.default_rng(seed)
    jobs = []
    for prune, quant in [*product((0.0, 0.3, 0.6), ("fp32", "int8")), (0.3, "int8")]:
        fp32 = quant == "fp32"
        record, tables = paired_job(
            rng, flip=0.3 if prune == 0.6 else 0.0, latency=100 if fp32 else 45,
            disk=1000 if fp32 else 250,
        )  # fmt: skip
        jobs.append(({"prune": prune, "quant": quant}, record, tables))
    return write_sweep(root, jobs)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return paired_sweep(tmp_path_factory.mktemp("paired"))


@pytest.fixture(scope="module")
def results(sweep: Path) -> Results:
    """Analysed with a quality limit the eval set can resolve (0.06)."""
    return analyse(Options([sweep], max_quality_drop=0.06))


@pytest.fixture(scope="module")
def report(sweep: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The whole report with the default limit, 0.01: tighter than 200 items can resolve."""
    out = tmp_path_factory.mktemp("report")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main([str(sweep), "--out", str(out)]) == 0
    return out, stdout.getvalue()


def test_recipe_table_has_intervals_and_holm_adjusted_p_values(results: Results):
    table = results.conclusions.table
    assert len(table) == 6 and table[P].notna().all()
    expected = multipletests(table[P].to_numpy(), method="holm")[1]
    np.testing.assert_allclose(table[HOLM].to_numpy(), expected, rtol=1e-12)
    flagged = table.index[table[HOLM] < 0.05].tolist()
    assert flagged == ["prune=0.6, quant=fp32", "prune=0.6, quant=int8"]
    assert (table["delta low"] <= table["delta"]).all() and (
        table["delta"] <= table["delta high"]
    ).all()
    assert (table[SPEED[1]] < table[SPEED[0]]).all() and (table[SPEED[0]] < table[SPEED[2]]).all()
    assert table[ITEMS].eq(200).all()


def test_a_replicated_recipe_shows_the_means_of_its_runs(results: Results):
    ok = results.runs.ok
    runs = ok[(ok["prune"] == 0.3) & (ok["quant"] == "int8")]
    row = results.conclusions.table.loc[REPLICATED]
    assert row[RUNS] == 2
    assert row["delta high"] == pytest.approx(runs["ratios.intervals.accuracy_delta.high"].mean())
    assert row[LATENCY_MS] == pytest.approx(runs[LATENCY].mean())
    assert row[P] == runs["ratios.tests.mcnemar.p_value"].max()


def test_report_shows_the_recipe_table_first_with_its_family(report):
    out, _ = report
    text = (out / "report.md").read_text()
    assert text.index("## Recipes against the baseline") < text.index("## Runs")
    header = ("| recipe | runs | size (MB) | latency p50 (ms) | latency ratio [95% CI] | accuracy "
              "| Δ accuracy [95% CI] | McNemar p | Holm p | within the limit |")  # fmt: skip
    assert f"{header}\n| --- " in text
    assert re.search(r"\n\| baseline \| 7 \| 0\.001 \| [\d.]+ \| 1\.00 \| 0\.\d+ \|", text)
    interval = r"−0\.\d{3} \[−0\.\d{3}, −0\.\d{3}\]"
    assert re.search(rf"\| prune=0\.6, quant=fp32 \| 1 \| .* \| {interval} \| .* \| no \|", text)
    assert "Holm p adjusts it for the family of all 6 recipes compared with the baseline" in text
    assert "1 of 6 recipes ran more than once: their values and bounds are means" in text


def test_summary_gives_the_chosen_recipe_with_its_intervals(results: Results):
    chosen = results.conclusions.choice.recipe
    assert chosen.endswith("quant=int8")
    text = summary(results, Options([], max_quality_drop=0.06))
    signed = r"[+−]0\.\d{3}"
    assert re.search(
        r"The fastest recipe whose accuracy drops by at most 0\.06 vs the baseline even at the "
        rf"upper bound of its 95% CI \(non-inferiority\) is {re.escape(chosen)}: accuracy 0\.\d+ "
        rf"\(Δ {signed}, 95% CI \[{signed}, {signed}\]\), 0\.25× the size, "
        r"0\.\d\d× \[0\.\d\d, 0\.\d\d\] the latency",
        text,
    )
    assert "Warning" not in text and "unavailable" not in text


def test_none_provably_within_names_the_closest_with_its_bound(results: Results, report):
    _, stdout = report
    table = results.conclusions.table
    closest = table[DROP_HIGH].idxmin()
    assert table[DROP_HIGH].min() > 0.01
    assert (
        "No recipe provably meets the constraint (accuracy drops by at most 0.01 vs the "
        "baseline, at the upper bound of its 95% CI); the closest is "
        f"{closest}, whose drop is at most {table.at[closest, DROP_HIGH]:.3g} at that bound."
    ) in stdout


def test_power_warning_when_the_limit_is_below_the_detectable_drop(results: Results, report):
    power, table = results.conclusions.power, results.conclusions.table
    row = table.loc[power.recipe]
    assert power.recipe == results.conclusions.choice.recipe and power.role == "chosen"
    assert power.drop == pytest.approx(
        min_detectable_difference(200, row["discordant"] / 200, 0.05, 0.8)
    )
    assert 0.01 < power.drop < 0.06
    assert power_warning(results.conclusions, 0.06) == ""
    _, stdout = report
    assert re.search(
        r"Warning: --max-quality-drop 0\.01 is below what the 200 evaluation items can resolve: "
        r"at 80% power McNemar's test detects accuracy drops of 0\.0\d+ or more, given the "
        r"[\d.]+% discordance of the closest recipe",
        stdout,
    )


def accuracy_runs(rows: dict[str, tuple[float, float, float, float]]) -> pd.DataFrame:
    """quant level → (latency, delta, low, high) of one job; baseline accuracy 0.8."""
    key = "ratios.intervals.accuracy_delta"
    columns = [LATENCY, f"{key}.estimate", f"{key}.low", f"{key}.high"]
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    frame = frame.rename_axis("quant").reset_index()
    baseline = {"baseline.quality.accuracy": 0.8, SIZE: 100.0}
    return frame.assign(**{ACCURACY: 0.8 + frame[f"{key}.estimate"]}, **baseline)


def test_non_inferiority_prefers_a_tight_interval_to_a_faster_point_estimate():
    ok = accuracy_runs({
        "fp32": (100, 0.0, -0.002, 0.002),
        "fp16": (80, -0.004, -0.008, 0.0),
        "int8": (50, -0.002, -0.03, 0.026),  # fastest, best point estimate, too wide
    })  # fmt: skip
    assert best_recipe(recipes(ok, ["quant"], ACCURACY), 0.01).name == "quant=int8"
    table = recipe_table(ok, ["quant"], headline_of(ACCURACY, ok.columns))
    assert table[DROP_HIGH].tolist() == pytest.approx([0.002, 0.008, 0.03])
    assert non_inferior(table, 0.01) == Choice("quant=fp16")
    assert non_inferior(table, 0.03) == Choice("quant=int8")  # on the limit counts as within
    assert non_inferior(table.drop(index="quant=fp32"), 0.005) == Choice(None, "quant=fp16")


def test_perplexity_is_non_inferior_by_the_upper_bound_of_its_ratio():
    ok = pd.DataFrame({
        "quant": ["fp16", "int8"], LATENCY: [80.0, 50.0], SIZE: [500.0, 250.0],
        PERPLEXITY: [20.1, 20.2], "baseline.quality.perplexity": [20.0, 20.0],
        "ratios.intervals.perplexity.estimate": [1.005, 1.01],
        "ratios.intervals.perplexity.low": [1.001, 0.99],
        "ratios.intervals.perplexity.high": [1.009, 1.04],
    })  # fmt: skip
    conclusions = conclude(ok, ["quant"], PERPLEXITY, 0.01, 0.05)
    assert conclusions.headline.name == "perplexity ratio"
    assert conclusions.table[DROP_HIGH].tolist() == pytest.approx([0.009, 0.04])
    assert conclusions.choice == Choice("quant=fp16")
    assert conclusions.power is None  # McNemar's test is for classification only


def _table(blocks: list) -> pd.Series:
    frame = next(block.frame for block in blocks if isinstance(block, Table))
    return frame[frame.columns[-1]]  # p


def test_item_model_flags_the_real_effect_and_not_the_null_one(results: Results):
    p = _table(item_model_blocks(ACCURACY, results))
    assert p.index.tolist() == ["prune", "quant", "prune:quant"]
    assert p["prune"] < 0.001
    assert p["quant"] > 0.05 and p["prune:quant"] > 0.05
    p = _table(item_model_blocks(LATENCY, results)).drop("Residual")
    assert p["quant"] < 0.001 and p["prune"] > 0.05


def test_an_aliased_design_is_a_note_not_a_crash(tmp_path: Path):
    """A half fraction of 2^3: batch_size = prune x quant, so the interactions are aliased."""
    rng = np.random.default_rng(1)
    jobs = []
    for prune, quant in product((0.0, 0.5), ("fp32", "int8")):
        levels = {
            "prune": prune,
            "quant": quant,
            "batch_size": 8 if (prune > 0) == (quant == "int8") else 16,
        }
        jobs.append((levels, *paired_job(rng)))
    results = analyse(Options([write_sweep(tmp_path, jobs)], responses=["accuracy"]))
    assert not estimable(results.runs.ok[results.runs.factors])
    blocks = item_model_blocks(ACCURACY, results)
    assert not any(isinstance(block, Table) for block in blocks)
    assert blocks[-1] == Text(
        "Not fitted: the recipes present cannot separate every main effect and two-way "
        "interaction (a fractional design or missing recipes alias some)."
    )


def test_item_figures_are_written_and_referenced(report):
    out, _ = report
    text = (out / "report.md").read_text()
    for name in ("roc.png", "confusion.png", "breaking.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
        assert f"]({name})" in text
    assert "Item-level model (1400 rows: every item of 7 jobs)" in text
    assert "Round-level model (105 rows: every timing round of 7 jobs)" in text
