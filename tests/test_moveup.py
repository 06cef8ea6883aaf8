"""Move-up: the policy hooks, the relocating state, the relocation table and KPIs, the
built-in move-up policies and their checks.

The bench comparison with the published rule (a paired interval, pinned as a baseline)
is in tests/test_policy_baselines.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse

from sim import load_scenario
from sim.errors import PolicyFailure
from sim.experiments.runs.run import ReplicationResult, run, run_replication
from sim.model.dispatch import DispatchView, Van
from sim.model.dispatch.moveup import ComplianceTable, DynamicMexclp, greedy_mexclp_order
from sim.model.dispatch.policies import NearestIdleVan
from sim.model.geo import great_circle_km
from sim.model.network import build_network
from sim.model.scenario import Scenario
from sim.model.travel import TravelModel
from sim.outputs.run_folder import read_relocations, write_run

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "scenarios" / "moveup_bench.yaml"
CITY, EAST_TOWN = 1, 3  # the bench's two busy stations (scenarios/data/moveup_stations.csv)


def _bench(days: float = 3.0, review_interval_h: float | None = None) -> Scenario:
    scenario = load_scenario(BENCH)
    return scenario.with_overrides(
        horizon={"days": days, "warmup_days": 1 if days > 1 else 0},
        dispatch={"policy": "nearest_idle_van", "review_interval_h": review_interval_h},
    )


class SendToCity(NearestIdleVan):
    """Every van free after a job goes to the city station."""

    name = "send_to_city"

    def on_van_idle(self, view: DispatchView, van: Van) -> int | None:
        return CITY


class GatherAtWest(NearestIdleVan):
    """At each review, every idle van elsewhere moves to station 0."""

    name = "gather_at_west"

    def rebalance(self, view: DispatchView) -> list[tuple[Van, int]]:
        return [(van, 0) for idle in view.idle_at[1:] for van in idle]


def _states(result: ReplicationResult) -> list[str]:
    return result.units["state"].astype(str).tolist()


def test_a_policy_without_hooks_moves_nothing() -> None:
    result = run_replication(_bench(review_interval_h=1.0), 0, "nearest_idle_van")
    assert "relocating" not in _states(result)
    assert result.relocations.empty
    assert list(result.relocations.columns) == [
        "replication",
        "t_h",
        "van",
        "from_station",
        "to_station",
        "road_km",
        "after_call",
    ]
    assert result.kpis["relocations_per_day"] == 0.0
    assert result.kpis["relocation_km_per_day"] == 0.0


def test_a_van_free_after_a_job_is_rebased_where_on_van_idle_says() -> None:
    scenario = _bench()
    result = run_replication(scenario, 0, SendToCity)
    moves = result.relocations
    assert len(moves) > 5
    assert (moves["to_station"] == CITY).all() and (moves["from_station"] != CITY).all()
    assert (moves["after_call"] >= 0).all()
    # The relocating rows of the unit log are the moves, at the moment the job ended.
    units = result.units
    relocating = units[units["state"].astype(str) == "relocating"]
    assert (
        relocating[["t_h", "van"]].to_numpy().tolist() == moves[["t_h", "van"]].to_numpy().tolist()
    )
    calls = result.calls.set_index("call_id")
    job = calls.loc[moves["after_call"].to_numpy()]
    assert np.array_equal(job["van_released_h"].to_numpy(), moves["t_h"].to_numpy())
    assert np.array_equal(job["van"].to_numpy(), moves["van"].to_numpy())
    # Road km from the site to the city station, by the model's own rule.
    network = build_network(scenario)
    travel = TravelModel(scenario.travel)
    first = moves.iloc[0]
    site = calls.loc[int(first["after_call"])]
    gc = great_circle_km(
        float(site["lat"]),
        float(site["lon"]),
        float(network.station_lat[CITY]),
        float(network.station_lon[CITY]),
    )
    assert first["road_km"] == travel.road_km(gc)
    # A van based in the city is not moved again: each van moves at most once.
    assert moves["van"].is_unique
    days = scenario.horizon.days - scenario.horizon.warmup_days
    counted = moves[moves["t_h"] >= scenario.horizon.warmup_h]
    assert 0 < len(counted) < len(moves)  # some moves in the warm-up, not counted
    assert result.kpis["relocations_per_day"] == pytest.approx(len(counted) / days)
    assert result.kpis["relocation_km_per_day"] == pytest.approx(counted["road_km"].sum() / days)


def test_rebalance_runs_at_each_review_and_only_then() -> None:
    result = run_replication(_bench(review_interval_h=3.0), 0, GatherAtWest)
    moves = result.relocations
    assert len(moves) > 0
    assert (moves["after_call"] == -1).all() and (moves["to_station"] == 0).all()
    assert np.allclose(moves["t_h"] % 3.0, 0.0)
    # No review interval in the scenario: rebalance is never called.
    assert run_replication(_bench(), 0, GatherAtWest).relocations.empty


class SendNowhere(NearestIdleVan):
    name = "send_nowhere"

    def on_van_idle(self, view: DispatchView, van: Van) -> int | None:
        return 99


class MoveBusyVans(NearestIdleVan):
    name = "move_busy_vans"

    def rebalance(self, view: DispatchView) -> list[tuple[Van, int]]:
        busy = [van for van in view.vans if van.state != 0]
        return [(busy[0], 0)] if busy else []


@pytest.mark.parametrize(
    ("policy", "review", "message"),
    [
        (SendNowhere, None, re.escape("SendNowhere.on_van_idle() sent van")),
        (MoveBusyVans, 0.5, "which is not idle at its station"),
    ],
)
def test_a_bad_move_is_one_policy_error(policy: Any, review: float | None, message: str) -> None:
    with pytest.raises(PolicyFailure, match=message):
        run_replication(_bench(review_interval_h=review), 0, policy)


def test_greedy_mexclp_places_vans_by_expected_coverage() -> None:
    # Two stations covering only themselves; demand 1 and 0.5; busy fraction 0.5.
    cover = scipy.sparse.csr_array(np.eye(2))
    order = greedy_mexclp_order(cover, np.array([1.0, 0.5]), 0.5, 4)
    # Gains: 1 | 0.5 (ties to the lower number) | 0.25 vs 0.5 | 0.25 vs 0.25.
    assert order == [0, 0, 1, 0]


def test_move_up_options_are_checked() -> None:
    with pytest.raises(ValueError, match="row 2 lists 1 stations"):
        ComplianceTable(table=[[0], [0]])
    with pytest.raises(ValueError, match="busy_fraction"):
        DynamicMexclp(busy_fraction=1.0)
    with pytest.raises(PolicyFailure, match="names stations"):
        run_replication(_bench(days=0.5), 0, ComplianceTable(table=[[7]]))


@pytest.mark.parametrize("policy", ["compliance_table", "dynamic_mexclp"])
def test_built_in_move_up_sends_vans_toward_the_calls(policy: str) -> None:
    result = run_replication(_bench(days=3.0, review_interval_h=2.0), 0, policy)
    moves = result.relocations
    into_busy = moves["to_station"].isin([CITY, EAST_TOWN]).sum()
    out_of_busy = moves["from_station"].isin([CITY, EAST_TOWN]).sum()
    assert into_busy > out_of_busy, moves


def test_a_given_compliance_table_is_followed() -> None:
    # With one to eight vans available, all belong at the city station.
    table = [[CITY] * n for n in range(1, 9)]
    result = run_replication(_bench(review_interval_h=1.0), 0, ComplianceTable(table=table))
    moves = result.relocations
    assert len(moves) > 0 and (moves["to_station"] == CITY).all()


def test_the_run_folder_holds_the_moves(tmp_path: Path) -> None:
    moved = run(_bench(days=1.0), replications=1, policy=SendToCity)
    write_run(moved, tmp_path / "moved")
    table = read_relocations(tmp_path / "moved")
    assert table is not None and len(table) == len(moved.relocations) > 0
    still = run(_bench(days=1.0), replications=1, policy="nearest_idle_van")
    write_run(still, tmp_path / "still")
    assert read_relocations(tmp_path / "still") is None


def test_moves_come_back_from_worker_processes_unchanged() -> None:
    scenario = _bench(days=2.0, review_interval_h=2.0)
    serial = run(scenario, replications=2, policy="compliance_table")
    parallel = run(scenario, replications=2, policy="compliance_table", workers=2)
    assert len(serial.relocations) > 0
    assert serial.relocations.equals(parallel.relocations)
    assert serial.kpis_by_replication.equals(parallel.kpis_by_replication)


def test_moves_are_kept_by_the_result_store_for_a_rerun(tmp_path: Path) -> None:
    """A run read back from the store (a rerun of the same command) keeps its moves."""
    scenario = _bench(days=2.0, review_interval_h=2.0)
    first = run(scenario, replications=2, policy="compliance_table", store=tmp_path / "store")
    again = run(scenario, replications=2, policy="compliance_table", store=tmp_path / "store")
    assert len(first.relocations) > 0
    pd.testing.assert_frame_equal(again.relocations, first.relocations, check_exact=True)
    assert again.kpis_by_replication.equals(first.kpis_by_replication)
