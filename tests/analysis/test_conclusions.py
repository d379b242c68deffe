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
from scipy import stats

from analysis.cli import main
from analysis.comparison import (
    DISCORDANT,
    DROP_HIGH,
    FASTER,
    FLIPS,
    HOLM,
    ITEMS,
    LATENCY_MS,
    RUNS,
    SPEED,
    UNCHANGED,
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
from analysis.sections import item_model_blocks, recipe_frame
from analysis.summary import faster_verdicts, power_warning, summary
from compress.stats.paired import min_detectable_difference
from compress.stats.proportions import tango_interval
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
    p = table[P].to_numpy()  # Holm by hand: step down, (K - rank) p, running maximum, cap 1
    order = np.argsort(p)
    stepped = np.minimum(1, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]))
    expected = np.empty_like(p)
    expected[order] = stepped
    np.testing.assert_allclose(table[HOLM].to_numpy(), expected, rtol=1e-12)
    flagged = table.index[table[HOLM] < 0.05].tolist()
    assert sorted(flagged) == ["prune=0.6, quant=fp32", "prune=0.6, quant=int8"]
    assert table[SPEED[0]].is_monotonic_increasing  # ranked by the paired latency ratio
    assert table[FASTER].tolist() == [True] * 3 + [False] * 3
    assert table.loc["prune=0, quant=fp32", UNCHANGED] and table[UNCHANGED].sum() == 1
    assert (table[FLIPS] == table[DISCORDANT] / table[ITEMS]).all()
    assert (table["delta low"] <= table["delta"]).all() and (
        table["delta"] <= table["delta high"]
    ).all()
    assert (table[SPEED[1]] < table[SPEED[0]]).all() and (table[SPEED[0]] < table[SPEED[2]]).all()
    assert table[ITEMS].eq(200).all()


def _discordant(items: pd.DataFrame) -> tuple[int, int]:
    base = items["baseline_prediction"] == items["label"]
    comp = items["compressed_prediction"] == items["label"]
    return int((base & ~comp).sum()), int((~base & comp).sum())


def test_a_replicated_recipe_pools_its_runs_instead_of_averaging_bounds(results: Results):
    """Accuracy: Tango on the two runs' mean discordant counts over the same 200 items.
    Latency: the geometric mean of the runs' ratios, t over their logs. Neither is the mean of
    the runs' recorded bounds."""
    ok = results.runs.ok
    runs = ok[(ok["prune"] == 0.3) & (ok["quant"] == "int8")]
    row = results.conclusions.table.loc[REPLICATED]
    assert row[RUNS] == 2
    counts = np.array([_discordant(pd.read_parquet(Path(job) / "items.parquet"))
                       for job in runs["job"]])  # fmt: skip
    b, c = counts.mean(axis=0)
    pooled = tango_interval(b, c, 200)
    assert (row["delta"], row["delta low"], row["delta high"]) == pytest.approx(
        (pooled.estimate, pooled.low, pooled.high)
    )
    averaged = runs["ratios.intervals.accuracy_delta.high"].mean()
    assert row["delta high"] != pytest.approx(averaged, abs=1e-4)
    logs = np.log(runs["ratios.latency_p50"].to_numpy())
    t = stats.ttest_1samp(logs, 0).confidence_interval(0.95)
    assert row[SPEED[0]] == pytest.approx(np.exp(logs.mean()))
    assert (row[SPEED[1]], row[SPEED[2]]) == pytest.approx(np.exp([t.low, t.high]))
    assert row[LATENCY_MS] == pytest.approx(runs[LATENCY].mean())
    assert row[P] == runs["ratios.tests.mcnemar.p_value"].max()


