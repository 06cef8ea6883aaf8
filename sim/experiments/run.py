"""Running a scenario: replications (serial or in worker processes) and their results.

Each replication is a pure function of (scenario, replication number, policy): it builds
the network, draws its call stream and runs the model, so a replication gives the same
rows whichever process runs it. Results are gathered in replication order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.kpis import (
    agent_utilisation,
    call_kpis,
    promise_outcomes,
    summarise,
    van_utilisation,
)
from sim.analysis.rosters import roster_kpis
from sim.experiments.arguments import (
    check_policy,
    check_replications,
    check_scenario,
    check_workers,
)
from sim.experiments.workers import map_in_workers
from sim.model.complaints import add_complaints
from sim.model.demand import CallStream, draw_call_stream
from sim.model.dispatch import DispatchPolicy, resolve_policy
from sim.model.dispatch.failures import creation_failure, policy_failure
from sim.model.network import Network, build_network
from sim.model.records import FINAL_STATES
from sim.model.scenario import Scenario
from sim.model.simulation import Model
from sim.model.streams import named_rng

ProgressFn = Callable[[float], None]
"""Called with the fraction of the work done, between 0 and 1."""


def _no_agents() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "replication": np.zeros(0, np.int64),
            "t_h": np.zeros(0),
            "agents_on_duty": np.zeros(0, np.int64),
        }
    )


@dataclass
class ReplicationResult:
    """The tables and KPIs of one replication.

    ``agents``: the hotline's agents on duty over time (``replication``, ``t_h``,
    ``agents_on_duty``: that many from ``t_h`` until the next row), shift changes and
    surges' extra agents included.
    """

    replication: int
    calls: pd.DataFrame
    units: pd.DataFrame
    kpis: dict[str, float]
    hotline_queue_area_h: float
    agents: pd.DataFrame = field(default_factory=_no_agents)


@dataclass
class RunResult:
    """All replications of a run: per-call rows, unit rows and KPIs with intervals."""

    scenario: Scenario
    policy: str
    replications: list[ReplicationResult] = field(default_factory=list)

    @property
    def calls(self) -> pd.DataFrame:
        """One row per call, all replications, with a ``replication`` column."""
        return pd.concat([r.calls for r in self.replications], ignore_index=True)

    @property
    def units(self) -> pd.DataFrame:
        return pd.concat([r.units for r in self.replications], ignore_index=True)

    @property
    def agents(self) -> pd.DataFrame:
        """Agents on duty over time, all replications, with a ``replication`` column."""
        return pd.concat([r.agents for r in self.replications], ignore_index=True)

    @property
    def kpis_by_replication(self) -> pd.DataFrame:
        rows = [{"replication": r.replication, **r.kpis} for r in self.replications]
        return pd.DataFrame(rows)

    @property
    def summary(self) -> pd.DataFrame:
        """One row per KPI: mean and 95% interval over replications."""
        return summarise(self.kpis_by_replication)


PolicySpec = str | type[DispatchPolicy] | None
"""A registered name, ``module:Class``, a policy class, or None for the scenario's own."""


def _policy_class(scenario: Scenario, policy: PolicySpec) -> type[DispatchPolicy]:
    if isinstance(policy, type):
        return policy
    return resolve_policy(policy or scenario.dispatch.policy)


def _policy_instance(scenario: Scenario, policy: PolicySpec | DispatchPolicy) -> DispatchPolicy:
    """A fresh policy object for one replication (policies keep queues: never share one)."""
    if isinstance(policy, DispatchPolicy):
        return policy
    cls = _policy_class(scenario, policy)
    uses_scenario_policy = policy is None or policy == scenario.dispatch.policy
    options = scenario.dispatch.options if uses_scenario_policy else {}
    try:
        return cls(**options)
    except Exception as exc:  # a planner's class: its own mistake, named as such
        raise creation_failure(_policy_label(scenario, policy), options, exc) from exc


def _policy_label(scenario: Scenario, policy: PolicySpec) -> str:
    if isinstance(policy, type):
        return policy.name or policy.__name__
    return policy or scenario.dispatch.policy


