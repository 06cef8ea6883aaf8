"""Running scenarios: replications on the experiment engine, and their results.

Each replication is a pure function of (scenario, replication number, policy)
(:mod:`sim.experiments.runs.replication`), so a run gives the same rows on any engine and
any number of workers. :func:`run_all` turns several (scenario, policy) runs into one
experiment (:mod:`sim.experiments.runs.executor`): one pool of workers for them all, an
optional result store that a rerun resumes from, and replications added until a
precision is reached. Results are gathered in replication order.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sim.analysis.kpis import summarise
from sim.experiments.runs.arguments import (
    check_engine,
    check_jobs,
    check_max_replications,
    check_precision,
    check_replications,
    check_runs,
    check_scenario,
    check_store,
    check_workers,
)
from sim.experiments.runs.executor import Engine, Experiment, LocalEngine, RunOutcome, RunSpec
from sim.experiments.runs.keys import scenario_digest
from sim.experiments.runs.precision import (
    DEFAULT_MAX_REPLICATIONS,
    PrecisionCheck,
    PrecisionTarget,
    check,
    next_replications,
)
from sim.experiments.runs.progress import ProgressState, ReportFn
from sim.experiments.runs.replication import (
    PolicySpec,
    ProgressFn,
    ReplicationResult,
    calls_frame,
    policy_class,
    policy_instance,
    policy_label,
    run_replication,
)
from sim.experiments.runs.store import ResultStore, RunFailure
from sim.model.relocation import check_roster_without_moveup
from sim.model.scenario import Scenario
from sim.model.trace import read_trace

# Older names of the policy helpers, still imported by callers.
_policy_class = policy_class
_policy_instance = policy_instance
_policy_label = policy_label

__all__ = [
    "Execution",
    "PolicySpec",
    "ProgressFn",
    "ReplicationResult",
    "RunFailedError",
    "RunResult",
    "calls_frame",
    "run",
    "run_all",
    "run_jobs",
    "run_replication",
]


class _Pooled:
    """A table of the replications' with the same name, all in one frame (empty if none ran)."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, result: RunResult, owner: type | None = None) -> pd.DataFrame:
        if not result.replications:
            return pd.DataFrame()
        frames: list[pd.DataFrame] = [getattr(r, self.name) for r in result.replications]
        return pd.concat(frames, ignore_index=True)


@dataclass
class RunResult:
    """All replications of a run: per-call rows, unit rows and KPIs with intervals.

    ``failures`` lists the replications that raised (only when the run was asked not to
    raise); ``precision`` the targets checked when replications were added for precision.
    """

    scenario: Scenario
    policy: str
    replications: list[ReplicationResult] = field(default_factory=list)
    failures: list[RunFailure] = field(default_factory=list)
    precision: list[PrecisionCheck] = field(default_factory=list)

    calls = _Pooled("One row per call, all replications, with a ``replication`` column.")
    units = _Pooled(
        "One row per van state change, all replications, with a ``replication`` column."
    )
    agents = _Pooled("Agents on duty over time, all replications, with a ``replication`` column.")
    relocations = _Pooled("Move-up drives, all replications, with a ``replication`` column.")

    @property
    def kpis_by_replication(self) -> pd.DataFrame:
        rows = [{"replication": r.replication, **r.kpis} for r in self.replications]
        return pd.DataFrame(rows)

    @property
    def summary(self) -> pd.DataFrame:
        """One row per KPI: mean and 95% interval over replications."""
        return summarise(self.kpis_by_replication)


class RunFailedError(RuntimeError):
    """Runs raised; the others finished (and, with a store, were kept)."""

    def __init__(self, failures: Sequence[RunFailure]) -> None:
        self.failures = list(failures)
        first = self.failures[0]
        more = f" (and {len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
        super().__init__(f"{first.describe()}{more}\n{first.traceback}".rstrip())


def _reporter(progress: ProgressFn | None, report: ReportFn | None) -> ReportFn | None:
    if progress is None:
        return report

    def both(state: ProgressState) -> None:
        progress(state.fraction)
        if report is not None:
            report(state)

    return both


