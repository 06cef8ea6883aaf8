"""Sweeps: one scenario run at every point of a grid of parameter values.

A point is the base scenario with some fields changed, named by their dotted paths as
in the YAML (``network.vans.total``, ``hotline.shifts[1].agents``, ``dispatch.policy``).
Every point keeps the base scenario's seed, so replication r of every point draws the
same random numbers wherever the change leaves them alone (common random numbers): a
sweep over the number of vans runs every fleet on the same calls, and the difference
between two points is free of the noise they share.

The results are flat rows, one per (point, replication), the parameters beside the
KPIs, ready for pandas; and a summary, one row per (point, KPI), with the mean and its
95% interval over replications.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from sim.analysis.kpis import summarise
from sim.errors import UserInputError
from sim.experiments.runs.arguments import check_list, check_scenario
from sim.experiments.runs.replication import PolicySpec, ProgressFn, policy_instance
from sim.experiments.runs.run import RunResult, run_all
from sim.experiments.runs.store import RunFailure
from sim.experiments.runs.work_estimate import check_design_points
from sim.experiments.runs.worker import cached_network
from sim.model.loading import with_fields
from sim.model.scenario import Scenario


@dataclass(frozen=True)
class Parameter:
    """A scenario field (dotted path) and the values a sweep gives it, in order."""

    path: str
    values: tuple[Any, ...]


def parse_parameter(text: str) -> Parameter:
    """``PATH=V1,V2,...`` as written on the command line; values are read as YAML scalars.

    ``network.vans.total=1800,2000`` gives the integers 1800 and 2000;
    ``dispatch.policy=nearest_station,nearest_idle_van`` two strings.
    """
    path, sep, listed = text.partition("=")
    path = path.strip()
    if not sep or not path:
        raise UserInputError(f"{text!r}: write PATH=VALUE,VALUE,...", field="--vary")
    words = [word.strip() for word in listed.split(",")]
    if not listed.strip() or any(not word for word in words):
        raise UserInputError(f"{text!r}: a value is missing", field="--vary")
    yaml = YAML(typ="safe")
    values = []
    for word in words:
        try:
            value = yaml.load(word)
        except YAMLError:
            value = {}  # "[1" of a list split at its comma, say: refused just below
        if isinstance(value, dict | list):
            raise UserInputError(f"{text!r}: {word!r} is not a single value", field="--vary")
        if value is not None and not isinstance(value, bool | int | float | str):
            value = word  # a date or the like: left as written, for the field to judge
        values.append(value)
    return Parameter(path, tuple(values))


@dataclass(frozen=True)
class SweepPoint:
    """One point of the grid: the values given to each swept path, and its scenario."""

    values: dict[str, Any]
    scenario: Scenario


# Fields a sweep must not vary: the replications are set for the whole sweep, and every
# point keeps the base seed, or the points would no longer share their random numbers.
_NOT_SWEPT = {
    "replications": "set for the whole sweep (--replications), not per point",
    "seed": "every point keeps the base seed, so that all points share their random numbers",
}


def format_value(value: Any) -> str:
    """A swept value as it is written in YAML (null, true, 1800, nearest_station)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_parameters(parameters: Sequence[Parameter], policy: PolicySpec) -> None:
    if not parameters:
        raise UserInputError("name at least one parameter to vary", field="--vary")
    paths = [p.path for p in parameters]
    for k, parameter in enumerate(parameters):
        path = parameter.path
        if path in _NOT_SWEPT:
            raise UserInputError(_NOT_SWEPT[path], field=f"--vary {path}")
        if not parameter.values:
            raise UserInputError("no values given", field=f"--vary {path}")
        distinct = {repr(v) for v in parameter.values}
        if len(distinct) != len(parameter.values):
            raise UserInputError("a value is given twice", field=f"--vary {path}")
        for other in paths[:k]:
            if other == path or path.startswith((f"{other}.", f"{other}[")):
                raise UserInputError(f"already varied as part of {other}", field=f"--vary {path}")
            if other.startswith((f"{path}.", f"{path}[")):
                raise UserInputError(f"contains {other}, varied too", field=f"--vary {path}")
    check_policy_not_swept(paths, policy)