def calls_frame(model: Model, stream: CallStream, replication: int) -> pd.DataFrame:
    """The per-call table of a finished model, with names instead of codes."""
    scenario = model.scenario
    network = model.network
    rec = model.finalize()
    columns: dict[str, Any] = {
        "replication": np.full(len(stream), replication, dtype=np.int64),
        "call_id": np.arange(len(stream), dtype=np.int64),
        "t_call_h": stream.t_call_h,
        "lat": stream.lat,
        "lon": stream.lon,
        "prefecture": pd.Categorical(network.areas["name"].to_numpy()[stream.area]),
        "adcode": network.areas["adcode"].to_numpy()[stream.area],
        "segment": pd.Categorical.from_codes(
            stream.segment, pd.Index([s.name for s in scenario.demand.segments])
        ),
        "fault": pd.Categorical.from_codes(
            stream.fault, pd.Index([f.name for f in scenario.demand.fault_classes])
        ),
        "surge": stream.surge,
    }
    columns.update(rec.columns())
    columns["final_state"] = pd.Categorical.from_codes(rec.final_state, pd.Index(FINAL_STATES))
    calls = pd.DataFrame(columns)
    # Drawn here from its own named stream: it only matters once the run is over.
    resolution_h = scenario.complaints.resolution_delay_h.sample(
        named_rng(scenario.seed, "complaint_resolution", replication), len(stream)
    )
    add_complaints(calls, scenario, stream.complaint_u, stream.complaint_work_h, resolution_h)
    outcomes = promise_outcomes(
        calls,
        horizon_h=scenario.horizon.hours,
        contact_promise_h=scenario.promises.contact_min / 60.0,
    )
    for name in outcomes.columns:
        calls[name] = outcomes[name]
    return calls


def run_replication(
    scenario: Scenario,
    replication: int = 0,
    policy: PolicySpec | DispatchPolicy = None,
    *,
    network: Network | None = None,
    stream: CallStream | None = None,
    progress: ProgressFn | None = None,
) -> ReplicationResult:
    """Build, run and collect one replication."""
    network = network or build_network(scenario)
    stream = stream if stream is not None else draw_call_stream(scenario, network, replication)
    dispatcher = _policy_instance(scenario, policy)
    try:
        model = Model(scenario, network, stream, dispatcher)
        if progress is None:
            model.run()
        else:
            horizon = scenario.horizon.hours
            model.start()
            day = 24.0
            while model.env.now < horizon:
                model.advance(min(horizon, model.env.now + day))
                progress(model.env.now / horizon)
    except Exception as exc:
        label = policy if isinstance(policy, str) else scenario.dispatch.policy
        if policy is not None and not isinstance(policy, str):  # a class or an object
            cls = policy if isinstance(policy, type) else type(policy)
            label = f"{cls.__module__}:{cls.__qualname__}"
        failure = policy_failure(exc, dispatcher, label, replication)
        if failure is None:
            raise
        raise failure from exc
    calls = calls_frame(model, stream, replication)
    units = model.unit_log.to_frame()
    units.insert(0, "replication", replication)
    agents = model.hotline.agents.to_frame()
    agents.insert(0, "replication", replication)
    warmup_h, horizon_h = scenario.horizon.warmup_h, scenario.horizon.hours
    kpis = call_kpis(
        calls,
        warmup_h=warmup_h,
        horizon_h=horizon_h,
        contact_promise_h=scenario.promises.contact_min / 60.0,
        service_level_s=scenario.hotline.service_level_s,
        contractor_cost_cny=scenario.contractors.cost_per_job_cny,
    )
    kpis["van_utilisation"] = van_utilisation(units, warmup_h, horizon_h)
    kpis["agent_utilisation"] = agent_utilisation(calls, agents, warmup_h, horizon_h)
    if model.roster is not None:
        rest = scenario.roster.rest if scenario.roster is not None else None
        kpis.update(
            roster_kpis(
                units,
                model.roster.intervals,
                rest.max_working_h if rest is not None else None,
                warmup_h=warmup_h,
                horizon_h=horizon_h,
            )
        )
    return ReplicationResult(
        replication, calls, units, kpis, model.hotline.queue_area_h, agents=agents
    )