def test_report_shows_the_recipe_table_first_with_its_family(report):
    out, _ = report
    text = (out / "report.md").read_text()
    assert text.index("## Recipes against the baseline") < text.index("## Runs")
    header = ("| recipe | runs | size (MB) | latency p50 (ms) | latency ratio [95% CI] | faster "
              "| accuracy | Δ accuracy [95% CI] | flips | McNemar p | Holm p | within the limit "
              "| note |")  # fmt: skip
    assert f"{header}\n| --- " in text
    assert re.search(r"\n\| baseline \| 7 \| 0\.001 \| [\d.]+ \| 1\.00 \|  \| 0\.\d+ \|", text)
    interval = r"−0\.\d{3} \[−0\.\d{3}, −0\.\d{3}\]"
    row = rf"\| prune=0\.6, quant=fp32 \| 1 \| .* \| no \| .* \| {interval} \| .* \| no \|  \|"
    assert re.search(row, text)
    assert re.search(r"\| prune=0, quant=fp32 \| .* \| the baseline: nothing changed \|", text)
    assert "Holm p adjusts it for the family of all 6 recipes compared with the baseline" in text
    assert "1 of 6 recipes ran more than once" in text
    assert "The runs of prune=0.3, quant=int8 answer some items differently" in text
    assert "interval bounds are never averaged" in text


