"""Sweep files: a large design written down once, in YAML, instead of many ``--vary``.

::

    base: quick.yaml              # the scenario, relative to this file
    replications: 4               # optional (default: the base scenario's)
    policies: [nearest_station, nearest_idle_van]   # optional: each point under each
    factors:
      network.vans.total: [70, 90, 120]              # a grid: every value
      hotline.redial_probability: {low: 0.2, high: 0.8}          # a range: sampled
      hotline.shifts[1].agents: {low: 2, high: 6, integer: true}
    sample:                       # needed when a factor is a range
      method: latin_hypercube     # or sobol (scrambled; points a power of two)
      points: 8
      seed: 1                     # optional (default: the base scenario's seed)

The points are every combination of the grid factors (the first varying slowest; a
``policies`` list is the first grid factor, ``dispatch.policy``) crossed with the
``sample.points`` rows of a space-filling design over the ranges, drawn with
:mod:`scipy.stats.qmc`: a Latin hypercube puts one point in each of ``points`` equal
slices of every range; a scrambled Sobol' sequence fills the space evenly in every
projection (balanced only for a power of two). An integer range gives every integer
from ``low`` to ``high`` the same share. Every point keeps the base seed (common random
numbers), as with ``--vary``.

Mistakes end with one line naming the sweep file, the line and the field.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from scipy.stats import qmc

from sim.errors import UserInputError
from sim.experiments.runs.replication import PolicySpec
from sim.experiments.runs.sweep import (
    _NOT_SWEPT,
    Parameter,
    SweepPoint,
    check_policy_not_swept,
    make_points,
)
from sim.experiments.runs.work_estimate import MAX_DESIGN_POINTS, check_design_points
from sim.model.loading import check_size, expanded, field_line
from sim.model.scenario import Scenario
from sim.model.schema import MAX_SCENARIO_BYTES
from sim.model.streams import named_rng

METHODS = ("latin_hypercube", "sobol")
_TOP_LEVEL = ("base", "replications", "policies", "factors", "sample", "description")


@dataclass(frozen=True)
class Range:
    """A factor sampled between ``low`` and ``high`` (inclusive for integers)."""

    low: float
    high: float
    integer: bool = False

    def values(self, u: np.ndarray) -> list[Any]:
        """The factor's values at unit-interval coordinates ``u`` of a design."""
        if self.integer:
            low, high = int(self.low), int(self.high)
            # floor(u (n + 1)) spreads [0, 1) evenly over the n + 1 integers.
            return [min(high, low + math.floor(x * (high - low + 1))) for x in u]
        return [float(v) for v in qmc.scale(u.reshape(-1, 1), self.low, self.high)[:, 0]]


