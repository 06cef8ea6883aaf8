"""Evaluating network designs: every design run on the same replications, with diagnostics.

:func:`evaluate_designs` is the one place where the optimiser turns designs into runs. A design
is a scenario whose stations come from a CSV (``network.stations.csv``); each runs the
same replication numbers, so that all designs answer the same calls (common random
numbers) and their KPIs can be compared replication by replication
(:func:`paired_interval`). Besides the KPIs it keeps, per station, what the search
needs to propose its next moves: jobs, waits for a van, late arrivals and busy hours.

It runs on :func:`sim.experiments.runs.run.run_jobs`, through the optimisation's
:class:`~sim.experiments.runs.executor.Experiment` when there is one: every run is then
kept in its result store with its call and unit tables, under the full run key, and
the diagnostics are read back from those tables, so that a search run again resumes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypedDict, Unpack

import numpy as np
import pandas as pd

from sim.analysis import paired
from sim.analysis.kpis import Interval, confidence_interval, van_busy_hours
from sim.errors import UserInputError
from sim.experiments.runs.executor import Engine, Experiment
from sim.experiments.runs.keys import scenario_digest
from sim.experiments.runs.progress import ReportFn
from sim.experiments.runs.run import Execution, ProgressFn, ReplicationResult, run_jobs
from sim.experiments.runs.store import ResultStore
from sim.model.network import Network, build_network
from sim.model.scenario import Scenario

# What the diagnostics read of a run's call table.
CALL_COLUMNS = [
    "t_call_h",
    "station",
    "dispatched_h",
    "assigned_h",
    "arrival_promise_met",
    "lat",
    "lon",
]


@dataclass
class Evaluation:
    """A design's runs: KPIs by replication, and what they show station by station.

    ``key`` names the design (its stations file's name: the start of the file's
    SHA-256). ``stations`` (one row per station of the design, in its CSV order):
    ``jobs`` dispatched to it, ``waited`` for a van, ``late`` arrivals, ``late_waited``
    (late after waiting for a van), ``busy_h`` of its vans; summed over replications
    after the warm-up, which last ``observed_h`` in all. ``late``: where each late
    arrival was (lat, lon) and whether it waited for a van.
    """

    key: str
    kpis: pd.DataFrame
    stations: pd.DataFrame
    late: pd.DataFrame
    observed_h: float

    def interval(self, kpi: str, level: float = 0.95) -> Interval:
        return confidence_interval(self.kpis[kpi].to_numpy(float), level)


def design_name(scenario: Scenario) -> str:
    """A design's name: its stations file's (named by its content), else the scenario's digest."""
    csv = scenario.network.stations.csv
    return Path(csv).stem if csv is not None else scenario_digest(scenario)[:16]