@dataclass(frozen=True)
class Execution:
    """How runs are carried out, whatever is run: on ``workers`` local processes or on an
    ``engine`` (entered by the caller; a Dask cluster, say), into an optional result
    ``store`` that a rerun resumes from, with ``progress`` (the fraction done) and
    ``report`` (a :class:`ProgressState`) following them, and the ``description`` the
    store's manifest keeps. The results depend on none of these.

    One value for every layer that hands runs on (:func:`run_all`, the points of
    calibration and sensitivity analysis, the network design's search).
    """

    workers: int = 1
    engine: Engine | None = None
    store: ResultStore | None = None
    progress: ProgressFn | None = None
    report: ReportFn | None = None
    description: dict[str, Any] | None = None

    def experiment(self, stack: ExitStack, *, tables: bool) -> Experiment:
        """An experiment on these settings for as long as ``stack`` is open: ``workers``
        local processes entered there when no engine is given, the store locked there."""
        engine = self.engine
        if engine is None:
            engine = stack.enter_context(LocalEngine(self.workers))
        if self.store is not None:
            stack.enter_context(self.store.locked())
        return Experiment(
            engine,
            self.store,
            tables=tables,
            report=_reporter(self.progress, self.report),
            description=self.description,
        )

    def run_all(
        self,
        runs: Sequence[tuple[Scenario, PolicySpec]],
        replications: int,
        *,
        keep_tables: bool = True,
        precision: Sequence[PrecisionTarget] = (),
        max_replications: int = DEFAULT_MAX_REPLICATIONS,
        raise_on_failure: bool = True,
    ) -> list[RunResult]:
        """:func:`run_all` carried out this way."""
        replications = check_replications(replications)
        check_workers(self.workers)
        runs = check_runs(runs)
        precision = check_precision(precision)
        max_replications = check_max_replications(max_replications, replications, precision)
        for scenario, policy in runs:
            # Fail fast, before any work.
            check_roster_without_moveup(scenario.roster is not None, policy_class(scenario, policy))
            if scenario.demand.trace is not None:
                read_trace(scenario)  # every row checked here, not in a worker
        digests = [scenario_digest(scenario) for scenario, _ in runs]
        point_of: dict[str, int] = {}
        points = [point_of.setdefault(digest, len(point_of)) for digest in digests]
        outcomes: list[list[RunOutcome]] = [[] for _ in runs]
        with ExitStack() as stack:
            experiment = self.experiment(stack, tables=keep_tables)
            wanted = dict.fromkeys(points, replications)
            done = dict.fromkeys(points, 0)
            while True:
                specs: list[RunSpec] = []
                owners: list[int] = []
                for k, (scenario, policy) in enumerate(runs):
                    point = points[k]
                    for replication in range(done[point], wanted[point]):
                        specs.append(RunSpec(scenario, policy, replication, point))
                        owners.append(k)
                for k, outcome in zip(owners, experiment.execute(specs), strict=True):
                    outcomes[k].append(outcome)
                done = dict(wanted)
                if not precision or not _add_for_precision(
                    wanted, points, outcomes, precision, max_replications
                ):
                    break
        results = [
            _result(scenario, policy, outcomes[k], precision)
            for k, (scenario, policy) in enumerate(runs)
        ]
        if raise_on_failure:
            _raise_first([o for run_outcomes in outcomes for o in run_outcomes if not o.ok])
        return results


def run_all(
    runs: Sequence[tuple[Scenario, PolicySpec]],
    replications: int,
    *,
    workers: int = 1,
    progress: ProgressFn | None = None,
    keep_tables: bool = True,
    engine: Engine | str | None = None,
    store: ResultStore | str | Path | None = None,
    report: ReportFn | None = None,
    precision: Sequence[PrecisionTarget] = (),
    max_replications: int = DEFAULT_MAX_REPLICATIONS,
    raise_on_failure: bool = True,
    description: dict[str, Any] | None = None,
) -> list[RunResult]:
    """Several runs, each a (scenario, policy) of ``replications``, in one experiment.

    Runs with equal scenarios form a point: they share replication numbers, so their
    replication r answers the same calls. Every policy is checked before any work.
    The results are the same for any ``workers`` and ``engine`` (default: local
    processes, ``workers`` of them).

    ``store`` (a :class:`ResultStore` or its folder) keeps every finished run, with its
    tables when ``keep_tables``; runs found finished there are not run again, and the
    results' tables are read from it when asked for. With ``precision`` targets, each
    point gets more replications in batches until each target's 95% half-width is met
    at every policy of the point, or ``max_replications`` are reached. A run that
    raises does not stop the others; then, with ``raise_on_failure``, the first
    failure is raised once all have ended (the original exception when it happened in
    this process, else :class:`RunFailedError`), otherwise the failures are listed in
    each result's ``failures``. The same as :meth:`Execution.run_all`.
    """
    with ExitStack() as stack:
        made = check_engine(engine, workers)
        if made is not None and made is not engine:  # made from its name: entered here
            stack.enter_context(made)
        execution = Execution(workers, made, check_store(store), progress, report, description)
        return execution.run_all(
            runs,
            replications,
            keep_tables=keep_tables,
            precision=precision,
            max_replications=max_replications,
            raise_on_failure=raise_on_failure,
        )