def check_policy_not_swept(
    paths: Sequence[str],
    policy: PolicySpec,
    message: str = "dispatch.policy is swept: give the policies there",
) -> None:
    """Refuse a ``policy`` for every point when ``dispatch.policy`` is swept too.

    Each point would run under ``policy`` but be labelled with its swept policy.
    """
    if policy is not None and "dispatch.policy" in paths:
        raise UserInputError(message, field="--policy")


def grid(
    base: Scenario,
    parameters: Sequence[Parameter],
    *,
    policy: PolicySpec = None,
    base_dir: Path | None = None,
) -> list[SweepPoint]:
    """Every combination of the parameters' values, the first parameter varying slowest.

    Each point's scenario is validated, its network built and its dispatch policy made
    here, before any work: a path the scenario does not have, a value its field refuses,
    a network it cannot build or policy options the policy refuses raise
    :class:`UserInputError` naming ``--vary PATH=VALUE`` and the field. A point whose
    swept ``dispatch.policy`` is not the base scenario's starts from no options (as
    ``--policy`` does), unless ``dispatch.options`` are swept too. Relative file names
    are taken from ``base_dir`` (default: the current folder).
    """
    _check_parameters(parameters, policy)
    check_design_points(grid_size(parameters), "--vary")
    paths = [p.path for p in parameters]
    combinations = [
        dict(zip(paths, combination, strict=True))
        for combination in itertools.product(*(p.values for p in parameters))
    ]
    return make_points(base, combinations, policy=policy, base_dir=base_dir)


def grid_size(parameters: Sequence[Parameter]) -> int:
    """The number of points of the parameters' grid, without making them."""
    return math.prod(len(p.values) for p in parameters)


def make_points(
    base: Scenario,
    combinations: Sequence[dict[str, Any]],
    *,
    policy: PolicySpec = None,
    base_dir: Path | None = None,
    origin: str = "--vary",
) -> list[SweepPoint]:
    """The points given by each combination of values, checked as :func:`grid` says.

    ``origin`` names where the values came from in error messages (``--vary``, or a
    sweep file's ``factors``).
    """
    points = []
    for values in combinations:
        options_swept = any(path.startswith("dispatch.options") for path in values)
        changes = dict(values)
        swept_policy = values.get("dispatch.policy", base.dispatch.policy)
        if swept_policy != base.dispatch.policy and not options_swept:
            changes["dispatch.options"] = {}
        try:
            scenario = with_fields(base, changes, base_dir)
            # Built through the engine's cache: the runs of this point reuse it.
            cached_network(scenario)
            try:
                policy_instance(scenario, policy)
            except (TypeError, ValueError) as exc:
                raise UserInputError(str(exc), field="dispatch.options") from None
        except UserInputError as exc:
            given = ", ".join(f"{path}={format_value(value)}" for path, value in values.items())
            field = f"{origin} {given}" + (f": {exc.field}" if exc.field else "")
            raise UserInputError(exc.message, file=exc.file, line=exc.line, field=field) from None
        points.append(SweepPoint(values, scenario))
    return points


