"""Designs of experiments: factors declared as Hydra sweep overrides become a coded design
matrix (pyDOE), its alias structure, values for every design point and a seeded run order.

Nothing here launches a job; :mod:`hydra_plugins.doe_sweeper.doe_sweeper` does that. The
leading underscore keeps Hydra's plugin scanner out: it re-executes every public module under
``hydra_plugins``, which would define a second ``DesignKind`` beside the one already imported.
pydoe is imported inside the builders: Hydra imports the plugin on every start, pydoe takes
seconds.
"""

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
from hydra.core.override_parser.types import IntervalSweep, Override


class DesignError(ValueError):
    """A design that cannot be built from the declared factors; the message is one line."""


class DesignKind(Enum):
    fullfact = "fullfact"
    fracfact = "fracfact"
    pbdesign = "pbdesign"
    bbdesign = "bbdesign"
    ccdesign = "ccdesign"
    lhs = "lhs"


class Face(Enum):
    """Where a central composite design puts its axial points (coded +-1 = declared range)."""

    inscribed = "inscribed"  # axial points on the range ends, cube inside: all runs in range
    faced = "faced"  # axial points on the faces of the cube: three levels per factor
    circumscribed = "circumscribed"  # axial points at +-alpha, outside the declared range


@dataclass
class DesignSettings:
    """What ``hydra.sweeper.*`` says about the design; the sweeper's config extends it."""

    design: DesignKind = DesignKind.fullfact
    # fracfact: pyDOE generator string, one word per factor in declaration order ("a b c abc") ...
    generators: str | None = None
    # ... or the smallest 2-level fraction of at least this resolution.
    resolution: int | None = None
    # lhs: number of points (pyDOE's default: one per factor).
    samples: int | None = None
    # bbdesign / ccdesign: centre points (ccdesign: in each block); None = pyDOE's default.
    center: int | None = None
    face: Face = Face.inscribed
    replicates: int = 1
    randomize: bool = True
    # Seeds the run order and lhs; fixed by default so that a re-run repeats the same jobs.
    seed: int = 0


@dataclass(frozen=True)
class Factor:
    """One swept config key: ``prune=0.3,0.7`` (levels) or ``prune=interval(0.3,0.7)`` (range).

    ``spelled`` holds each level as Hydra writes it back into an override.
    """

    name: str
    key: str
    levels: tuple[Any, ...]
    spelled: tuple[str, ...]

    @property
    def numeric(self) -> bool:
        return all(isinstance(v, int | float) and not isinstance(v, bool) for v in self.levels)

    @property
    def integer(self) -> bool:
        return all(isinstance(v, int) and not isinstance(v, bool) for v in self.levels)


def factor_from_override(override: Override) -> Factor:
    value = override.value()
    key = override.get_key_element()
    if isinstance(value, IntervalSweep):
        levels = (value.start, value.end)
        return Factor(override.key_or_group, key, levels, tuple(map(_spell, levels)))
    levels = tuple(override.sweep_iterator())
    spelled = tuple(override.sweep_string_iterator())
    return Factor(override.key_or_group, key, levels, spelled)


@dataclass
class Design:
    """A coded design in standard order and the factor values of each of its rows."""

    kind: DesignKind
    factors: list[Factor]
    matrix: np.ndarray
    coding: str
    points: list[dict[str, Any]]
    overrides: list[list[str]]
    generators: str | None
    resolution: int | None
    aliases: list[list[str]]
    full_factorial_runs: int | None  # factorial designs: the grid of the declared levels


# ---------------------------------------------------------------- building coded matrices


def _require_two_levels(kind: DesignKind, factors: Sequence[Factor]) -> None:
    for factor in factors:
        if len(factor.levels) != 2:
            raise DesignError(
                f"{kind.value} is a 2-level design: {factor.name} has {len(factor.levels)} "
                f"levels ({', '.join(factor.spelled)}); give it exactly two"
            )


def _require_ranges(kind: DesignKind, factors: Sequence[Factor]) -> None:
    for factor in factors:
        if not factor.numeric:
            raise DesignError(
                f"{kind.value} needs numeric ranges, but {factor.name}="
                f"{','.join(factor.spelled)} is categorical: use fullfact, fracfact or pbdesign"
            )
        if len(factor.levels) != 2:
            raise DesignError(
                f"{kind.value} needs a range per factor: write {factor.name}=interval(low,high) "
                f"or {factor.name}=low,high, not {len(factor.levels)} levels"
            )


def _fullfact(factors: Sequence[Factor], settings: DesignSettings) -> np.ndarray:
    import pydoe

    counts = [len(f.levels) for f in factors]
    index = pydoe.fullfact(counts)
    return 2 * index - 1 if set(counts) == {2} else index


