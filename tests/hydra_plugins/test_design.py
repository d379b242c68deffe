"""Designs, alias structures and level mapping, checked against textbook tables
(Montgomery, Design and Analysis of Experiments, ch. 8) and the DoE definitions."""

from __future__ import annotations

import json

import numpy as np
import pydoe
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from hydra_plugins.doe_sweeper._design import (
    DesignError,
    DesignKind,
    DesignSettings,
    Face,
    alias_groups,
    build_design,
    design_record,
    factor_from_override,
    run_order,
    two_level_structure,
)
from hydra_plugins.doe_sweeper.doe_sweeper import describe

PARSER = OverridesParser.create()


def factors(*overrides: str):
    return [factor_from_override(o) for o in PARSER.parse_overrides(list(overrides))]


def two_levels(*names: str):
    return factors(*(f"{name}=lo,hi" for name in names))


def design(kind: str, declared, **settings):
    return build_design(declared, DesignSettings(design=DesignKind[kind], **settings))


def as_sets(groups: list[list[str]]) -> set[frozenset[str]]:
    return {frozenset(group) for group in groups}


# ---------------------------------------------------------------- alias structures


@pytest.mark.parametrize("generators", ["a b c abc", "a b c -abc"])
def test_half_fraction_of_four_factors_aliases_interaction_pairs(generators):
    # 2^(4-1)_IV, D = ABC (or its mirror fraction D = -ABC), I = ABCD
    result = design("fracfact", two_levels(*"ABCD"), generators=generators)
    assert result.generators == generators
    assert result.matrix.shape == (8, 4)
    assert result.resolution == 4
    assert as_sets(result.aliases) == as_sets([["A:B", "C:D"], ["A:C", "B:D"], ["A:D", "B:C"]])


def test_quarter_fraction_of_five_factors_matches_the_resolution_iii_table():
    # 2^(5-2)_III, D = AB, E = AC, I = ABD = ACE = BCDE
    result = design("fracfact", two_levels(*"ABCDE"), generators="a b c ab ac")
    assert result.resolution == 3
    assert as_sets(result.aliases) == as_sets(
        [
            ["A", "B:D", "C:E"],
            ["B", "A:D"],
            ["C", "A:E"],
            ["D", "A:B"],
            ["E", "A:C"],
            ["B:C", "D:E"],
            ["B:E", "C:D"],
        ]
    )


def test_quarter_fraction_of_six_factors_matches_the_resolution_iv_table():
    # 2^(6-2)_IV, E = ABC, F = BCD, I = ABCE = BCDF = ADEF
    result = design("fracfact", two_levels(*"ABCDEF"), generators="a b c d abc bcd")
    assert result.matrix.shape == (16, 6)
    assert result.resolution == 4
    assert as_sets(result.aliases) == as_sets(
        [
            ["A:B", "C:E"],
            ["A:C", "B:E"],
            ["A:D", "E:F"],
            ["A:E", "B:C", "D:F"],
            ["A:F", "D:E"],
            ["B:D", "C:F"],
            ["B:F", "C:D"],
        ]
    )


def test_defining_relation_is_read_back_from_the_matrix():
    structure = two_level_structure(pydoe.fracfact("a b c d abc bcd"))
    words = {"".join("ABCDEF"[i] for i in sorted(word)) for word in structure.words}
    assert words == {"ABCE", "BCDF", "ADEF"}
    assert structure.generators == "a b c d abc bcd"


def test_full_factorial_has_no_aliases():
    result = design("fullfact", two_levels(*"ABC"))
    assert result.matrix.shape == (8, 3)
    assert result.aliases == [] and result.resolution is None and result.generators is None


def test_alias_groups_skip_effects_beyond_two_factor_interactions():
    matrix = pydoe.fracfact("a b c d abcd")  # 2^(5-1)_V, I = ABCDE: 2FIs alias only 3FIs
    assert alias_groups(matrix, list("ABCDE")) == []


# ---------------------------------------------------------------- fractions by resolution