@dataclass(frozen=True)
class SweepFile:
    """A sweep file, read and checked; :meth:`points` makes its design on a base scenario."""

    path: Path
    base: Path
    replications: int | None
    grid: dict[str, tuple[Any, ...]]
    ranges: dict[str, Range]
    method: str | None = None
    sample_points: int = 0
    sample_seed: int | None = None

    @property
    def policy_clash(self) -> str:
        """Why a policy for every point is refused when this file sweeps the policy."""
        return f"{self.path.name} sweeps dispatch.policy: drop --policy, or its policies"

    @property
    def size(self) -> int:
        """The number of points, counted from the design's shape without making them."""
        return self._grid_size * (self.sample_points if self.ranges else 1)

    @property
    def _grid_size(self) -> int:
        return math.prod(len(values) for values in self.grid.values())

    @property
    def size_field(self) -> str:
        """The field that makes the design large: its sample's points, or its grid."""
        if self.ranges and self._grid_size <= MAX_DESIGN_POINTS:
            return "sample.points"
        return "factors"

    def factor_line(self, factor: str) -> int | None:
        """1-based line of a swept field in this file (``policies`` for the policy's)."""
        try:
            tree = YAML(typ="rt").load(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, YAMLError):
            return None
        factors = tree.get("factors") if isinstance(tree, Mapping) else None
        if isinstance(factors, Mapping) and factor in factors:
            return _factor_line(factors, factor)
        return field_line(self.path, "policies")

    def check_size(self) -> None:
        """Refuse a design of more points than one may have, naming this file's line."""
        field = self.size_field
        check_design_points(self.size, field, file=self.path, line=field_line(self.path, field))

    def design(self, base: Scenario) -> list[dict[str, Any]]:
        """The values of every point, grid combinations crossed with the sampled rows."""
        combinations = [
            dict(zip(self.grid, values, strict=True))
            for values in itertools.product(*self.grid.values())
        ]
        if not self.ranges:
            return combinations
        rows = self._sample(base.seed if self.sample_seed is None else self.sample_seed)
        return [{**combination, **row} for combination in combinations for row in rows]

    def _sample(self, seed: int) -> list[dict[str, Any]]:
        d = len(self.ranges)
        rng = named_rng(seed, "sweep_design")
        sampler: qmc.QMCEngine
        if self.method == "sobol":
            sampler = qmc.Sobol(d, scramble=True, rng=rng)
            unit = sampler.random_base2(int(math.log2(self.sample_points)))
        else:
            sampler = qmc.LatinHypercube(d, rng=rng)
            unit = sampler.random(self.sample_points)
        columns = {
            path: factor.values(unit[:, j]) for j, (path, factor) in enumerate(self.ranges.items())
        }
        return [{path: columns[path][i] for path in self.ranges} for i in range(self.sample_points)]

    def points(
        self, base: Scenario, policy: PolicySpec = None
    ) -> tuple[list[Parameter], list[SweepPoint]]:
        """The swept parameters (each with its values in order of appearance) and the
        checked points of the design on ``base`` (a mistake names this file).

        A ``policy`` for every point is refused when the file sweeps ``dispatch.policy``
        (its ``policies`` or a factor): the rows would be labelled with the file's.
        """
        check_policy_not_swept([*self.grid, *self.ranges], policy, self.policy_clash)
        self.check_size()
        design = self.design(base)
        try:
            points = make_points(
                base, design, policy=policy, base_dir=self.path.parent, origin="factors"
            )
        except UserInputError as exc:
            if exc.file is None:
                exc.file = str(self.path)
                exc.line = field_line(self.path, "factors")
            raise
        parameters = []
        for path in [*self.grid, *self.ranges]:
            seen: dict[str, Any] = {}
            for values in design:
                seen.setdefault(repr(values[path]), values[path])
            parameters.append(Parameter(path, tuple(seen.values())))
        return parameters, points


def is_sweep_file(path: Path) -> bool:
    """Whether a YAML file is a sweep file (it has ``factors``) rather than a scenario."""
    try:
        if path.stat().st_size > MAX_SCENARIO_BYTES:
            # Too large to read as either: told apart by its name alone, then refused.
            return _names_factors(path)
        tree = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError, ValueError):
        return False
    return isinstance(tree, dict) and "factors" in tree


def _names_factors(path: Path) -> bool:
    """Whether the first megabyte of a file has a top-level ``factors:`` line."""
    with path.open("rb") as handle:
        head = handle.read(1_000_000)
    return re.search(rb"^factors\s*:", head, re.MULTILINE) is not None