def _fracfact(factors: Sequence[Factor], settings: DesignSettings) -> np.ndarray:
    import pydoe

    _require_two_levels(DesignKind.fracfact, factors)
    if settings.generators is not None and settings.resolution is not None:
        raise DesignError("fracfact takes generators or resolution, not both")
    if settings.generators is not None:
        words = settings.generators.split()
        if len(words) != len(factors):
            raise DesignError(
                f"generators '{settings.generators}' has {len(words)} words for "
                f"{len(factors)} factors ({', '.join(f.name for f in factors)})"
            )
        try:
            return pydoe.fracfact(settings.generators)
        except ValueError as error:
            raise DesignError(f"generators '{settings.generators}': {error}") from None
    if settings.resolution is not None:
        try:
            return pydoe.fracfact_by_res(len(factors), settings.resolution)
        except ValueError as error:
            raise DesignError(
                f"no 2-level fraction of {len(factors)} factors at resolution "
                f"{settings.resolution}: {error}"
            ) from None
    raise DesignError(
        "fracfact needs hydra.sweeper.resolution=N or hydra.sweeper.generators='a b c abc'"
    )


def _pbdesign(factors: Sequence[Factor], settings: DesignSettings) -> np.ndarray:
    import pydoe

    _require_two_levels(DesignKind.pbdesign, factors)
    return pydoe.pbdesign(len(factors))


def _bbdesign(factors: Sequence[Factor], settings: DesignSettings) -> np.ndarray:
    import pydoe

    _require_ranges(DesignKind.bbdesign, factors)
    if len(factors) < 3:
        raise DesignError(f"bbdesign needs at least 3 factors, got {len(factors)}")
    return pydoe.bbdesign(len(factors), center=settings.center)


def _ccdesign(factors: Sequence[Factor], settings: DesignSettings) -> np.ndarray:
    import pydoe

    _require_ranges(DesignKind.ccdesign, factors)
    if len(factors) < 2:
        raise DesignError(f"ccdesign needs at least 2 factors, got {len(factors)}")
    center = {} if settings.center is None else {"center": (settings.center, settings.center)}
    return pydoe.ccdesign(len(factors), face=settings.face.value, **center)


def _lhs(factors: Sequence[Factor], settings: DesignSettings) -> np.ndarray:
    import pydoe

    _require_ranges(DesignKind.lhs, factors)
    unit = pydoe.lhs(len(factors), samples=settings.samples, seed=settings.seed)
    return 2 * unit - 1  # coded like the other continuous designs: -1 = low, +1 = high


Builder = Callable[[Sequence[Factor], DesignSettings], np.ndarray]

# Factorial designs index the declared levels; continuous ones map coded values onto ranges.
_FACTORIAL: dict[DesignKind, Builder] = {
    DesignKind.fullfact: _fullfact,
    DesignKind.fracfact: _fracfact,
    DesignKind.pbdesign: _pbdesign,
}
_CONTINUOUS: dict[DesignKind, Builder] = {
    DesignKind.bbdesign: _bbdesign,
    DesignKind.ccdesign: _ccdesign,
    DesignKind.lhs: _lhs,
}


# ---------------------------------------------------------------- 2-level structure


@dataclass
class TwoLevelStructure:
    """Which columns of a 2-level design are products of others.

    ``base`` are the independent columns; ``tokens`` spell every column in pyDOE's generator
    syntax (base columns get the letters a, b, c, ...); ``words`` is the defining relation as
    sets of factor indices whose product is constant.
    """

    base: list[int]
    tokens: list[str]
    words: list[frozenset[int]]

    @property
    def generators(self) -> str | None:
        return " ".join(self.tokens) if self.words else None

    @property
    def resolution(self) -> int | None:
        return min(map(len, self.words)) if self.words else None


def two_level_structure(matrix: np.ndarray) -> TwoLevelStructure:
    """Empty for a non-regular design (a 12-run Plackett-Burman): no column is a product."""
    columns = np.asarray(matrix, dtype=np.int8).T
    rows = columns.shape[1]
    ones = np.ones(rows, dtype=np.int8)
    # every product of the base columns so far, keyed by its column: (factors, letters, column)
    empty: frozenset[int] = frozenset()
    products = {ones.tobytes(): (empty, "", ones)}
    base: list[int] = []
    tokens: list[str] = []
    generator_words: list[frozenset[int]] = []
    for index, column in enumerate(columns):
        for sign, signed in (("", column), ("-", -column)):
            if signed.tobytes() in products:
                factors, letters, _ = products[signed.tobytes()]
                tokens.append(sign + letters)
                generator_words.append(factors | {index})
                break
        else:
            if len(base) == rows.bit_length() - 1:  # a regular fraction has log2(rows) of them
                return TwoLevelStructure([], [], [])
            letter = chr(ord("a") + len(base))
            base.append(index)
            tokens.append(letter)
            for factors, letters, product in list(products.values()):
                new = product * column
                products[new.tobytes()] = (factors | {index}, letters + letter, new)
    return TwoLevelStructure(base, tokens, _subgroup(generator_words))


def _subgroup(generators: list[frozenset[int]]) -> list[frozenset[int]]:
    """All non-empty products (symmetric differences) of the generator words."""
    words: set[frozenset[int]] = set()
    for size in range(1, len(generators) + 1):
        for chosen in itertools.combinations(generators, size):
            word: frozenset[int] = frozenset()
            for generator in chosen:
                word = word ^ generator
            if word:
                words.add(word)
    return sorted(words, key=lambda w: (len(w), sorted(w)))