@pytest.mark.parametrize(("count", "resolution", "runs"), [(5, 4, 16), (5, 3, 8), (7, 4, 16)])
def test_fraction_by_resolution_is_small_and_reaches_it(count, resolution, runs):
    names = [f"f{i}" for i in range(count)]
    result = design("fracfact", two_levels(*names), resolution=resolution)
    assert result.matrix.shape == (runs, count)
    assert result.resolution >= resolution
    aliased_mains = {e for g in result.aliases for e in g if len(g) > 1 and ":" not in e}
    assert bool(aliased_mains) == (resolution == 3)
    rebuilt = pydoe.fracfact(result.generators).astype(int)
    assert {tuple(r) for r in rebuilt} == {tuple(r) for r in result.matrix}


def test_fraction_is_in_standard_order():
    result = design("fracfact", two_levels(*"ABCDE"), resolution=4)
    base = result.matrix[:, :4]  # a b c d are the base columns, e = their product
    expected = pydoe.fullfact([2, 2, 2, 2]) * 2 - 1  # first factor alternates fastest
    assert np.array_equal(base, expected)


def test_five_factor_resolution_iv_study_needs_half_the_two_level_runs():
    declared = factors(
        "model=minilm,mpnet",
        "prune=0.3,0.7",
        "prune_method=global_l1,l1",
        "quant=fp32,int8",
        "batch_size=1,8",
    )
    fraction = design("fracfact", declared, resolution=4)
    assert (len(fraction.points), fraction.full_factorial_runs) == (16, 32)
    assert not any(":" not in effect for group in fraction.aliases for effect in group)


# ---------------------------------------------------------------- Plackett-Burman


def test_twelve_run_plackett_burman_has_no_complete_aliasing():
    result = design("pbdesign", two_levels(*"ABCDEFGH"))
    assert result.matrix.shape == (12, 8)
    assert result.aliases == [] and result.resolution is None
    main, interaction = result.matrix[:, 0], result.matrix[:, 1] * result.matrix[:, 2]
    assert abs(main @ interaction) == 4  # partially aliased: correlation 1/3, not 1
    assert np.array_equal(result.matrix.T @ result.matrix, 12 * np.eye(8))  # orthogonal mains


def test_eight_run_plackett_burman_is_a_resolution_iii_fraction():
    result = design("pbdesign", two_levels(*"ABCDE"))
    assert result.matrix.shape == (8, 5)
    assert result.resolution == 3
    assert all(len(g) >= 2 for g in result.aliases)


# ---------------------------------------------------------------- levels and ranges


def test_factorial_levels_keep_their_type_and_spelling():
    result = design("fullfact", factors("prune=0.3,0.7", "quant=fp32,int8", "batch_size=1,8,16"))
    assert result.matrix.shape == (12, 3)
    assert result.coding == "level index"
    assert result.points[0] == {"prune": 0.3, "quant": "fp32", "batch_size": 1}
    assert result.overrides[-1] == ["prune=0.7", "quant=int8", "batch_size=16"]


def test_box_behnken_maps_coded_levels_onto_the_declared_range():
    declared = factors("prune=interval(0.1,0.7)", "batch_size=int(interval(1,32))", "lr=1e-4,1e-2")
    result = design("bbdesign", declared, center=1)
    assert result.matrix.shape == (13, 3)
    assert {p["prune"] for p in result.points} == {0.1, 0.4, 0.7}
    assert {p["batch_size"] for p in result.points} == {1, 16, 32}  # integers are rounded
    assert all(isinstance(p["batch_size"], int) for p in result.points)
    assert {p["lr"] for p in result.points} == {1e-4, 0.00505, 1e-2}
    assert result.points[-1] == {"prune": 0.4, "batch_size": 16, "lr": 0.00505}


@pytest.mark.parametrize(("face", "inside"), [(Face.inscribed, True), (Face.circumscribed, False)])
def test_central_composite_face_decides_whether_runs_leave_the_range(face, inside):
    result = design("ccdesign", factors("a=interval(0,1)", "b=interval(0,1)"), face=face, center=1)
    values = np.array([[p["a"], p["b"]] for p in result.points])
    assert result.matrix.shape == (10, 2)
    assert ((values >= 0) & (values <= 1)).all() == inside


