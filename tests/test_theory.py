"""Validation of the model against queueing theory.

Each check builds a scenario in which one part of the model is a textbook queue, runs
enough replications for a 95% confidence interval (``sim.analysis.kpis.confidence_interval``)
over replication means to be meaningful, and asserts that the theoretical value lies
inside the interval.

Biases and how they are avoided rather than tolerated:

* Warm-up: every replication starts empty and idle. Calls made during the warm-up are
  left out; the warm-up is many relaxation times of each queue.
* Horizon: a call still waiting at the horizon has no wait recorded, so averaging only
  finished calls would leave out the longest waits. Calls made within ``EDGE_H`` of the
  horizon are left out too; every queue here is FIFO, so a call's wait depends only on
  calls made before it, and every call made before ``horizon - EDGE_H`` has finished
  (asserted, not assumed).
* Arrivals: a flat hour-of-day and day-of-week profile makes the call stream a
  homogeneous Poisson process (counts per hour are Poisson, times uniform within the
  hour); a single 0-24 h shift keeps the number of agents constant (the hourly shift
  change re-sets the same number).

Runtime: the un-marked checks take roughly 20 s together on one core; the ``slow``
variants repeat them at a second operating point with more data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sim.analysis.kpis import Interval, confidence_interval
from sim.analysis.theory import (
    erlang_a,
    erlang_c_mean_wait,
    erlang_c_service_level,
    mmc_mean_response,
)
from sim.experiments.runs.run import RunResult, run, run_replication
from sim.model.scenario import Scenario

MIN_PER_H = 60.0
S_PER_H = 3600.0
EDGE_H = 2.0
FLAT_HOURS = [1.0] * 24
FLAT_DAYS = [1.0] * 7
# Zhengzhou, the seat of the first Henan prefecture in seeds/prefectures.csv.
STATION_LAT, STATION_LON = 34.7478, 113.6193


# --------------------------------------------------------------------------- helpers


def _hotline_only(
    *,
    agents: int,
    calls_per_hour: float,
    handling_min: float,
    days: float,
    patience_min: float | None = None,
    redial_probability: float = 0.0,
    max_attempts: int = 1,
    seed: int = 20240601,
) -> Scenario:
    """Every answered call ends at the phone: only the hotline matters."""
    return Scenario.model_validate(
        {
            "name": "hotline_only",
            "seed": seed,
            "horizon": {"days": days, "warmup_days": 0.5},
            "geography": {"provinces": ["河南省"], "include_municipalities": False},
            "network": {
                "stations": {"generate": {"count": 17, "coverage_target": 1.0}},
                "vans": {"total": 17},
            },
            "demand": {
                "calls_per_day": calls_per_hour * 24,
                "hour_of_day_profile": FLAT_HOURS,
                "day_of_week_profile": FLAT_DAYS,
            },
            "hotline": {
                "shifts": [{"start_h": 0, "end_h": 24, "agents": agents}],
                "handling_time_min": {"dist": "exponential", "mean": handling_min},
                "patience_min": None
                if patience_min is None
                else {"dist": "exponential", "mean": patience_min},
                "redial_probability": redial_probability,
                "max_attempts": max_attempts,
                "remote_diagnosis_share": 1.0,
            },
        }
    )


def _window(calls: pd.DataFrame, scenario: Scenario, edge_h: float = EDGE_H) -> pd.DataFrame:
    """Calls made after the warm-up and at least ``edge_h`` before the horizon."""
    t = calls["t_call_h"]
    return calls[(t >= scenario.horizon.warmup_h) & (t < scenario.horizon.hours - edge_h)]


def _per_replication(result: RunResult, stat: Any) -> list[float]:
    return [float(stat(r)) for r in result.replications]


def _assert_inside(name: str, ci: Interval, theory: float) -> None:
    # Shown with ``pytest -rP`` (or -s): the figures behind each check.
    print(f"{name}: theory {theory:.6g}, simulated {ci.mean:.6g} [{ci.low:.6g}, {ci.high:.6g}]")
    assert ci.n >= 10, f"{name}: too few replications for an interval"
    assert ci.low <= theory <= ci.high, (
        f"{name}: theory {theory:.6g} outside the 95% interval "
        f"[{ci.low:.6g}, {ci.high:.6g}] (mean {ci.mean:.6g}, n={ci.n})"
    )


# --------------------------------------------------------------------------- a. Erlang C

ERLANG_C_CASES = [
    # (agents, calls per hour, handling min, days, replications); utilisation 0.8 / 0.9
    pytest.param(4, 32.0, 6.0, 15, 16, id="c4-rho0.8"),
    pytest.param(10, 108.0, 5.0, 12, 20, id="c10-rho0.9", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("agents", "lam", "handling_min", "days", "reps"), ERLANG_C_CASES)
def test_hotline_alone_is_erlang_c(
    agents: int, lam: float, handling_min: float, days: float, reps: int
) -> None:
    mu = MIN_PER_H / handling_min
    assert 0.75 <= lam / (agents * mu) <= 0.95
    scenario = _hotline_only(
        agents=agents, calls_per_hour=lam, handling_min=handling_min, days=days
    )
    result = run(scenario, replications=reps)

    for r in result.replications:
        c = _window(r.calls, scenario)
        # Nobody hangs up and nothing is dispatched: every call in the window is answered
        # once, at the first attempt, and ends at the phone.
        assert c["answered_h"].notna().all()
        assert (c["attempts"] == 1).all()
        assert (c["final_state"] == "remote").all()
        assert c["dispatched_h"].isna().all()

    def answered_waits(r: Any) -> pd.Series:
        return _window(r.calls, scenario)["hotline_wait_h"]

    mean_wait = confidence_interval(_per_replication(result, lambda r: answered_waits(r).mean()))
    _assert_inside("Erlang C mean wait (h)", mean_wait, erlang_c_mean_wait(lam, mu, agents))

    for threshold_s in (20.0, 180.0):
        t_h = threshold_s / S_PER_H
        level = confidence_interval(
            _per_replication(result, lambda r, t_h=t_h: (answered_waits(r) <= t_h).mean())
        )
        _assert_inside(
            f"Erlang C P(wait <= {threshold_s:g} s)",
            level,
            erlang_c_service_level(lam, mu, agents, t_h),
        )

    # The agent-utilisation KPI is the offered load per agent.
    utilisation = confidence_interval(
        _per_replication(result, lambda r: r.kpis["agent_utilisation"])
    )
    _assert_inside("agent utilisation", utilisation, lam / (agents * mu))


# --------------------------------------------------------------------------- b. Erlang A

ERLANG_A_CASES = [
    # (agents, calls/h, handling min, patience min, redial p, max attempts, days, reps)
    pytest.param(4, 36.0, 6.0, 4.0, 0.0, 1, 15, 16, id="c4-load0.9-one-attempt"),
    # Redials switched off by probability 0 with attempts to spare: still Erlang A.
    pytest.param(4, 36.0, 6.0, 4.0, 0.0, 3, 15, 16, id="c4-load0.9-redial-p0"),
    # Overloaded (offered load 1.2): abandonment alone keeps the queue stable.
    pytest.param(6, 72.0, 6.0, 2.0, 0.0, 1, 10, 20, id="c6-load1.2", marks=pytest.mark.slow),
    # A large desk at critical load (offered load 1.0), every caller may redial but
    # only one attempt is allowed: nobody redials.
    pytest.param(20, 200.0, 6.0, 5.0, 1.0, 1, 5, 16, id="c20-load1.0-one-attempt-p1",
                 marks=pytest.mark.slow),
]  # fmt: skip


@pytest.mark.parametrize(
    ("agents", "lam", "handling_min", "patience_min", "redial_p", "max_attempts", "days", "reps"),
    ERLANG_A_CASES,
)
def test_hotline_with_abandonment_is_erlang_a(
    agents: int,
    lam: float,
    handling_min: float,
    patience_min: float,
    redial_p: float,
    max_attempts: int,
    days: float,
    reps: int,
) -> None:
    mu = MIN_PER_H / handling_min
    theta = MIN_PER_H / patience_min
    scenario = _hotline_only(
        agents=agents,
        calls_per_hour=lam,
        handling_min=handling_min,
        days=days,
        patience_min=patience_min,
        redial_probability=redial_p,
        max_attempts=max_attempts,
    )
    result = run(scenario, replications=reps)
    theory = erlang_a(lam, mu, agents, theta)

    for r in result.replications:
        c = _window(r.calls, scenario)
        answered = c["answered_h"].notna()
        abandoned = c["abandoned_h"].notna()
        assert (answered ^ abandoned).all(), "each call is answered or abandoned, not both"
        assert (c["attempts"] == 1).all(), "nobody redials"
        # A caller who hung up waited exactly its patience; a served one its answer time.
        assert np.allclose(
            c.loc[answered, "hotline_wait_total_h"], c.loc[answered, "hotline_wait_h"]
        )

    abandon = confidence_interval(
        _per_replication(result, lambda r: _window(r.calls, scenario)["abandoned_h"].notna().mean())
    )
    _assert_inside("Erlang A abandonment probability", abandon, theory["abandon_probability"])

    # Mean time in queue over all callers, served or not.
    wait = confidence_interval(
        _per_replication(
            result, lambda r: _window(r.calls, scenario)["hotline_wait_total_h"].mean()
        )
    )
    _assert_inside("Erlang A mean wait, all callers (h)", wait, theory["mean_wait"])

    # The KPI of the same name counts the same thing.
    kpi = confidence_interval(_per_replication(result, lambda r: r.kpis["abandonment_rate"]))
    _assert_inside("abandonment_rate KPI", kpi, theory["abandon_probability"])


# --------------------------------------------------------------------------- c. M/M/c station


def _one_station(tmp_path: Path, *, vans: int, calls_per_hour: float, repair_min: float,
                 days: float, warmup_days: float,
                 policy: str = "nearest_station") -> Scenario:  # fmt: skip
    """One station with ``vans`` vans; every breakdown happens at the station itself."""
    (tmp_path / "stations.csv").write_text(
        f"id,lat,lon,vans,workshop_bays\nzhengzhou,{STATION_LAT},{STATION_LON},{vans},1\n",
        encoding="utf-8",
    )
    (tmp_path / "points.csv").write_text(
        f"lat,lon,weight\n{STATION_LAT},{STATION_LON},1\n", encoding="utf-8"
    )
    data = {
        "name": "mmc_station",
        "seed": 424242,
        "horizon": {"days": days, "warmup_days": warmup_days},
        "geography": {"provinces": ["河南省"], "include_municipalities": False},
        "network": {"stations": {"csv": "stations.csv"}, "vans": {"total": None}},
        "demand": {
            "calls_per_day": calls_per_hour * 24,
            "hour_of_day_profile": FLAT_HOURS,
            "day_of_week_profile": FLAT_DAYS,
            "spatial": {"csv": "points.csv", "scatter_km": 0},
            "fault_classes": [
                {
                    "name": "only",
                    "share": 1.0,
                    "on_site_fix_probability": 1.0,
                    "part_missing_probability": 0.0,
                    "repair_time_min": {"dist": "exponential", "mean": repair_min},
                }
            ],
            "segments": [{"name": "everyone", "share": 1.0}],
        },
        # A hotline that never makes anyone wait and hands over at once.
        "hotline": {
            "shifts": [{"start_h": 0, "end_h": 24, "agents": 1000}],
            "handling_time_min": {"dist": "fixed", "value": 0},
            "patience_min": None,
            "remote_diagnosis_share": 0.0,
        },
        "stations": {
            "turnout_day_min": {"dist": "fixed", "value": 0},
            "turnout_night_min": {"dist": "fixed", "value": 0},
        },
        "promises": {"repair": {"only": {"hours": 4, "from": "arrival"}}},
        "dispatch": {"policy": policy},
    }
    return Scenario.model_validate(data, context={"base_dir": tmp_path})


MMC_CASES = [
    # (vans, calls/h, repair min, days, warm-up days, replications, policy); utilisation
    # 0.8 / 0.9. The warm-up is many relaxation times 1/(c mu (1 - sqrt(rho))^2): about
    # 6 h at rho 0.8 and 15 h at rho 0.9.
    pytest.param(3, 12.0, 12.0, 40, 2, 16, "nearest_station", id="c3-rho0.8-nearest_station"),
    pytest.param(3, 12.0, 12.0, 40, 2, 16, "nearest_idle_van", id="c3-rho0.8-nearest_idle_van",
                 marks=pytest.mark.slow),
    pytest.param(5, 22.5, 12.0, 60, 4, 20, "nearest_station", id="c5-rho0.9",
                 marks=pytest.mark.slow),
]  # fmt: skip


@pytest.mark.parametrize(
    ("vans", "lam", "repair_min", "days", "warmup_days", "reps", "policy"), MMC_CASES
)
def test_single_station_is_mmc(
    tmp_path: Path,
    vans: int,
    lam: float,
    repair_min: float,
    days: float,
    warmup_days: float,
    reps: int,
    policy: str,
) -> None:
    mu = MIN_PER_H / repair_min
    scenario = _one_station(
        tmp_path,
        vans=vans,
        calls_per_hour=lam,
        repair_min=repair_min,
        days=days,
        warmup_days=warmup_days,
        policy=policy,
    )
    result = run(scenario, replications=reps)

    for r in result.replications:
        c = _window(r.calls, scenario, edge_h=6.0)
        assert c["van_released_h"].notna().all(), "every call in the window was served"
        # The hotline hands over at the moment of the call; distance 0 means no drive,
        # and turn-out is 0: the van is on site the moment it is assigned.
        assert (c["dispatched_h"] == c["t_call_h"]).all()
        assert (c["road_km"] == 0).all()
        assert (c["arrived_h"] == c["assigned_h"]).all()
        assert (c["final_state"] == "repaired").all()
        # A van finishing at the station is at its base: it never drives back.
        assert (r.units["state"] != "returning").all()

    def response(r: Any) -> float:
        c = _window(r.calls, scenario, edge_h=6.0)
        return float((c["van_released_h"] - c["dispatched_h"]).mean())

    def wait(r: Any) -> float:
        c = _window(r.calls, scenario, edge_h=6.0)
        return float((c["assigned_h"] - c["dispatched_h"]).mean())

    _assert_inside(
        "M/M/c mean time in system (h)",
        confidence_interval(_per_replication(result, response)),
        mmc_mean_response(lam, mu, vans),
    )
    _assert_inside(
        "M/M/c mean wait for a van (h)",
        confidence_interval(_per_replication(result, wait)),
        erlang_c_mean_wait(lam, mu, vans),
    )
    # Vans are busy exactly while repairing: the utilisation KPI is the offered load.
    _assert_inside(
        "van utilisation",
        confidence_interval(_per_replication(result, lambda r: r.kpis["van_utilisation"])),
        lam / (vans * mu),
    )


# --------------------------------------------------------------------------- d. Little's law


def _little_scenario(*, redial_probability: float, max_attempts: int, days: float) -> Scenario:
    """A busy hotline with impatient callers, shift changes and a daily demand profile."""
    return Scenario.model_validate(
        {
            "name": "little",
            "seed": 99,
            # A horizon that ends at a busy moment, so that callers are waiting then.
            "horizon": {"days": days, "warmup_days": 0.5},
            "geography": {"provinces": ["河南省"], "include_municipalities": False},
            "network": {
                "stations": {"generate": {"count": 17, "coverage_target": 1.0}},
                "vans": {"total": 17},
            },
            "demand": {"calls_per_day": 900},
            "hotline": {
                "shifts": [
                    {"start_h": 0, "end_h": 8, "agents": 2},
                    {"start_h": 8, "end_h": 24, "agents": 5},
                ],
                "handling_time_min": {"dist": "lognormal", "mean": 6, "cv": 0.6},
                "patience_min": {"dist": "exponential", "mean": 3},
                "redial_probability": redial_probability,
                "max_attempts": max_attempts,
                "remote_diagnosis_share": 1.0,
            },
        }
    )


@pytest.mark.parametrize(
    ("redial_probability", "max_attempts", "days"),
    [
        pytest.param(0.0, 1, 4 + 17 / 24, id="no-redial"),
        pytest.param(0.6, 3, 4 + 17 / 24, id="redial"),
        pytest.param(0.9, 5, 3 + 11 / 24, id="redial-often"),
    ],
)
def test_littles_law_for_the_hotline_queue(
    redial_probability: float, max_attempts: int, days: float
) -> None:
    scenario = _little_scenario(
        redial_probability=redial_probability, max_attempts=max_attempts, days=days
    )
    horizon = scenario.horizon.hours
    open_at_horizon = 0
    for replication in range(3):
        r = run_replication(scenario, replication)
        calls = r.calls[r.calls["t_call_h"] < horizon]
        area = r.hotline_queue_area_h
        assert area > 0
        assert (calls["abandoned_h"].notna()).any(), "abandonment is on and happens"
        if max_attempts > 1:
            assert (calls["attempts"] > 1).any(), "some callers redial"

        # Waits are recorded once a call leaves the hotline (answered or gave up for
        # good). A call still on the hotline at the horizon has waited, within
        # [its call, horizon], at most horizon - t_call and at least nothing.
        resolved = calls["answered_h"].notna() | calls["abandoned_h"].notna()
        assert calls.loc[resolved, "hotline_wait_total_h"].notna().all()
        recorded = float(calls.loc[resolved, "hotline_wait_total_h"].sum())
        open_bound = float((horizon - calls.loc[~resolved, "t_call_h"]).sum())
        open_at_horizon += int((~resolved).sum())
        assert recorded - 1e-9 <= area <= recorded + open_bound + 1e-9
        if max_attempts == 1:
            # One attempt: an unresolved call has been waiting since it was made, so
            # the identity is exact.
            assert area == pytest.approx(recorded + open_bound, rel=1e-12, abs=1e-9)

        # L = lambda W: the time-average number waiting against calls per hour times
        # the mean total wait per call (finished calls). They differ only by the few
        # calls open at the horizon.
        queue_length = area / horizon
        lam = len(calls) / horizon
        mean_wait = float(calls.loc[resolved, "hotline_wait_total_h"].mean())
        print(
            f"replication {replication}: L = {queue_length:.6g}, lambda W = {lam * mean_wait:.6g}, "
            f"recorded {recorded:.6g} h, area {area:.6g} h, open calls {int((~resolved).sum())}"
        )
        assert queue_length == pytest.approx(lam * mean_wait, rel=0.01)
        # The same with attempts: attempts per hour times the mean wait per attempt.
        attempts = float(calls["attempts"].sum())
        per_attempt = recorded / float(calls.loc[resolved, "attempts"].sum())
        assert queue_length == pytest.approx(attempts / horizon * per_attempt, rel=0.01)
    # The horizon falls in a busy hour: the edge case (calls still waiting) is exercised.
    assert open_at_horizon > 0