@dataclass
class SweepResult:
    """The runs of every point of a sweep, in point order."""

    base: Scenario
    parameters: list[Parameter]
    points: list[SweepPoint]
    results: list[RunResult]

    @property
    def paths(self) -> list[str]:
        return [p.path for p in self.parameters]

    @property
    def rows(self) -> pd.DataFrame:
        """One row per (point, replication): ``point``, each swept path, ``replication``, KPIs."""
        return self._per_point(lambda result: result.kpis_by_replication)

    @property
    def summary(self) -> pd.DataFrame:
        """One row per (point, KPI): ``point``, each swept path, ``kpi``, mean, low, high, n."""
        return self._per_point(lambda result: summarise(result.kpis_by_replication).reset_index())

    @property
    def failures(self) -> list[RunFailure]:
        """The runs that raised, each with the number of its point in this sweep."""
        return [
            replace(failure, point=k)
            for k, result in enumerate(self.results)
            for failure in result.failures
        ]

    def point_label(self, k: int) -> str:
        """``network.vans.total=140, hotline.max_attempts=2``: what point ``k`` sets."""
        return ", ".join(
            f"{path}={format_value(value)}" for path, value in self.points[k].values.items()
        )

    def _per_point(self, table: Callable[[RunResult], pd.DataFrame]) -> pd.DataFrame:
        """``table`` of each point's run, behind the point's number and swept values.

        A point none of whose replications finished has no rows.
        """
        frames = []
        for k, (point, result) in enumerate(zip(self.points, self.results, strict=True)):
            if not result.replications:
                continue
            frame = table(result)
            for column, value in reversed([("point", k), *point.values.items()]):
                frame.insert(0, column, [value] * len(frame))
            frames.append(frame)
        if not frames:
            return pd.DataFrame(columns=["point", *self.paths])
        return pd.concat(frames, ignore_index=True)


def sweep(
    base: Scenario,
    parameters: Sequence[Parameter],
    *,
    policy: PolicySpec = None,
    base_dir: Path | None = None,
    **options: Any,
) -> SweepResult:
    """Run the base scenario at every point of the parameters' grid.

    All (point, replication) runs share one pool of ``workers`` processes; the results
    are the same for any ``workers``. ``policy`` overrides each point's own (which is
    the base scenario's unless ``dispatch.policy`` is swept). A sweep keeps the KPIs of
    every run; the call and unit tables (some 20 MB a replication for a national month)
    only with ``keep_tables``, else each result's ``calls`` and ``units`` are empty.
    ``options`` are those of :func:`sweep_points` (``replications``, ``workers``,
    ``progress``, ``keep_tables``) and of :func:`~sim.experiments.runs.run.run_all`
    (``engine``, ``store``, ``precision``, ``raise_on_failure``...).
    """
    base = check_scenario(base, "base")
    parameters = check_parameters(parameters)
    points = grid(base, parameters, policy=policy, base_dir=base_dir)
    return sweep_points(base, parameters, points, policy=policy, **options)


def check_parameters(parameters: Any, field: str = "parameters") -> list[Parameter]:
    """The parameters of a sweep: :class:`Parameter` values, or ``PATH=V1,V2`` texts as
    ``--vary`` takes them (read by :func:`parse_parameter`)."""
    expected = "a list of Parameter(path, values) or PATH=V1,V2 texts"
    checked = []
    for k, parameter in enumerate(check_list(parameters, expected, field)):
        if isinstance(parameter, str):
            parameter = parse_parameter(parameter)
        if not isinstance(parameter, Parameter):
            raise UserInputError(
                f"expected a Parameter or a PATH=V1,V2 text, got {type(parameter).__name__}",
                field=f"{field}[{k}]",
            )
        if not isinstance(parameter.path, str) or not isinstance(parameter.values, list | tuple):
            raise UserInputError(
                "expected Parameter(path, values): a dotted path and a list of values",
                field=f"{field}[{k}]",
            )
        checked.append(Parameter(parameter.path, tuple(parameter.values)))
    return checked


def sweep_points(
    base: Scenario,
    parameters: list[Parameter],
    points: list[SweepPoint],
    *,
    replications: int | None = None,
    policy: PolicySpec = None,
    workers: int = 1,
    progress: ProgressFn | None = None,
    keep_tables: bool = False,
    **options: Any,
) -> SweepResult:
    """Run points already made (by :func:`grid`, or a sweep file's design).

    ``replications`` at each point (None: the base scenario's); the call and unit tables
    are kept only with ``keep_tables``; ``options`` are those of
    :func:`~sim.experiments.runs.run.run_all`.
    """
    n = replications if replications is not None else base.replications
    results = run_all(
        [(point.scenario, policy) for point in points],
        n,
        workers=workers,
        progress=progress,
        keep_tables=keep_tables,
        **options,
    )
    return SweepResult(base, parameters, points, results)
