"""Evaluating a scenario at points of a parameter space: the one call calibration and
sensitivity analysis make to the simulator.

A point sets scenario fields by their dotted paths (``travel.detour_factor``,
``network.vans.total``). Every point keeps the base scenario's seed, so replication r
of every point draws the same random numbers wherever the change leaves them alone
(common random numbers): the difference between two points is the parameters' effect,
not noise, which is what lets an optimiser or a Morris screening work with few
replications. Points are evaluated in one batch, so that worker processes are shared.

With a result store (:mod:`sim.experiments.runs.store`) every run of a point is kept
under its full run key (the resolved scenario, the policy and its source, the code and
the input files: :mod:`sim.experiments.runs.keys`), so that a command resumed after an
interruption runs only what is missing, and runs again whatever an input changed.

Parameters are given as ``PATH=LOW..HIGH`` ranges. A field that holds an integer in the
base scenario (``network.vans.total``) is an integer parameter (see :func:`bind_ranges`):
its values are rounded before they reach the scenario.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.kpi_catalogue import CATALOGUE, unknown_kpis
from sim.errors import UserInputError
from sim.experiments.runs.run import Execution
from sim.model.loading import with_fields
from sim.model.network import build_network
from sim.model.scenario import Scenario

# Fields no point may set: changing them would break the common random numbers.
_FIXED = ("seed", "replications")


@dataclass(frozen=True)
class ParameterRange:
    """A scenario field (dotted path) and the interval it may take."""

    path: str
    low: float
    high: float
    integer: bool = False

    def value(self, x: float) -> float | int:
        """The value a scenario gets for ``x`` (rounded for an integer parameter)."""
        return round(float(x)) if self.integer else float(x)


def parse_range(text: str, option: str = "--param") -> ParameterRange:
    """``PATH=LOW..HIGH`` as written on the command line."""
    path, sep, bounds = text.partition("=")
    path = path.strip()
    low_text, dots, high_text = bounds.partition("..")
    if not sep or not path or not dots:
        raise UserInputError(f"{text!r}: write PATH=LOW..HIGH", field=option)
    try:
        low, high = float(low_text), float(high_text)
    except ValueError:
        raise UserInputError(f"{text!r}: LOW and HIGH must be numbers", field=option) from None
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise UserInputError(f"{text!r}: needs LOW < HIGH", field=option)
    if path.split(".")[0].split("[")[0] in _FIXED:
        raise UserInputError(f"{path} is fixed: every point keeps it", field=option)
    return ParameterRange(path, low, high)


def field_value(base: Scenario, path: str) -> Any:
    """The value of a dotted field in a scenario (None when it has no such field)."""
    node: Any = base.model_dump(by_alias=True)
    try:
        for part in path.replace("[", ".").replace("]", "").split("."):
            node = node[int(part)] if part.isdigit() else node[part]
    except (KeyError, IndexError, TypeError):
        return None
    return node


def bind_ranges(base: Scenario, ranges: Sequence[ParameterRange]) -> list[ParameterRange]:
    """The ranges, each an integer parameter when its field holds an integer in ``base``."""
    bound = []
    for r in ranges:
        value = field_value(base, r.path)
        integer = isinstance(value, int) and not isinstance(value, bool)
        bound.append(ParameterRange(r.path, r.low, r.high, integer))
    return bound


def check_ranges(base: Scenario, ranges: Sequence[ParameterRange], option: str = "--param") -> None:
    """Fail before any work when a path is given twice or a bound makes a bad scenario."""
    paths = [r.path for r in ranges]
    if not ranges:
        raise UserInputError("name at least one parameter", field=option)
    if len(set(paths)) != len(paths):
        raise UserInputError("a parameter is given twice", field=option)
    for bound in ("low", "high"):
        values = {r.path: r.value(getattr(r, bound)) for r in ranges}
        try:
            build_network(with_fields(base, values))
        except UserInputError as exc:
            where = f"{option} {exc.field}" if exc.field else option
            raise UserInputError(f"at the {bound} bounds: {exc.message}", field=where) from None


def check_kpis(kpis: Sequence[str], option: str = "--kpi") -> None:
    """Fail on a KPI name the runs do not report."""
    for name in unknown_kpis(kpis):
        known = ", ".join(CATALOGUE)
        raise UserInputError(f"unknown KPI {name!r}; known: {known}", field=option)


def point_scenario(
    base: Scenario, ranges: Sequence[ParameterRange], x: Sequence[float] | np.ndarray
) -> Scenario:
    """The base scenario with each range's field set to the matching entry of ``x``."""
    return with_fields(base, {r.path: r.value(v) for r, v in zip(ranges, x, strict=True)})


def evaluate_points(
    base: Scenario,
    ranges: Sequence[ParameterRange],
    points: np.ndarray,
    *,
    replications: int,
    execution: Execution | None = None,
) -> list[pd.DataFrame]:
    """KPIs by replication (one table per row of ``points``), all on the base seed.

    ``execution`` says where the runs go (default: one local process): with a result
    store there, each finished run is kept (its KPIs, not its tables) and those it
    already holds are handed back instead of run again (see
    :meth:`sim.experiments.runs.run.Execution.run_all`). The first run that raises is
    raised.
    """
    scenarios = [point_scenario(base, ranges, row) for row in np.atleast_2d(points)]
    results = (execution or Execution()).run_all(
        [(s, None) for s in scenarios], replications, keep_tables=False
    )
    return [r.kpis_by_replication for r in results]


def mean_kpis(tables: Sequence[pd.DataFrame], kpis: Sequence[str]) -> np.ndarray:
    """Mean over replications of each KPI at each point: shape (points, KPIs)."""
    return np.array([[float(t[k].mean()) for k in kpis] for t in tables])


def scenario_values(ranges: Sequence[ParameterRange], x: Sequence[float]) -> Mapping[str, float]:
    """The field values of a point, as the scenario gets them."""
    return {r.path: r.value(v) for r, v in zip(ranges, x, strict=True)}