def alias_groups(matrix: np.ndarray, names: Sequence[str]) -> list[list[str]]:
    """Main effects and two-factor interactions whose contrast columns coincide up to sign:
    the design cannot tell them apart."""
    effects = [(i,) for i in range(len(names))]
    effects += list(itertools.combinations(range(len(names)), 2))
    groups: dict[bytes, list[str]] = {}
    for effect in effects:
        column = np.prod(matrix[:, effect], axis=1).astype(np.int8)
        key = (column * column[0]).tobytes()  # the sign of a contrast does not matter
        groups.setdefault(key, []).append(":".join(names[i] for i in effect))
    return [group for group in groups.values() if len(group) > 1]


def _standard_order(matrix: np.ndarray, base: Sequence[int]) -> np.ndarray:
    """Rows in Yates order of the base columns: the first base factor alternates fastest."""
    keys = [matrix[:, column] for column in base]  # np.lexsort: the last key varies slowest
    return matrix[np.lexsort(keys)] if keys else matrix


# ---------------------------------------------------------------- decoding values


def _spell(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _in_range(factor: Factor, coded: float) -> int | float:
    low, high = factor.levels
    value = low + (coded + 1) / 2 * (high - low)
    return int(round(value)) if factor.integer else float(f"{value:.6g}")


def _factorial_points(matrix: np.ndarray, factors: Sequence[Factor]) -> list[list[int]]:
    two_level = all(len(f.levels) == 2 for f in factors)
    index = (matrix + 1) // 2 if two_level else matrix
    return index.astype(int).tolist()


def build_design(factors: Sequence[Factor], settings: DesignSettings) -> Design:
    if not factors:
        raise DesignError("declare at least one factor to sweep, e.g. prune=0.3,0.7")
    kind = settings.design
    if kind in _FACTORIAL:
        return _factorial_design(kind, list(factors), settings)
    return _continuous_design(kind, list(factors), settings)


def _factorial_design(kind: DesignKind, factors: list[Factor], settings: DesignSettings) -> Design:
    matrix = np.asarray(_FACTORIAL[kind](factors, settings))
    two_level = all(len(f.levels) == 2 for f in factors)
    generators = resolution = None
    aliases: list[list[str]] = []
    if two_level:
        structure = two_level_structure(matrix)
        if structure.resolution is not None and structure.resolution < 3:
            raise DesignError(
                f"this {kind.value} design confounds main effects with each other "
                f"(resolution {structure.resolution}): choose other generators"
            )
        if kind is DesignKind.fracfact:
            matrix = _standard_order(matrix, structure.base)
        generators, resolution = structure.generators, structure.resolution
        aliases = alias_groups(matrix, [f.name for f in factors])
        wanted = settings.resolution if kind is DesignKind.fracfact else None
        if wanted is not None and resolution is not None and resolution < wanted:
            raise DesignError(f"no 2-level fraction reaches resolution {wanted}")
    matrix = matrix.astype(int)
    index = _factorial_points(matrix, factors)
    points = [{f.name: f.levels[i] for f, i in zip(factors, row, strict=True)} for row in index]
    overrides = [
        [f"{f.key}={f.spelled[i]}" for f, i in zip(factors, row, strict=True)] for row in index
    ]
    coding = "-1/+1 = first/second level" if two_level else "level index"
    grid = int(np.prod([len(f.levels) for f in factors]))
    return Design(
        kind, factors, matrix, coding, points, overrides, generators, resolution, aliases, grid
    )


def _continuous_design(kind: DesignKind, factors: list[Factor], settings: DesignSettings) -> Design:
    matrix = np.asarray(_CONTINUOUS[kind](factors, settings), dtype=float)
    points = [
        {f.name: _in_range(f, coded) for f, coded in zip(factors, row, strict=True)}
        for row in matrix
    ]
    overrides = [[f"{f.key}={_spell(p[f.name])}" for f in factors] for p in points]
    coding = "-1..+1 = declared low..high"
    return Design(kind, factors, matrix.round(6), coding, points, overrides, None, None, [], None)


# ---------------------------------------------------------------- runs and records


def run_order(rows: int, replicates: int, randomize: bool, seed: int) -> list[int]:
    """Design row of each job: every row ``replicates`` times, completely randomized."""
    if replicates < 1:
        raise DesignError(f"replicates={replicates} must be at least 1")
    order = np.tile(np.arange(rows), replicates)
    if randomize:
        order = np.random.default_rng(seed).permutation(order)
    return order.tolist()


def design_record(design: Design, settings: DesignSettings, order: Sequence[int]) -> dict:
    """The ``design.json`` of a sweep: what the analysis needs to read the records back."""
    return {
        "design": design.kind.value,
        "factors": {f.name: list(f.levels) for f in design.factors},
        "resolution": design.resolution,
        "generators": design.generators,
        "aliases": design.aliases,
        "matrix": design.matrix.tolist(),
        "coding": design.coding,
        "points": design.points,
        "replicates": settings.replicates,
        "randomized": settings.randomize,
        "seed": settings.seed,
        "run_order": list(order),
    }