def _without_tables(result: ReplicationResult) -> ReplicationResult:
    """The KPIs of a replication, with empty call and unit tables (same columns)."""
    # Copies, so that no view keeps the full tables' memory alive.
    return replace(
        result,
        calls=result.calls.iloc[:0].copy(),
        units=result.units.iloc[:0].copy(),
        agents=result.agents.iloc[:0].copy(),
    )


def _worker(args: tuple[str, int, PolicySpec, bool]) -> ReplicationResult:
    scenario_json, replication, policy, keep_tables = args
    scenario = Scenario.model_validate_json(scenario_json)
    result = run_replication(scenario, replication, policy)
    return result if keep_tables else _without_tables(result)


Job = tuple[Scenario, int, PolicySpec]
"""One replication to run: (scenario, replication number, policy)."""


def run_jobs(
    jobs: list[Job],
    *,
    workers: int = 1,
    progress: ProgressFn | None = None,
    keep_tables: bool = True,
) -> list[ReplicationResult]:
    """Run replications, serially or in ``workers`` processes; results in the order of ``jobs``.

    A replication is a pure function of its job, so the results are the same for any
    ``workers``. Serially, a scenario's network is built once for all of its jobs.
    Without ``keep_tables`` only the KPIs are kept: the call and unit tables are empty
    (and never sent back from a worker).
    """
    n = len(jobs)
    workers = max(1, min(workers, n, os.cpu_count() or 1))
    results: list[ReplicationResult] = []
    if workers == 1:
        networks: dict[int, Network] = {}
        for k, (scenario, replication, policy) in enumerate(jobs):

            def step(fraction: float, k: int = k) -> None:
                if progress is not None:
                    progress((k + fraction) / n)

            network = networks.get(id(scenario))
            if network is None:
                network = networks[id(scenario)] = build_network(scenario)
            result = run_replication(scenario, replication, policy, network=network, progress=step)
            results.append(result if keep_tables else _without_tables(result))
        return results
    payloads: dict[int, str] = {}
    for scenario, _, _ in jobs:
        if id(scenario) not in payloads:
            payloads[id(scenario)] = scenario.model_dump_json(by_alias=True)
    tasks = [(payloads[id(scenario)], r, policy, keep_tables) for scenario, r, policy in jobs]
    # A policy class from the caller's script needs that script in the workers.
    needs_main = any(
        isinstance(policy, type) and policy.__module__ == "__main__" for _, _, policy in jobs
    )
    for done, rep in enumerate(
        map_in_workers(_worker, tasks, workers, needs_main=needs_main), start=1
    ):
        results.append(rep)
        if progress is not None:
            progress(done / n)
    return results


def run_all(
    runs: Sequence[tuple[Scenario, PolicySpec]],
    replications: int,
    *,
    workers: int = 1,
    progress: ProgressFn | None = None,
    keep_tables: bool = True,
) -> list[RunResult]:
    """Several runs, each a (scenario, policy) of ``replications``; one pool for them all.

    Every argument and policy is checked before any work (a bad one raises
    :class:`~sim.errors.UserInputError`). The results are the same for any ``workers``.
    """
    replications = check_replications(replications)
    workers = check_workers(workers)
    for scenario, policy in runs:
        check_scenario(scenario)
        check_policy(policy)
        _policy_class(scenario, policy)  # fail fast, before any work
    jobs: list[Job] = [
        (scenario, r, policy) for scenario, policy in runs for r in range(replications)
    ]
    done = run_jobs(jobs, workers=workers, progress=progress, keep_tables=keep_tables)
    return [
        RunResult(
            scenario,
            _policy_label(scenario, policy),
            done[k * replications : (k + 1) * replications],
        )
        for k, (scenario, policy) in enumerate(runs)
    ]


def run(
    scenario: Scenario,
    *,
    replications: int | None = None,
    policy: PolicySpec = None,
    workers: int = 1,
    progress: ProgressFn | None = None,
) -> RunResult:
    """Run every replication of a scenario; results are the same for any ``workers``.

    Each replication gets a fresh policy object. A policy class passed directly must be
    importable by worker processes when ``workers`` > 1.
    """
    scenario = check_scenario(scenario)
    n = replications if replications is not None else scenario.replications
    (result,) = run_all([(scenario, policy)], n, workers=workers, progress=progress)
    return result