def _diagnostics(
    scenario: Scenario, network: Network, calls: pd.DataFrame, units: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    warmup_h, horizon_h = scenario.horizon.warmup_h, scenario.horizon.hours
    c = calls[calls["t_call_h"] >= warmup_h]
    station = c["station"].to_numpy()
    dispatched = ~np.isnan(c["dispatched_h"].to_numpy()) & (station >= 0)
    assigned = c["assigned_h"].to_numpy()
    waited = dispatched & (np.isnan(assigned) | (assigned > c["dispatched_h"].to_numpy() + 1e-9))
    late = c["arrival_promise_met"].eq(False).fillna(False).to_numpy(bool)
    n = network.n_stations
    at = np.where(dispatched, station, 0)

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(at[mask], minlength=n).astype(float)

    busy = van_busy_hours(units, warmup_h, horizon_h) if len(units) else np.zeros(0)
    busy = np.concatenate([busy, np.zeros(max(0, network.n_vans - len(busy)))])[: network.n_vans]
    stations = pd.DataFrame(
        {
            "jobs": count(dispatched),
            "waited": count(waited),
            "late": count(dispatched & late),
            "late_waited": count(dispatched & late & waited),
            "busy_h": np.bincount(network.van_station, weights=busy, minlength=n),
        }
    )
    late_calls = pd.DataFrame(
        {
            "lat": c["lat"].to_numpy(float)[late],
            "lon": c["lon"].to_numpy(float)[late],
            "waited": waited[late],
        }
    )
    return stations, late_calls


def evaluate_designs(
    scenarios: Sequence[Scenario],
    replications: Sequence[int],
    *,
    workers: int = 1,
    progress: ProgressFn | None = None,
    engine: Engine | None = None,
    experiment: Experiment | None = None,
) -> list[Evaluation]:
    """Run each design scenario on the given replications; KPIs and station diagnostics.

    Every scenario runs the same replication numbers, so all designs answer the same
    calls (common random numbers). The replications of every design share one pool of
    ``workers`` processes (or ``engine``, entered by the caller: a Dask cluster, say);
    the results are the same for any ``workers``. ``experiment`` (which must keep its
    tables) runs them instead: with a result store, a run found finished there (the
    same run key: scenario, the bytes of every file it names, policy, replication,
    code) is read back, not run again, so that an interrupted search resumes. A design
    asked for twice runs once.
    """
    if experiment is not None and not experiment.tables:
        raise ValueError("the diagnostics of a design need its runs' tables")
    jobs = [(scenario, r, None) for scenario in scenarios for r in replications]
    results = (
        run_jobs(jobs, workers=workers, progress=progress, engine=engine, experiment=experiment)
        if jobs
        else []
    )
    n = len(replications)
    return [_evaluation(s, results[k * n : (k + 1) * n]) for k, s in enumerate(scenarios)]


def _calls(result: ReplicationResult) -> pd.DataFrame:
    """The columns of a run's call table that the diagnostics read (from its part in the
    store, when it is there, without reading the rest)."""
    path = result.table_path("calls")
    if path is not None:
        return pd.read_parquet(path, columns=CALL_COLUMNS)
    return result.calls


def _evaluation(scenario: Scenario, results: Sequence[ReplicationResult]) -> Evaluation:
    """A design's KPIs by replication and its station diagnostics, summed over replications."""
    network = build_network(scenario)
    kpis = pd.DataFrame([{"replication": r.replication, **r.kpis} for r in results])
    parts = [_diagnostics(scenario, network, _calls(r), r.units) for r in results]
    stations = sum((p[0] for p in parts[1:]), parts[0][0])
    late = pd.concat([p[1] for p in parts], ignore_index=True)
    observed_h = (scenario.horizon.hours - scenario.horizon.warmup_h) * len(results)
    return Evaluation(design_name(scenario), kpis, stations, late, observed_h)


def paired_interval(
    candidate: Evaluation, reference: Evaluation, kpi: str, level: float = 0.95
) -> Interval:
    """``candidate - reference`` of a KPI, paired replication by replication
    (:func:`sim.analysis.paired.paired_interval`)."""
    return paired.paired_interval(candidate.kpis, reference.kpis, kpi, level)


DESIGNS_DIR = "designs"
"""The folder of the store that holds each design's stations CSV (named by its content)."""


def no_log(line: str) -> None:
    """The search's log when the caller gives none: says nothing."""


class SearchRuns(TypedDict, total=False):
    """Where and how a search runs its designs (the keyword arguments that
    :func:`~sim.experiments.design.optimise.optimise` documents)."""

    store: ResultStore | str | Path | None
    workers: int
    engine: Engine | None
    report: ReportFn | None
    description: dict[str, Any] | None


class DesignRuns(NamedTuple):
    """What a search runs its designs with: the experiment, and the folder of their
    stations files."""

    experiment: Experiment
    designs_dir: Path


@contextmanager
def design_experiment(**runs: Unpack[SearchRuns]) -> Iterator[DesignRuns]:
    """The experiment a search runs its designs in, and its designs folder: in the
    store (a temporary one when None), kept locked until the block ends."""
    workers = runs.get("workers", 1)
    if workers < 1:
        raise UserInputError("must be at least 1", field="--workers")
    with ExitStack() as stack:
        store = runs.get("store")
        if store is None:
            store = stack.enter_context(tempfile.TemporaryDirectory(prefix="rescue-sim-design-"))
        if not isinstance(store, ResultStore):
            store = ResultStore(store)
        # One pool for the whole search: its workers keep the networks they built.
        execution = Execution(
            workers,
            runs.get("engine"),
            store,
            report=runs.get("report"),
            description=runs.get("description"),
        )
        yield DesignRuns(execution.experiment(stack, tables=True), store.root / DESIGNS_DIR)


__all__ = [
    "DESIGNS_DIR",
    "DesignRuns",
    "Evaluation",
    "SearchRuns",
    "design_experiment",
    "design_name",
    "evaluate_designs",
    "no_log",
    "paired_interval",
]
