"""One replication: build, run and collect a scenario under a policy, and what it returns.

A replication is a pure function of (scenario, replication number, policy): its random
numbers come from the scenario's seed and the replication number only (named streams,
:mod:`sim.model.streams`), so it gives the same rows whichever process runs it, first
or last, alone or beside others.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.costs import cost_kpis
from sim.analysis.kpis import (
    KpiSettings,
    agent_utilisation,
    call_kpis,
    promise_outcomes,
    relocation_kpis,
    van_utilisation,
)
from sim.analysis.rosters import roster_kpis
from sim.model.complaints import add_complaints
from sim.model.demand import CallStream, draw_call_stream
from sim.model.dispatch import DispatchPolicy, resolve_policy
from sim.model.dispatch.failures import creation_failure, policy_failure
from sim.model.network import Network, build_network
from sim.model.records import FINAL_STATES, RelocationLog
from sim.model.scenario import Scenario
from sim.model.simulation import Model
from sim.model.streams import named_rng
from sim.model.trace import trace_columns

ProgressFn = Callable[[float], None]
"""Called with the fraction of the work done, between 0 and 1."""

PolicySpec = str | type[DispatchPolicy] | None
"""A registered name, ``module:Class``, a policy class, or None for the scenario's own."""

Table = pd.DataFrame | Path
"""A table in memory, or the Parquet file of a result store that holds it."""


def no_agents() -> pd.DataFrame:
    """An empty agents-on-duty table, with its columns and dtypes."""
    return pd.DataFrame(
        {
            "replication": np.zeros(0, np.int64),
            "t_h": np.zeros(0),
            "agents_on_duty": np.zeros(0, np.int64),
        }
    )


def no_relocations() -> pd.DataFrame:
    """An empty relocation table, with its columns and dtypes."""
    frame = RelocationLog().to_frame()
    frame.insert(0, "replication", np.zeros(0, np.int64))
    return frame


class _Held:
    """A table held in memory, or read from its Parquet part each time it is asked for."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.attribute = "_" + name

    def __get__(self, result: ReplicationResult, owner: type | None = None) -> pd.DataFrame:
        return _frame(getattr(result, self.attribute))


class ReplicationResult:
    """The KPIs of one replication, and its call, unit and agents tables.

    A table is held in memory, or left in a result store and read from its Parquet
    part each time it is asked for (so that a run of many replications never holds
    them all): :meth:`table_path` says which.

    ``agents``: the hotline's agents on duty over time (``replication``, ``t_h``,
    ``agents_on_duty``: that many from ``t_h`` until the next row), shift changes and
    surges' extra agents included.

    ``relocations``: one row per van sent to a new base by the policy's move-up
    (``replication``, ``t_h``, ``van``, ``from_station``, ``to_station``, ``road_km``,
    ``after_call``: the call whose job it had just finished, -1 for a move at a review);
    empty without move-up. Always held in memory (a few rows a day), also without the
    other tables; a run resumed from a result store has it empty (its KPIs are kept).
    """

    def __init__(
        self,
        replication: int,
        calls: Table,
        units: Table,
        kpis: dict[str, float],
        hotline_queue_area_h: float,
        agents: Table | None = None,
        relocations: pd.DataFrame | None = None,
    ) -> None:
        self.replication = replication
        self.relocations = no_relocations() if relocations is None else relocations
        self._calls = calls
        self._units = units
        self._agents: Table = no_agents() if agents is None else agents
        self.kpis = kpis
        self.hotline_queue_area_h = hotline_queue_area_h

    calls = _Held("One row per call of this replication.")
    units = _Held("One row per van state change of this replication.")
    agents = _Held("The hotline's agents on duty over time in this replication.")

    def table_path(self, kind: str) -> Path | None:
        """The Parquet part holding table ``kind`` (calls, units or agents), or None if in
        memory."""
        table = {"calls": self._calls, "units": self._units, "agents": self._agents}[kind]
        return table if isinstance(table, Path) else None

    def without_tables(self) -> ReplicationResult:
        """The same KPIs, with empty call and unit tables (the same columns when in memory)."""
        # Copies, so that no view keeps the full tables' memory alive.
        return ReplicationResult(
            self.replication,
            _empty(self._calls),
            _empty(self._units),
            self.kpis,
            self.hotline_queue_area_h,
            _empty(self._agents),
            self.relocations,
        )

    def __repr__(self) -> str:
        return f"ReplicationResult(replication={self.replication}, kpis={len(self.kpis)})"


def _frame(table: Table) -> pd.DataFrame:
    return pd.read_parquet(table) if isinstance(table, Path) else table


def _empty(table: Table) -> pd.DataFrame:
    return table.iloc[:0].copy() if isinstance(table, pd.DataFrame) else pd.DataFrame()


def policy_class(scenario: Scenario, policy: PolicySpec) -> type[DispatchPolicy]:
    """The class of ``policy``, or of the scenario's own policy when None."""
    if isinstance(policy, type):
        return policy
    return resolve_policy(policy or scenario.dispatch.policy)


def uses_scenario_options(scenario: Scenario, policy: PolicySpec) -> bool:
    """Whether the policy is the scenario's own, and so takes its ``dispatch.options``."""
    return policy is None or policy == scenario.dispatch.policy


def policy_instance(scenario: Scenario, policy: PolicySpec | DispatchPolicy) -> DispatchPolicy:
    """A fresh policy object for one replication (policies keep queues: never share one)."""
    if isinstance(policy, DispatchPolicy):
        return policy
    cls = policy_class(scenario, policy)
    options = scenario.dispatch.options if uses_scenario_options(scenario, policy) else {}
    try:
        return cls(**options)
    except Exception as exc:  # a planner's class: its own mistake, named as such
        raise creation_failure(policy_label(scenario, policy), options, exc) from exc


def policy_label(scenario: Scenario, policy: PolicySpec) -> str:
    """The name a policy is reported under."""
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
    columns.update(trace_columns(scenario, stream.trace_row, stream.t_call_h))
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
    dispatcher = policy_instance(scenario, policy)
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
    relocations = model.relocations.to_frame()
    relocations.insert(0, "replication", np.full(len(relocations), replication, np.int64))
    warmup_h, horizon_h = scenario.horizon.warmup_h, scenario.horizon.hours
    kpis = call_kpis(calls, KpiSettings.of(scenario))
    kpis["van_utilisation"] = van_utilisation(units, warmup_h, horizon_h)
    kpis["agent_utilisation"] = agent_utilisation(calls, agents, warmup_h, horizon_h)
    kpis.update(relocation_kpis(relocations, warmup_h, horizon_h))
    kpis.update(
        cost_kpis(
            scenario.cost,
            n_vans=network.n_vans,
            n_stations=network.n_stations,
            workshop_bays=int(network.workshop_bays.sum()),
            calls=calls,
            agents=agents,
            relocation_km_per_day=kpis["relocation_km_per_day"],
            contractor_cost_cny_per_day=kpis["contractor_cost_cny_per_day"],
            warmup_h=warmup_h,
            horizon_h=horizon_h,
        )
    )
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
        replication,
        calls,
        units,
        kpis,
        model.hotline.queue_area_h,
        agents=agents,
        relocations=relocations,
    )