def read_sweep_file(path: str | Path) -> SweepFile:
    """Read and check a sweep file; :class:`UserInputError` names file, line and field."""
    path = Path(path)
    try:
        check_size(path, "a sweep file")
        tree = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserInputError("sweep file not found", file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"cannot read: {exc.__class__.__name__}", file=path) from None
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or exc
        raise UserInputError(f"YAML syntax: {problem}", file=path, line=line) from None

    expanded(tree, path)  # aliases within the scenarios' limit before any value is read

    def fail(message: str, field: str) -> UserInputError:
        return UserInputError(message, file=path, line=field_line(path, field), field=field)

    if not isinstance(tree, Mapping):
        raise UserInputError("a sweep file is a mapping of fields", file=path, line=1)
    for key in tree:
        if key not in _TOP_LEVEL:
            raise fail(f"unknown field; known: {', '.join(_TOP_LEVEL)}", str(key))
    if not isinstance(tree.get("base"), str) or not tree["base"]:
        raise UserInputError("name the base scenario file", file=path, field="base")
    base = Path(tree["base"])
    base = base if base.is_absolute() else path.parent / base
    replications = tree.get("replications")
    if replications is not None and (
        isinstance(replications, bool) or not isinstance(replications, int) or replications < 1
    ):
        raise fail("must be a whole number, at least 1", "replications")

    grid: dict[str, tuple[Any, ...]] = {}
    policies = tree.get("policies")
    if policies is not None:
        if not isinstance(policies, list) or not policies:
            raise fail("give a list of policy names", "policies")
        if not all(isinstance(p, str) for p in policies) or len(set(policies)) != len(policies):
            raise fail("policy names, each once", "policies")
        grid["dispatch.policy"] = tuple(policies)

    factors = tree.get("factors")
    if not isinstance(factors, Mapping) or not factors:
        raise fail("give at least one factor: PATH: [values] or PATH: {low, high}", "factors")
    ranges: dict[str, Range] = {}
    for raw_path, spec in factors.items():
        factor = str(raw_path)
        where = f"factors.{factor}"
        line = _factor_line(factors, raw_path)

        def bad(message: str, line: int | None = line, where: str = where) -> UserInputError:
            return UserInputError(message, file=path, line=line, field=where)

        if factor in _NOT_SWEPT:
            raise bad(_NOT_SWEPT[factor])
        if factor == "dispatch.policy" and policies is not None:
            raise bad("the policies are given in 'policies'")
        for other in [*grid, *ranges]:
            if factor.startswith((f"{other}.", f"{other}[")) or other.startswith(
                (f"{factor}.", f"{factor}[")
            ):
                raise bad(f"overlaps {other}")
        if isinstance(spec, list):
            values = [_plain(v) for v in spec]
            if not values:
                raise bad("no values given")
            if len({repr(v) for v in values}) != len(values):
                raise bad("a value is given twice")
            grid[factor] = tuple(values)
        elif isinstance(spec, Mapping):
            ranges[factor] = _range(spec, bad)
        else:
            raise bad("give a list of values, or a range {low, high}")

    sample = tree.get("sample")
    method: str | None = None
    points = 0
    seed: int | None = None
    if ranges:
        if not isinstance(sample, Mapping):
            methods = " or ".join(METHODS)
            first = next(iter(ranges))  # no sample to point at: point at the first range
            raise UserInputError(
                f"ranges need a sample: method ({methods}) and points",
                file=path,
                line=_factor_line(factors, first),
                field="sample",
            )
        for key in sample:
            if key not in ("method", "points", "seed"):
                raise fail("unknown field; known: method, points, seed", f"sample.{key}")
        method = sample.get("method")
        if method not in METHODS:
            raise fail(f"unknown method {method!r}; known: {', '.join(METHODS)}", "sample.method")
        given = sample.get("points")
        if isinstance(given, bool) or not isinstance(given, int) or given < 1:
            raise fail("must be a whole number, at least 1", "sample.points")
        points = int(given)
        if method == "sobol" and points & (points - 1):
            below = 1 << (points.bit_length() - 1)
            raise fail(
                f"Sobol' points are balanced only in powers of two: use {below} or {below * 2}",
                "sample.points",
            )
        seed = sample.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise fail("must be a whole number, at least 0", "sample.seed")
    elif sample is not None:
        raise fail("nothing to sample: no factor is a range {low, high}", "sample")
    return SweepFile(path, base, replications, grid, ranges, method, points, seed)


def _factor_line(factors: Mapping[str, Any], path: str) -> int | None:
    """1-based line of a factor (its path has dots: not a nested field to look up)."""
    lc = getattr(factors, "lc", None)
    return None if lc is None else int(lc.key(path)[0]) + 1


def _plain(value: Any) -> Any:
    """A YAML scalar as a plain Python value (ruamel's round-trip types are subclasses)."""
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def _range(spec: Mapping[str, Any], bad: Any) -> Range:
    unknown = [key for key in spec if key not in ("low", "high", "integer")]
    if unknown:
        raise bad(f"unknown field {unknown[0]!r}; a range has low, high and integer")
    bounds = {}
    for name in ("low", "high"):
        value = spec.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad(f"a range needs a number '{name}'")
        bounds[name] = float(value)
    low, high = bounds["low"], bounds["high"]
    integer = spec.get("integer", False)
    if not isinstance(integer, bool):
        raise bad("'integer' is true or false")
    if integer and not (low.is_integer() and high.is_integer()):
        raise bad("an integer range needs whole numbers low and high")
    if not low < high:
        raise bad(f"low ({low:g}) must be below high ({high:g})")
    return Range(low, high, integer)