def _raise_first(failed: Sequence[RunOutcome]) -> None:
    """The first failure, once all runs have ended: the original exception when it
    happened in this process, else :class:`RunFailedError` listing them all."""
    if failed:
        if failed[0].exception is not None:
            raise failed[0].exception
        raise RunFailedError([o.failure for o in failed if o.failure is not None])


def _add_for_precision(
    wanted: dict[int, int],
    points: list[int],
    outcomes: list[list[RunOutcome]],
    targets: Sequence[PrecisionTarget],
    cap: int,
) -> bool:
    """Raise each point's wanted replications where a target is not met; whether any rose."""
    grew = False
    for point, n in wanted.items():
        at_point = [outcomes[k] for k, p in enumerate(points) if p == point]
        if any(not o.ok for run_outcomes in at_point for o in run_outcomes):
            continue  # a failing point is reported, not run further
        checks = [
            check(target, [o.kpis[target.kpi] for o in run_outcomes if o.kpis is not None])
            for run_outcomes in at_point
            for target in targets
        ]
        more = next_replications(n, checks, cap)
        if more > n:
            wanted[point] = more
            grew = True
    return grew


def _result(
    scenario: Scenario,
    policy: PolicySpec,
    outcomes: list[RunOutcome],
    targets: Sequence[PrecisionTarget],
) -> RunResult:
    ok = sorted((o for o in outcomes if o.ok), key=lambda o: o.spec.replication)
    replications = [o.replication_result() for o in ok]
    checks = [check(target, [r.kpis[target.kpi] for r in replications]) for target in targets]
    return RunResult(
        scenario,
        policy_label(scenario, policy),
        replications,
        [o.failure for o in outcomes if o.failure is not None],
        checks,
    )


def run(
    scenario: Scenario,
    *,
    replications: int | None = None,
    policy: PolicySpec = None,
    workers: int = 1,
    progress: ProgressFn | None = None,
    **options: Any,
) -> RunResult:
    """Run every replication of a scenario; results are the same for any ``workers``.

    Each replication gets a fresh policy object. A policy class passed directly must be
    importable by worker processes when ``workers`` > 1. ``options`` are those of
    :func:`run_all` (``engine``, ``store``, ``keep_tables``, ``precision``...).
    """
    scenario = check_scenario(scenario)
    n = replications if replications is not None else scenario.replications
    (result,) = run_all([(scenario, policy)], n, workers=workers, progress=progress, **options)
    return result


Job = tuple[Scenario, int, PolicySpec]
"""One replication to run: (scenario, replication number, policy)."""


def run_jobs(
    jobs: Sequence[Job],
    *,
    workers: int = 1,
    progress: ProgressFn | None = None,
    keep_tables: bool = True,
    engine: Engine | str | None = None,
    experiment: Experiment | None = None,
) -> list[ReplicationResult]:
    """Replications named one by one; results in the order of ``jobs``.

    For callers whose replication numbers are not simply 0..n-1 (the network design's
    probe and candidate designs). A replication is a pure function of its job, so the
    results are the same for any ``workers``; the first failure is raised once all
    have ended, as :func:`run_all` does. ``engine`` (entered by the caller, who keeps it
    for further calls, so that its workers keep their networks) defaults to ``workers``
    local processes for this call alone.

    ``experiment`` (kept by the caller for several calls) runs them instead, on its
    engine, into its result store (locked by the caller) and with its tables and
    progress: runs found finished in the store are read back, not run again, and the
    store's manifest lists the runs of every call.
    """
    workers = check_workers(workers)
    specs = [RunSpec(s, policy, replication) for s, replication, policy in check_jobs(jobs)]
    with ExitStack() as stack:
        made = check_engine(engine, workers)
        if made is not None and made is not engine:  # made from its name: entered here
            stack.enter_context(made)
        if experiment is None:
            execution = Execution(workers, made, progress=progress)
            experiment = execution.experiment(stack, tables=keep_tables)
        outcomes = experiment.execute(specs)
    _raise_first([o for o in outcomes if not o.ok])
    return [o.replication_result() for o in outcomes]
