"""Property tests: invariants of the records on small random scenarios (hypothesis).

Each example draws a small network (1-6 stations, generated in a small province or read
from a CSV), 1-10 vans, 5-300 calls a day over 1-3 days, random hotline behaviour
(patience, redials, remote fixes), random fault classes (fix and part-missing
probabilities, workshop bays), sometimes a surge that shuts stations, and one of four
built-in dispatch policies (two of them move idle vans up, with or without a regular
review). It runs one replication and checks the call, unit and relocation tables:

* every call ends in exactly one final state, and the state agrees with the timestamps;
* a van never serves two calls at once (from the calls table and from the unit log);
* a call's timestamps never go backwards;
* calls in = repaired + remote + abandoned + unfinished;
* attempts lie between 1 and max_attempts for every call made before the horizon;
* every move-up drive is in both the unit log and the relocation table.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sim.experiments.runs.run import ReplicationResult, run_replication
from sim.model.network import build_network
from sim.model.records import FINAL_STATES
from sim.model.reference import select_areas
from sim.model.scenario import Scenario

# Small provinces keep the generated networks and the spatial indexes small.
PROVINCES = ("海南省", "宁夏回族自治区", "青海省")
PROVINCE_IDS = ("hainan", "ningxia", "qinghai")
POLICIES = ("nearest_station", "nearest_idle_van", "compliance_table", "dynamic_mexclp")
EPS = 1e-9

# Per province: each property is one test per province (so that the workers share them),
# 3 x 9 = 27 examples in all, the same ones on every run (tests/conftest.py).
PROPERTY_SETTINGS = settings(
    max_examples=9,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


# --------------------------------------------------------------------------- strategies


def _dist(draw: st.DrawFn, low: float, high: float, zero: bool = False) -> dict[str, Any]:
    """A duration distribution (in the field's own unit) with mean in [low, high] (low > 0).

    ``zero``: also allow a fixed 0 (no delay at all).
    """
    if zero and draw(st.booleans()):
        return {"dist": "fixed", "value": 0.0}
    mean = draw(st.floats(low, high))
    family = draw(st.sampled_from(["fixed", "exponential", "lognormal", "uniform"]))
    if family == "fixed":
        return {"dist": "fixed", "value": mean}
    if family == "exponential":
        return {"dist": "exponential", "mean": mean}
    if family == "lognormal":
        return {"dist": "lognormal", "mean": mean, "cv": draw(st.floats(0.1, 1.5))}
    return {"dist": "uniform", "low": 0.0, "high": 2 * mean}


@st.composite
def scenarios(draw: st.DrawFn, tmp: Path, province: str) -> dict[str, Any]:
    """A small random scenario in ``province`` as plain data (CSV files go under ``tmp``)."""
    areas = select_areas((province,), False)
    n_areas = len(areas)
    n_stations = draw(st.integers(1, 6))
    n_vans = draw(st.integers(1, 10))

    if draw(st.booleans()):
        # Generated stations: cover 1..n_stations prefectures (coverage 0 is a known bug,
        # see test_zero_coverage_target_builds below).
        covered = draw(st.integers(1, min(n_stations, n_areas)))
        stations: dict[str, Any] = {
            "generate": {
                "count": n_stations,
                "coverage_target": covered / n_areas,
                "workshop_bays": draw(st.integers(0, 2)),
                "spread_km": draw(st.floats(0, 40)),
            }
        }
        min_per_station = draw(st.integers(0, min(1, n_vans // n_stations)))
        vans: dict[str, Any] = {
            "total": n_vans,
            "allocation": draw(st.sampled_from(["demand", "equal"])),
            "min_per_station": min_per_station,
        }
    else:
        # A stations CSV near the province's seats, vans from its column or a total.
        lat0 = float(areas["lat"].mean())
        lon0 = float(areas["lon"].mean())
        rows = ["id,lat,lon,vans,workshop_bays"]
        per_station = draw(
            st.lists(st.integers(0, 10 // n_stations), min_size=n_stations, max_size=n_stations)
        )
        if sum(per_station) == 0:
            per_station[0] = 1
        for k in range(n_stations):
            lat = lat0 + draw(st.floats(-1.5, 1.5))
            lon = lon0 + draw(st.floats(-1.5, 1.5))
            rows.append(f"s{k},{lat:.5f},{lon:.5f},{per_station[k]},{draw(st.integers(0, 2))}")
        name = f"stations_{draw(st.integers(0, 10**9))}.csv"
        (tmp / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
        stations = {"csv": name}
        # Vans from the CSV's column, or a total shared out over the stations.
        from_column = draw(st.booleans())
        vans = {"total": None} if from_column else {"total": n_vans, "min_per_station": 0}

    n_faults = draw(st.integers(1, 3))
    raw_shares = draw(st.lists(st.integers(1, 10), min_size=n_faults, max_size=n_faults))
    shares = [s / sum(raw_shares) for s in raw_shares]
    shares[-1] = 1.0 - sum(shares[:-1])
    faults = [
        {
            "name": f"fault{k}",
            "share": shares[k],
            "on_site_fix_probability": draw(st.sampled_from([0.0, 0.5, 0.9, 1.0])),
            "repair_time_min": _dist(draw, 5, 180),
            "part_missing_probability": draw(st.sampled_from([0.0, 0.2, 1.0])),
            "part_delay_h": _dist(draw, 0.1, 4),
            "workshop_repair_h": _dist(draw, 0.5, 12),
        }
        for k in range(n_faults)
    ]
    repair_promises = {
        f"fault{k}": {
            "hours": draw(st.floats(1, 72)),
            "from": draw(st.sampled_from(["arrival", "call"])),
        }
        for k in range(n_faults)
    }

    days = draw(st.integers(24, 72)) / 24  # whole hours: see test_no_call_after_the_horizon
    max_attempts = draw(st.integers(1, 4))
    shifts = draw(
        st.sampled_from(
            [
                [{"start_h": 0, "end_h": 24, "agents": draw(st.integers(1, 4))}],
                [
                    {"start_h": 22, "end_h": 6, "agents": 1},
                    {"start_h": 6, "end_h": 22, "agents": draw(st.integers(1, 3))},
                ],
                [
                    {"start_h": 0, "end_h": 12, "agents": draw(st.integers(1, 2))},
                    {"start_h": 12, "end_h": 24, "agents": draw(st.integers(1, 2))},
                    {"start_h": 9, "end_h": 17, "agents": draw(st.integers(0, 2))},
                ],
            ]
        )
    )
    data: dict[str, Any] = {
        "name": "property",
        "seed": draw(st.integers(0, 2**31 - 1)),
        "horizon": {"days": days, "warmup_days": draw(st.sampled_from([0.0, 0.25]))},
        "geography": {"provinces": [province], "include_municipalities": False},
        "network": {"stations": stations, "vans": vans},
        "demand": {
            # Half light, half heavy demand: queues for agents and vans both happen.
            "calls_per_day": draw(st.one_of(st.floats(5, 60), st.floats(60, 300))),
            "spatial": {"scatter_km": draw(st.sampled_from([0.0, 5.0, 25.0]))},
            "fault_classes": faults,
        },
        "hotline": {
            "shifts": shifts,
            "handling_time_min": _dist(draw, 0.5, 20, zero=True),
            "patience_min": None if draw(st.booleans()) else _dist(draw, 0.5, 10),
            "redial_probability": draw(st.sampled_from([0.0, 0.5, 1.0])),
            "redial_delay_min": _dist(draw, 0.5, 10),
            "max_attempts": max_attempts,
            "remote_diagnosis_share": draw(st.sampled_from([0.0, 0.1, 0.5])),
        },
        "travel": {"noise_cv": draw(st.sampled_from([0.0, 0.25, 0.6]))},
        "stations": {
            "contact_delay_min": _dist(draw, 1, 30),
            "turnout_day_min": _dist(draw, 1, 30, zero=True),
            "turnout_night_min": _dist(draw, 1, 60, zero=True),
        },
        "promises": {"repair": repair_promises},
        "dispatch": {
            "policy": draw(st.sampled_from(POLICIES)),
            "candidates": draw(st.integers(1, 8)),
            "review_interval_h": draw(st.sampled_from([None, 0.5, 6.0])),
        },
    }
    if draw(st.booleans()):
        data["surges"] = [
            {
                "name": "storm",
                "region": {
                    "center_lat": float(areas["lat"].iloc[0]),
                    "center_lon": float(areas["lon"].iloc[0]),
                    "radius_km": draw(st.floats(20, 400)),
                },
                "start_day": draw(st.floats(0, days * 0.8)),
                "duration_h": draw(st.floats(1, 30)),
                "demand_multiplier": draw(st.floats(1, 4)),
                "speed_factor": draw(st.floats(0.3, 1)),
                "stations_shut_fraction": draw(st.sampled_from([0.0, 0.5, 1.0])),
                "extra_agents": draw(st.integers(0, 2)),
            }
        ]
    if draw(st.booleans()):
        # An overloaded hotline: one agent, long calls, impatient callers who redial.
        data["demand"]["calls_per_day"] = draw(st.floats(150, 300))
        data["hotline"].update(
            shifts=[{"start_h": 0, "end_h": 24, "agents": 1}],
            handling_time_min={"dist": "exponential", "mean": draw(st.floats(8, 20))},
            patience_min=_dist(draw, 0.5, 5),
            redial_probability=draw(st.sampled_from([0.5, 1.0])),
        )
    return data


def _scenario(data: dict[str, Any], tmp: Path) -> Scenario:
    return Scenario.model_validate(data, context={"base_dir": tmp})


# --------------------------------------------------------------------------- checks


def _check_final_states(calls: pd.DataFrame, horizon_h: float) -> None:
    state = calls["final_state"]
    assert state.notna().all()
    assert set(state.astype(str)) <= set(FINAL_STATES)
    counts = state.value_counts()
    assert int(counts.sum()) == len(calls)
    assert sum(int(counts.get(s, 0)) for s in FINAL_STATES) == len(calls)

    answered = calls["answered_h"].notna()
    abandoned = calls["abandoned_h"].notna()
    dispatched = calls["dispatched_h"].notna()
    repaired_at = calls["repaired_h"].notna()
    assert not (answered & abandoned).any(), "answered and abandoned"

    repaired = state == "repaired"
    assert repaired_at[repaired].all()
    assert dispatched[repaired].all()
    assert calls.loc[repaired, "arrived_h"].notna().all()
    assert calls.loc[repaired, "van_released_h"].notna().all()
    towed = calls["towed"].to_numpy(bool)
    fixed = calls["fixed_on_site"].to_numpy(bool)
    assert not (towed & fixed).any()
    assert (fixed | towed)[repaired.to_numpy()].all()

    gave_up = state == "abandoned"
    assert abandoned[gave_up].all()
    assert not answered[gave_up].any()
    assert abandoned.sum() == gave_up.sum(), "abandoned_h only on abandoned calls"

    remote = state == "remote"
    assert answered[remote].all()
    assert not dispatched[remote].any()
    assert repaired_at[remote].all()
    assert calls.loc[remote, "van"].eq(-1).all()

    unfinished = state == "unfinished"
    assert not repaired_at[unfinished].any()
    assert not abandoned[unfinished].any()

    # Dispatched calls were answered and not solved by phone; an answered call neither
    # dispatched nor remote was still being handled at the horizon.
    assert not (dispatched & ~answered).any()
    assert not (dispatched & remote).any()
    in_handling = answered & ~dispatched & ~remote
    assert unfinished[in_handling].all()
    end_of_handling = calls["answered_h"] + calls["handling_h"]
    assert (end_of_handling[in_handling] >= horizon_h - EPS).all()


def _check_time_order(calls: pd.DataFrame, horizon_h: float) -> None:
    chain = [
        "t_call_h",
        "answered_h",
        "dispatched_h",
        "assigned_h",
        "departed_h",
        "arrived_h",
        "van_released_h",
    ]
    previous = calls["t_call_h"].to_numpy()
    for name in chain[1:]:
        column = calls[name].to_numpy()
        known = ~np.isnan(column)
        assert (column[known] >= previous[known] - EPS).all(), f"{name} before the step before it"
        previous = np.where(known, column, previous)
    # A later step never happens without the earlier ones (departed and arrived may be
    # unknown while the van is on the road, but not assigned while arrived is known).
    # (departed_h is recorded at assignment, ahead of time; it may lie past the horizon.)
    for later, earlier in zip(chain[2:], chain[1:-1], strict=True):
        assert calls.loc[calls[later].notna(), earlier].notna().all(), f"{later} without {earlier}"

    arrived = calls["arrived_h"].to_numpy()
    repaired = calls["repaired_h"].to_numpy()
    on_road = ~np.isnan(arrived) & ~np.isnan(repaired)
    assert (repaired[on_road] >= arrived[on_road] - EPS).all()
    answered = calls["answered_h"].to_numpy()
    ok = ~np.isnan(answered) & ~np.isnan(repaired)
    assert (repaired[ok] >= answered[ok] - EPS).all()
    abandoned = calls["abandoned_h"].to_numpy()
    ok = ~np.isnan(abandoned)
    assert (abandoned[ok] >= calls["t_call_h"].to_numpy()[ok] - EPS).all()
    # Nothing is recorded after the horizon, except what was scheduled at assignment
    # (departure after the turn-out) and the contact time promised at dispatch.
    for name in ("answered_h", "abandoned_h", "dispatched_h", "assigned_h", "arrived_h",
                 "van_released_h", "repaired_h"):  # fmt: skip
        column = calls[name].to_numpy()
        known = ~np.isnan(column)
        assert (column[known] <= horizon_h + EPS).all(), f"{name} after the horizon"
    # Waits are non-negative and the answered attempt's wait is part of the total.
    wait = calls["hotline_wait_h"].to_numpy()
    total = calls["hotline_wait_total_h"].to_numpy()
    ok = ~np.isnan(wait)
    assert (wait[ok] >= -EPS).all()
    assert (total[ok] >= wait[ok] - EPS).all()


def _check_vans_calls(calls: pd.DataFrame, n_vans: int, horizon_h: float) -> None:
    served = calls[calls["assigned_h"].notna()]
    assert (served["van"] >= 0).all() and (served["van"] < n_vans).all()
    assert calls.loc[calls["assigned_h"].isna(), "van"].eq(-1).all()
    for _, jobs in served.groupby("van"):
        start = jobs["assigned_h"].to_numpy()
        end = jobs["van_released_h"].fillna(math.inf).to_numpy()
        order = np.argsort(start, kind="stable")
        start, end = start[order], end[order]
        assert (end >= start).all()
        assert (start[1:] >= end[:-1] - EPS).all(), "a van served two calls at once"


# Allowed transitions of the unit log: a van idles at base, drives to a site, works on
# site, then takes the next order directly, drives back, or (the site being its base)
# is idle at once; a van back at base takes a waiting order or idles. Move-up sends a
# van free after a job, or an idle one, to a new base, where it arrives as one back home.
ALLOWED = {
    ("on_site", "relocating"),
    ("idle", "relocating"),
    ("relocating", "idle"),
    ("relocating", "to_site"),
    ("idle", "to_site"),
    ("to_site", "on_site"),
    ("on_site", "to_site"),
    ("on_site", "returning"),
    ("on_site", "idle"),
    ("returning", "idle"),
    ("returning", "to_site"),
}


def _check_units(units: pd.DataFrame, calls: pd.DataFrame, n_vans: int, horizon_h: float) -> None:
    assert set(units["van"]) == set(range(n_vans)), "every van logs its start"
    assert (units["t_h"] >= 0).all() and (units["t_h"] <= horizon_h + EPS).all()
    call_van = calls.set_index("call_id")["van"]
    for van, log in units.groupby("van", sort=True):
        t = log["t_h"].to_numpy()
        states = log["state"].astype(str).to_list()
        call = log["call_id"].to_numpy()
        assert (np.diff(t) >= -EPS).all(), "the log of a van goes back in time"
        assert states[0] == "idle" and t[0] == 0.0
        for k in range(1, len(states)):
            assert (states[k - 1], states[k]) in ALLOWED, (van, states[k - 1], states[k])
            if states[k] == "on_site":
                assert call[k] == call[k - 1], "on site at another call than driven to"
        for k, state in enumerate(states):
            if state in ("to_site", "on_site"):
                assert call[k] >= 0 and call_van[call[k]] == van
            else:
                assert call[k] == -1
        # The calls table and the log agree on which calls the van drove to.
        driven = sorted(call[[s == "to_site" for s in states]].tolist())
        assert driven == sorted(calls.loc[calls["van"] == van, "call_id"].tolist())


def _check_relocations(result: ReplicationResult, n_stations: int) -> None:
    """The relocation table and the unit log agree, move for move."""
    moves = result.relocations
    units = result.units
    logged = units.loc[units["state"].astype(str) == "relocating", ["t_h", "van"]]
    assert moves[["t_h", "van"]].to_numpy().tolist() == logged.to_numpy().tolist()
    assert (moves["from_station"] != moves["to_station"]).all()
    assert moves["to_station"].between(0, n_stations - 1).all()
    assert (moves["road_km"] >= 0).all()
    if len(moves):
        event("some van relocated")


def _check_attempts(calls: pd.DataFrame, max_attempts: int, horizon_h: float) -> None:
    made = calls["t_call_h"] < horizon_h
    assert calls.loc[made, "attempts"].between(1, max_attempts).all()
    single = calls["attempts"] == 1
    # A caller answered at the first attempt waited only once.
    ok = single & calls["answered_h"].notna()
    assert np.allclose(calls.loc[ok, "hotline_wait_total_h"], calls.loc[ok, "hotline_wait_h"])


def _events(result: ReplicationResult, scenario: Scenario) -> None:
    """Label the example, so that ``--hypothesis-show-statistics`` shows what was covered."""
    calls = result.calls
    event(f"policy {scenario.dispatch.policy}")
    event("surge" if scenario.surges else "no surge")
    event("CSV stations" if scenario.network.stations.csv is not None else "generated stations")
    states = set(calls["final_state"].astype(str))
    for state in FINAL_STATES:
        if state in states:
            event(f"some {state}")
    if calls["towed"].any():
        event("some towed")
    if (calls["attempts"] > 1).any():
        event("some redial")
    if ((calls["assigned_h"] - calls["dispatched_h"]) > 0).any():
        event("some order waited for a van")
    if (result.units["state"] == "returning").any():
        event("some van drove back")


def _check_all(result: ReplicationResult, scenario: Scenario, n_vans: int, n_stations: int) -> None:
    _events(result, scenario)
    calls = result.calls
    horizon = scenario.horizon.hours
    assert (calls["call_id"].to_numpy() == np.arange(len(calls))).all()
    assert calls["t_call_h"].is_monotonic_increasing
    _check_final_states(calls, horizon)
    _check_time_order(calls, horizon)
    _check_vans_calls(calls, n_vans, horizon)
    _check_units(result.units, calls, n_vans, horizon)
    _check_relocations(result, n_stations)
    _check_attempts(calls, scenario.hotline.max_attempts, horizon)
    assert result.hotline_queue_area_h >= 0
    assert result.hotline_queue_area_h >= calls["hotline_wait_total_h"].sum() - 1e-6


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("province", PROVINCES, ids=PROVINCE_IDS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_records_are_consistent(tmp_path: Path, province: str, data: st.DataObject) -> None:
    raw = data.draw(scenarios(tmp_path, province))
    scenario = _scenario(raw, tmp_path)
    network = build_network(scenario)
    result = run_replication(scenario, 0, network=network)
    _check_all(result, scenario, network.n_vans, network.n_stations)


@pytest.mark.parametrize("province", PROVINCES, ids=PROVINCE_IDS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_both_policies_see_the_same_calls(
    tmp_path: Path, province: str, data: st.DataObject
) -> None:
    """Common random numbers: a change of policy changes no call, patience or repair."""
    raw = data.draw(scenarios(tmp_path, province))
    scenario = _scenario(raw, tmp_path)
    network = build_network(scenario)
    results = [run_replication(scenario, 0, policy, network=network) for policy in POLICIES]
    a = results[0].calls
    for b in (r.calls for r in results[1:]):
        for column in ("t_call_h", "lat", "lon", "fault", "segment"):
            pd.testing.assert_series_equal(a[column], b[column])
        # The hotline does not depend on dispatch: it is identical under every policy.
        for column in ("answered_h", "abandoned_h", "attempts", "hotline_wait_h", "handling_h"):
            pd.testing.assert_series_equal(a[column], b[column])
    for result in results:
        _check_all(result, scenario, network.n_vans, network.n_stations)


# --------------------------------------------------------------------------- known bugs


def _simple(days: float) -> Scenario:
    return Scenario.model_validate(
        {
            "seed": 1,
            "horizon": {"days": days, "warmup_days": 0.0},
            "geography": {"provinces": ["宁夏回族自治区"], "include_municipalities": False},
            "network": {"stations": {"generate": {"count": 5}}, "vans": {"total": 8}},
            "demand": {"calls_per_day": 600},
        }
    )


def test_no_call_after_the_horizon() -> None:
    scenario = _simple(days=1.45)  # 34.8 h: the horizon falls inside an hour
    assert scenario.horizon.hours % 1 != 0
    calls = run_replication(scenario, 0).calls
    assert (calls["t_call_h"] < scenario.horizon.hours).all()
    assert (calls["attempts"] >= 1).all()


def test_zero_coverage_target_builds() -> None:
    scenario = Scenario.model_validate(
        {
            "geography": {"provinces": ["宁夏回族自治区"], "include_municipalities": False},
            "network": {
                "stations": {"generate": {"count": 3, "coverage_target": 0.0}},
                "vans": {"total": 5},
            },
        }
    )
    network = build_network(scenario)
    assert network.n_stations == 3
    assert network.n_vans == 5