def test_latin_hypercube_is_seeded_and_fills_every_stratum():
    declared = factors("prune=interval(0.2,0.6)", "batch_size=interval(1.0,9.0)")
    first = design("lhs", declared, samples=8, seed=3)
    assert first.points == design("lhs", declared, samples=8, seed=3).points
    assert first.points != design("lhs", declared, samples=8, seed=4).points
    prune = np.array([p["prune"] for p in first.points])
    strata = np.floor((prune - 0.2) / 0.4 * 8).astype(int)
    assert sorted(strata) == list(range(8))  # one point in each eighth of the range


@pytest.mark.parametrize(
    ("kind", "declared", "settings", "message"),
    [
        ("lhs", ["prune=0.3,0.7", "quant=fp32,int8"], {}, "quant=fp32,int8 is categorical"),
        ("bbdesign", ["a=1,2,3", "b=1,2", "c=1,2"], {}, "needs a range per factor"),
        ("fracfact", ["a=1,2,3", "b=1,2"], {"resolution": 3}, "2-level design: a has 3 levels"),
        ("fracfact", ["a=1,2", "b=1,2"], {}, "needs hydra.sweeper.resolution"),
        ("fracfact", ["a=1,2", "b=1,2"], {"generators": "a b ab"}, "3 words for 2 factors"),
        ("fracfact", ["a=1,2", "b=1,2", "c=1,2"], {"generators": "a b a"}, "generators 'a b a'"),
        ("bbdesign", ["a=interval(0,1)", "b=interval(0,1)"], {}, "at least 3 factors"),
        ("fullfact", [], {}, "declare at least one factor"),
    ],
)
def test_impossible_designs_fail_with_one_line(kind, declared, settings, message):
    with pytest.raises(DesignError, match=message) as error:
        design(kind, factors(*declared), **settings)
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------- runs and the record


def test_replicates_repeat_every_row_in_a_seeded_random_order():
    order = run_order(rows=8, replicates=3, randomize=True, seed=0)
    assert sorted(order) == sorted(list(range(8)) * 3)
    assert order == run_order(rows=8, replicates=3, randomize=True, seed=0)
    assert order != run_order(rows=8, replicates=3, randomize=True, seed=1)
    assert order != sorted(order)
    assert run_order(rows=4, replicates=2, randomize=False, seed=0) == [0, 1, 2, 3] * 2


def test_design_record_holds_what_the_analysis_reads():
    declared = factors("prune=0.3,0.7", "quant=fp32,int8", "batch_size=1,8", "model=a,b")
    settings = DesignSettings(design=DesignKind.fracfact, generators="a b c abc", replicates=2)
    result = build_design(declared, settings)
    order = run_order(len(result.points), 2, True, 0)
    record = json.loads(json.dumps(design_record(result, settings, order)))
    assert record["design"] == "fracfact"
    assert record["factors"] == {
        "prune": [0.3, 0.7],
        "quant": ["fp32", "int8"],
        "batch_size": [1, 8],
        "model": ["a", "b"],
    }
    assert (record["resolution"], record["generators"]) == (4, "a b c abc")
    assert as_sets(record["aliases"]) == as_sets(
        [["prune:quant", "batch_size:model"], ["prune:batch_size", "quant:model"],
         ["prune:model", "quant:batch_size"]]
    )  # fmt: skip
    assert record["matrix"][:2] == [[-1, -1, -1, -1], [1, -1, -1, 1]]
    assert (record["replicates"], record["seed"], record["run_order"]) == (2, 0, order)
    assert len(record["run_order"]) == 16


def test_preview_lists_every_job_in_run_order():
    result = design("fracfact", two_levels(*"ABCD"), generators="a b c abc")
    order = run_order(8, 1, True, 0)
    lines = describe(result, order).splitlines()
    assert lines[0].startswith("fracfact, resolution IV (generators: a b c abc): 8 design points")
    assert "= 8 jobs (full factorial of the declared levels: 16)" in lines[0]
    assert "aliased: A:B = C:D" in lines
    table = lines[lines.index(next(line for line in lines if line.startswith("job"))) + 1 :]
    assert [int(line.split()[1]) for line in table] == order
