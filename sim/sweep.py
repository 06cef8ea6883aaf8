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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from sim.errors import UserInputError
from sim.kpis import summarise
from sim.network import build_network
from sim.run import Job, PolicySpec, ProgressFn, RunResult, _policy_class, _policy_label, run_jobs
from sim.scenario import Scenario


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


def grid(base: Scenario, parameters: Sequence[Parameter]) -> list[SweepPoint]:
    """Every combination of the parameters' values, the first parameter varying slowest.

    Each point's scenario is validated and its network built here, before any work: a
    path the scenario does not have, a value its field refuses or a network it cannot
    build raises :class:`UserInputError` naming ``--vary PATH=VALUE`` and the field.
    """
    if not parameters:
        raise UserInputError("name at least one parameter to vary", field="--vary")
    paths = [p.path for p in parameters]
    if len(set(paths)) != len(paths):
        raise UserInputError("a path is varied twice", field="--vary")
    points = []
    for combination in itertools.product(*(p.values for p in parameters)):
        values = dict(zip(paths, combination, strict=True))
        try:
            scenario = base.with_fields(values)
            build_network(scenario)
        except UserInputError as exc:
            given = ", ".join(f"{path}={value}" for path, value in values.items())
            raise UserInputError(exc.message, field=f"--vary {given}: {exc.field}") from None
        points.append(SweepPoint(values, scenario))
    return points


@dataclass
class SweepResult:
    """The runs of every point of a sweep, in grid order."""

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
        frames = []
        for k, (point, result) in enumerate(zip(self.points, self.results, strict=True)):
            frame = result.kpis_by_replication
            for column, value in reversed([("point", k), *point.values.items()]):
                frame.insert(0, column, [value] * len(frame))
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    @property
    def summary(self) -> pd.DataFrame:
        """One row per (point, KPI): ``point``, each swept path, ``kpi``, mean, low, high, n."""
        frames = []
        for k, (point, result) in enumerate(zip(self.points, self.results, strict=True)):
            frame = summarise(result.kpis_by_replication).reset_index()
            for column, value in reversed([("point", k), *point.values.items()]):
                frame.insert(0, column, [value] * len(frame))
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)


def sweep(
    base: Scenario,
    parameters: Sequence[Parameter],
    *,
    replications: int | None = None,
    policy: PolicySpec = None,
    workers: int = 1,
    progress: ProgressFn | None = None,
) -> SweepResult:
    """Run the base scenario at every point of the parameters' grid.

    All (point, replication) runs share one pool of ``workers`` processes; the results
    are the same for any ``workers``. ``policy`` overrides each point's own (which is
    the base scenario's unless ``dispatch.policy`` is swept).
    """
    points = grid(base, parameters)
    n = replications if replications is not None else base.replications
    for point in points:
        _policy_class(point.scenario, policy)  # fail fast, before any work
    jobs: list[Job] = [(point.scenario, r, policy) for point in points for r in range(n)]
    done = run_jobs(jobs, workers=workers, progress=progress)
    results = []
    for k, point in enumerate(points):
        result = RunResult(point.scenario, _policy_label(point.scenario, policy))
        result.replications = done[k * n : (k + 1) * n]
        results.append(result)
    return SweepResult(base, list(parameters), points, results)