def test_summary_gives_the_chosen_recipe_with_its_intervals_and_procedure(results: Results):
    """Faster recipes, slowest first: prune=0 and prune=0.3 (int8) pass at 0.06, prune=0.6
    fails and ends the sequence: the fastest that passed is prune=0.3, quant=int8."""
    choice = results.conclusions.choice
    assert choice.recipe == REPLICATED and choice.passed == 2
    assert choice.sequence[-1] == choice.stopped_at == "prune=0.6, quant=int8"
    text = summary(results, Options([], max_quality_drop=0.06))
    signed = r"[+−]0\.\d{3}"
    assert re.search(
        r"The fastest recipe whose accuracy drops by at most 0\.06 vs the baseline even at the "
        rf"upper bound of its 95% CI \(non-inferiority\) is {re.escape(REPLICATED)}: accuracy "
        rf"0\.\d+ \(Δ {signed}, 95% CI \[{signed}, {signed}\]\), 0\.25× the size, "
        r"0\.\d\d× \[0\.\d\d, 0\.\d\d\] the latency \(pooled over its 2 runs\)\. "
        r"Chosen by a fixed-sequence procedure: the 3 recipe\(s\) faster than the baseline "
        r".* stopping at prune=0\.6, quant=int8 \(2 passed\); the family-wise error rate of "
        r"these non-inferiority claims, this one included, is at most 2\.5%\.",
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


def accuracy_runs(rows: dict[str, tuple[float, float, float, float, float]]) -> pd.DataFrame:
    """quant level → (latency ratio, its interval's half width, delta, low, high) of one job;
    baseline accuracy 0.8, latency 100 ms."""
    key = "ratios.intervals.accuracy_delta"
    columns = ["ratio", "half", f"{key}.estimate", f"{key}.low", f"{key}.high"]
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    frame = frame.rename_axis("quant").reset_index()
    speed = {
        LATENCY: 100 * frame["ratio"],
        "ratios.latency_p50": frame["ratio"],
        "ratios.intervals.latency_p50.estimate": frame["ratio"],
        "ratios.intervals.latency_p50.low": frame["ratio"] - frame["half"],
        "ratios.intervals.latency_p50.high": frame["ratio"] + frame["half"],
    }
    baseline = {"baseline.quality.accuracy": 0.8, SIZE: 100.0}
    frame = frame.assign(**{ACCURACY: 0.8 + frame[f"{key}.estimate"]}, **speed, **baseline)
    return frame.drop(columns=["ratio", "half"])


def _choose(ok: pd.DataFrame, max_drop: float, factors: tuple[str, ...] = ("quant",)) -> Choice:
    return non_inferior(recipe_table(ok, list(factors), headline_of(ACCURACY, ok.columns)),
                        max_drop)  # fmt: skip


def test_non_inferiority_prefers_a_tight_interval_to_a_faster_point_estimate():
    ok = accuracy_runs({
        "bf16": (1.0, 0.02, 0.0, -0.002, 0.002),  # not faster: never chosen
        "fp16": (0.8, 0.02, -0.004, -0.008, 0.0),
        "int8": (0.5, 0.02, -0.002, -0.03, 0.026),  # fastest, best point estimate, too wide
    })  # fmt: skip
    assert best_recipe(recipes(ok, ["quant"], ACCURACY), 0.01).name == "quant=int8"
    table = recipe_table(ok, ["quant"], headline_of(ACCURACY, ok.columns))
    assert table[DROP_HIGH].tolist() == pytest.approx([0.03, 0.008, 0.002])  # fastest first
    sequence = ("quant=fp16", "quant=int8")  # the faster recipes, slowest first
    assert non_inferior(table, 0.01) == Choice("quant=fp16", None, sequence, 1)
    assert non_inferior(table, 0.03) == Choice("quant=int8", None, sequence, 2)  # on the limit
    assert non_inferior(table, 0.005) == Choice(None, "quant=bf16", sequence, 0)


def test_the_sequence_stops_at_the_first_failure_even_if_a_faster_recipe_would_pass():
    """Fixed sequence: fp16 (slower) fails, so int8 is never tested; choosing int8 because it
    passes on its own would be a claim made without error control."""
    ok = accuracy_runs({
        "fp16": (0.8, 0.02, -0.01, -0.02, 0.0),
        "int8": (0.5, 0.02, 0.0, -0.004, 0.004),
    })  # fmt: skip
    choice = _choose(ok, 0.01)
    assert choice.recipe is None and choice.stopped_at == "quant=fp16"
    assert choice.closest == "quant=int8"


def test_with_none_chosen_each_faster_recipe_is_a_real_loss_unresolved_or_unreached():
    """The demo's case: no recipe passes, and the report still says what became of each faster
    one, by its own interval against the allowed drop (0.01)."""
    ok = accuracy_runs({
        "fp16": (0.9, 0.02, -0.03, -0.04, -0.02),  # slowest, tested first: a real loss
        "int8": (0.6, 0.02, -0.008, -0.016, 0.0),  # straddles the limit
        "int4": (0.4, 0.02, 0.0, -0.005, 0.005),  # within it, but the sequence stopped first
    })  # fmt: skip
    conclusions = conclude(ok, ["quant"], ACCURACY, 0.01, 0.05)
    assert conclusions.choice.recipe is None and conclusions.choice.stopped_at == "quant=fp16"
    assert faster_verdicts(conclusions, 0.01) == (
        "Faster but losing more than allowed at either end of the interval: quant=fp16 (at "
        "least 0.02). Faster, and neither within nor beyond the allowed drop on these items: "
        "quant=int8. Within it by their own intervals but after the sequence stopped, so not "
        "claimed: quant=int4. "
    )


def test_a_long_verdict_names_three_recipes_and_counts_the_rest():
    ok = accuracy_runs({f"int{bits}": (0.9 - bits / 100, 0.02, -0.03, -0.04, -0.02)
                        for bits in (1, 2, 3, 4, 5)})  # fmt: skip
    verdict = faster_verdicts(conclude(ok, ["quant"], ACCURACY, 0.01, 0.05), 0.01)
    assert verdict.endswith(
        ": quant=int1 (at least 0.02), quant=int2 (at least 0.02), quant=int3 (at least 0.02) "
        "and 2 more (the recipe table). "
    )


def test_a_recipe_is_faster_only_when_its_latency_interval_excludes_one():
    ok = accuracy_runs({"int8": (0.9, 0.15, 0.0, -0.004, 0.004)})  # [0.75, 1.05]
    table = recipe_table(ok, ["quant"], headline_of(ACCURACY, ok.columns))
    assert not table.loc["quant=int8", FASTER]
    assert non_inferior(table, 0.01) == Choice(None, "quant=int8", (), 0)


def test_an_unchanged_recipe_is_labelled_the_baseline_and_never_recommended():
    """The user's sweep of the issue: prune=0, quant=fp32 answers like the baseline (Δ 0 on a
    tight interval) at 1.02x its latency; it was recommended. Now it is the baseline, and the
    only faster recipe is too lossy: nothing is recommended."""
    ok = accuracy_runs({
        "fp32": (1.02, 0.04, 0.0, -0.017, 0.017),
        "int8": (0.55, 0.03, -0.03, -0.06, -0.005),
    }).assign(prune=0.0)  # fmt: skip
    table = recipe_table(ok, ["quant"], headline_of(ACCURACY, ok.columns))
    assert table[UNCHANGED].to_dict() == {"quant=int8": False, "quant=fp32": True}
    assert _choose(ok, 0.05) == Choice(None, "quant=int8", ("quant=int8",), 0)
    assert _choose(ok.assign(prune=0.3), 0.05).closest == "quant=fp32"  # pruned: a recipe


def test_perplexity_is_non_inferior_by_the_upper_bound_of_its_ratio():
    ok = pd.DataFrame({
        "quant": ["fp16", "int8"], LATENCY: [80.0, 50.0], SIZE: [500.0, 250.0],
        "ratios.latency_p50": [0.8, 0.5],
        "ratios.intervals.latency_p50.low": [0.78, 0.48],
        "ratios.intervals.latency_p50.high": [0.82, 0.52],
        PERPLEXITY: [20.1, 20.2], "baseline.quality.perplexity": [20.0, 20.0],
        "ratios.intervals.perplexity.estimate": [1.005, 1.01],
        "ratios.intervals.perplexity.low": [1.001, 0.99],
        "ratios.intervals.perplexity.high": [1.009, 1.04],
    })  # fmt: skip
    conclusions = conclude(ok, ["quant"], PERPLEXITY, 0.01, 0.05)
    assert conclusions.headline.name == "perplexity ratio"
    assert conclusions.table[DROP_HIGH].tolist() == pytest.approx([0.04, 0.009])
    assert conclusions.choice.recipe == "quant=fp16"
    assert conclusions.power is None  # McNemar's test is for classification only


def test_lm_recipes_show_kl_and_top1_agreement_beside_perplexity():
    ok = pd.DataFrame({
        "quant": ["int8", "int4", "int4"], LATENCY: [50.0, 40.0, 41.0], SIZE: [250.0, 150.0, 150],
        "ratios.latency_p50": [0.5, 0.4, 0.41],
        PERPLEXITY: [20.1, 20.6, 20.6], "baseline.quality.perplexity": [20.0, 20.0, 20.0],
        "ratios.intervals.perplexity.estimate": [1.005, 1.03, 1.03],
        "ratios.intervals.perplexity.low": [1.001, 1.02, 1.02],
        "ratios.intervals.perplexity.high": [1.009, 1.04, 1.04],
        "compressed.quality.kl_divergence": [0.01, 0.05, 0.07],
        "ratios.intervals.kl_divergence.estimate": [0.01, 0.05, 0.07],
        "ratios.intervals.kl_divergence.low": [0.008, 0.04, 0.06],
        "ratios.intervals.kl_divergence.high": [0.012, 0.06, 0.08],
        "compressed.quality.top1_agreement": [0.97, 0.9, 0.9],
    })  # fmt: skip
    conclusions = conclude(ok, ["quant"], PERPLEXITY, 0.01, 0.05)
    table = conclusions.table
    assert table.loc["quant=int8", ["KL", "KL low", "KL high"]].tolist() == [0.01, 0.008, 0.012]
    # two runs that differ: their mean, no interval
    assert table.at["quant=int4", "KL"] == pytest.approx(0.06)
    assert table["KL low"].isna().tolist() == [True, False]  # int4 first (faster)
    assert table.at["quant=int4", "top-1 agreement"] == pytest.approx(0.9)
    frame = recipe_frame(conclusions, 0.01)
    assert frame.at["quant=int8", "KL [95% CI]"] == "0.01 [0.008, 0.012]"
    assert frame.at["baseline", "KL [95% CI]"] == ""
    assert frame.at["quant=int8", "top-1 agreement"] == "0.97"
    assert frame.columns.get_loc("KL [95% CI]") > frame.columns.get_loc("perplexity")


def _table(blocks: list) -> pd.Series:
    frame = next(block.frame for block in blocks if isinstance(block, Table))
    return frame[frame.columns[-1]]  # p


def test_item_model_flags_the_real_effect_and_not_the_null_one(results: Results):
    p = _table(item_model_blocks(ACCURACY, results))
    assert p.index.tolist() == ["prune", "quant", "prune:quant"]
    assert p["prune"] < 0.001
    assert p["quant"] > 0.05 and p["prune:quant"] > 0.05
    p = _table(item_model_blocks(LATENCY, results)).drop("Residual")
    assert p["quant"] < 0.05 and p["prune"] > 0.05  # 1 residual df: the replicated recipe


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
    assert "Job-level paired model (7 jobs, 105 timing rounds)" in text


def _generation_record(bleu: float, sentence: tuple[float, float, float], ratio: float) -> dict:
    """A generation job's record: corpus BLEU in the quality, sentence BLEU's paired interval."""
    interval = dict(zip(("estimate", "low", "high"), sentence, strict=True))
    return {
        "status": "ok",
        "baseline": {"quality": {"bleu": 0.30}, "speed": {"p50_ms": 10.0},
                     "size": {"disk_bytes": 1e6}},
        "compressed": {"quality": {"bleu": bleu}, "speed": {"p50_ms": 10.0 * ratio},
                       "size": {"disk_bytes": 5e5}},
        "ratios": {"bleu_delta": bleu - 0.30, "latency_p50": ratio, "disk_bytes": 0.5,
                   "intervals": {"sentence_bleu_delta": interval | {"n": 200},
                                 "latency_p50": {"estimate": ratio, "low": ratio - 0.02,
                                                 "high": ratio + 0.02, "n": 20}}},
    }  # fmt: skip


def test_generation_names_the_metric_it_tests(tmp_path: Path, capsys):
    """The non-inferiority test is on sentence BLEU (mean over prompts); corpus BLEU is shown
    as what it is."""
    jobs = [({"quant": "int8"}, _generation_record(0.29, (-0.004, -0.008, 0.0), 0.6)),
            ({"quant": "int4"}, _generation_record(0.25, (-0.05, -0.07, -0.03), 0.4))]  # fmt: skip
    assert main([str(write_sweep(tmp_path, jobs))]) == 0
    stdout = capsys.readouterr().out
    assert ("The fastest recipe whose sentence-BLEU (mean over prompts) drops by at most 0.01 "
            "vs the baseline even at the upper bound of its 95% CI") in stdout  # fmt: skip
    assert "quant=int8: corpus BLEU 0.29 (Δ sentence-BLEU (mean over prompts) −0.004" in stdout
    text = (tmp_path / "analysis" / "report.md").read_text()
    assert "| corpus BLEU | Δ sentence-BLEU (mean over prompts) [95% CI] |" in text


def test_no_item_changing_is_no_effect_not_an_arbitrary_test(tmp_path: Path):
    """Every recipe answers every item as the baseline does: the GEE's robust covariance is
    singular there, and its Wald tests came out "p < 0.001" for an interaction."""
    rng = np.random.default_rng(2)
    jobs = [({"prune": prune, "quant": quant}, *paired_job(rng, churn=0.0))
            for prune, quant in product((0.0, 0.5), ("fp32", "int8"))]  # fmt: skip
    results = analyse(Options([write_sweep(tmp_path, jobs)], responses=["accuracy"]))
    blocks = item_model_blocks(ACCURACY, results)
    assert not any(isinstance(block, Table) for block in blocks)
    assert blocks[-1] == Text(
        "Not fitted: every configuration gets every item equally right or wrong."
    )
    assert results.item_tests[ACCURACY].p_values() == {}
