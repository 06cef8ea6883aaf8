"""A surge slows every drive that starts or ends in its region, and overlapping surges
keep a station shut until the last one that shut it ends.

Hand-worked cases on a tiny network with everything fixed: no detour (road km = great
circle), one speed band of 100 km/h, no hour-of-day factor, no travel noise, no turn-out,
no contact delay, a six-minute call and a one-hour repair.

One degree of latitude is pi / 180 x 6371.009 km = 111.1951 km (the haversine along a
meridian), so a drive of one degree north or south takes 1.111951 h at 100 km/h, and
2.223902 h in a surge with a speed factor of 0.5.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sim.model.demand import draw_call_stream
from sim.model.dispatch import DispatchView, Van
from sim.model.dispatch.policies import NearestStation
from sim.model.loading import load_scenario
from sim.model.network import build_network
from sim.model.scenario import Scenario
from sim.model.simulation import Model

ROOT = Path(__file__).resolve().parents[1]
DEG_KM = math.pi / 180 * 6371.009  # 111.1951 km
ONE_DEGREE_H = DEG_KM / 100.0  # at 100 km/h
IDLE, RETURNING, RELOCATING = "idle", "returning", "relocating"
SLOW = 0.5
# The station and the breakdowns, in Henan (the seats of quick.yaml's prefectures).
STATION = (33.0, 113.0)
SITE = (34.0, 113.0)  # one degree north of the station
CALL_H = 1.0
HANDLING_H = 0.1
REPAIR_H = 1.0


def _fixed(value: float) -> dict[str, Any]:
    return {"dist": "fixed", "value": value}


def _scenario(
    tmp_path: Path,
    stations: list[tuple[str, float, float, int]],
    surges: list[dict[str, Any]],
    *,
    on_site_fix: float = 1.0,
) -> Scenario:
    csv = tmp_path / "stations.csv"
    pd.DataFrame(stations, columns=["id", "lat", "lon", "vans"]).assign(workshop_bays=1).to_csv(
        csv, index=False
    )
    data = load_scenario(ROOT / "scenarios" / "quick.yaml").model_dump(by_alias=True)
    data["horizon"] = {"days": 2, "warmup_days": 0}
    data["network"] = {"stations": {"csv": csv}, "vans": {"total": None}}
    data["travel"] = {
        "detour_factor": 1.0,
        "short_trip_detour_extra": 0.0,
        "speed_bands": [{"up_to_km": None, "speed_kmh": 100.0}],
        "hourly_speed_factor": [1.0] * 24,
        "noise_cv": 0.0,
    }
    ops = data["stations"]
    for name in ("contact_delay_min", "turnout_day_min", "turnout_night_min", "tow_wait_h"):
        ops[name] = _fixed(0.0)
    ops["tow_speed_kmh"] = 50.0
    hotline = data["hotline"]
    hotline["handling_time_min"] = _fixed(HANDLING_H * 60)
    hotline["patience_min"] = None
    hotline["remote_diagnosis_share"] = 0.0
    for fault in data["demand"]["fault_classes"]:
        fault["on_site_fix_probability"] = on_site_fix
        fault["part_missing_probability"] = 0.0
        fault["repair_time_min"] = _fixed(REPAIR_H * 60)
        fault["workshop_repair_h"] = _fixed(1.0)
    data["contractors"]["accept_probability"] = 0.0
    data["surges"] = surges
    return Scenario.model_validate(data)


def _flood(
    lat: float, lon: float, start_day: float, duration_h: float, **extra: Any
) -> dict[str, Any]:
    return {
        "name": extra.pop("name", "flood"),
        "region": {"center_lat": lat, "center_lon": lon, "radius_km": 20.0},
        "start_day": start_day,
        "duration_h": duration_h,
        "speed_factor": SLOW,
        **extra,
    }


def _run(scenario: Scenario, calls: list[tuple[float, float, float]], policy: Any = None) -> Model:
    network = build_network(scenario)
    frame = pd.DataFrame(calls, columns=["t_call_h", "lat", "lon"])
    stream = draw_call_stream(scenario, network, 0, calls=frame)
    model = Model(scenario, network, stream, policy)
    model.run()
    model.finalize()
    return model


def _states(model: Model, van: int = 0) -> list[tuple[float, str]]:
    units = model.unit_log.to_frame()
    mine = units[units["van"] == van]
    return list(zip(mine["t_h"].astype(float), mine["state"].astype(str), strict=True))


def test_a_van_leaving_the_flooded_area_drives_home_at_the_surges_speed(tmp_path: Path) -> None:
    # The flood covers the breakdown, not the station, for the whole run.
    scenario = _scenario(tmp_path, [("A", *STATION, 1)], [_flood(*SITE, 0, 48)])
    model = _run(scenario, [(CALL_H, *SITE)])
    rec = model.records
    slow_h = ONE_DEGREE_H / SLOW  # 2.223902 h
    assert slow_h == pytest.approx(2.223902, abs=1e-6)
    # Out: answered at 1.0 + 0.1, no turn-out, 2.2239 h into the flood.
    assert rec.arrived_h[0] == pytest.approx(CALL_H + HANDLING_H + slow_h, abs=1e-9)
    released = CALL_H + HANDLING_H + slow_h + REPAIR_H  # 4.323902 h
    assert rec.van_released_h[0] == pytest.approx(released, abs=1e-9)
    # Back: out of the flood at its speed too, home at 6.547803 h (not 5.435853 h).
    states = _states(model)
    assert (pytest.approx(released), RETURNING) in states
    assert states[-1] == (pytest.approx(released + slow_h, abs=1e-9), IDLE)
    assert released + slow_h == pytest.approx(6.547803, abs=1e-6)


def test_a_drive_out_of_a_flooded_station_is_slow_and_the_drive_home_after_the_flood_is_not(
    tmp_path: Path,
) -> None:
    # The flood covers the station from hour 0 to hour 3: the van leaves it slowly, and
    # comes back (at 4.32 h, after the flood) at full speed.
    scenario = _scenario(tmp_path, [("A", *STATION, 1)], [_flood(*STATION, 0, 3)])
    model = _run(scenario, [(CALL_H, *SITE)])
    out_h = ONE_DEGREE_H / SLOW
    assert model.records.arrived_h[0] == pytest.approx(CALL_H + HANDLING_H + out_h, abs=1e-9)
    released = CALL_H + HANDLING_H + out_h + REPAIR_H
    assert _states(model)[-1] == (pytest.approx(released + ONE_DEGREE_H, abs=1e-9), IDLE)


def test_a_tow_out_of_the_flooded_area_goes_at_the_surges_speed(tmp_path: Path) -> None:
    # Nothing is fixed on site: the truck is towed 111.2 km to the station's workshop at
    # 50 km/h x 0.5, 4.447803 h (2.223902 h without the flood).
    scenario = _scenario(tmp_path, [("A", *STATION, 1)], [_flood(*SITE, 0, 48)], on_site_fix=0.0)
    model = _run(scenario, [(CALL_H, *SITE)])
    rec = model.records
    released = CALL_H + HANDLING_H + ONE_DEGREE_H / SLOW + REPAIR_H
    assert rec.tow_km[0] == pytest.approx(DEG_KM, abs=1e-9)
    tow_h = DEG_KM / (50.0 * SLOW)
    assert tow_h == pytest.approx(4.447803, abs=1e-6)
    assert rec.tow_arrived_h[0] == pytest.approx(released + tow_h, abs=1e-9)


class _MoveOnAfterJob(NearestStation):
    """The published rule, and every van free after a job moves to station B."""

    name = "test_move_on_after_job"

    def on_van_idle(self, view: DispatchView, van: Van) -> int | None:
        return 1


def test_a_move_up_out_of_the_flooded_area_goes_at_the_surges_speed(tmp_path: Path) -> None:
    # Station B is 1.5 degrees north of the breakdown (A, 1 degree south, takes the
    # call): A's van drives on to B from the flooded site at half speed, 3.335853 h
    # (1.667927 h without the flood).
    station_b = (SITE[0] + 1.5, SITE[1])
    scenario = _scenario(
        tmp_path, [("A", *STATION, 1), ("B", *station_b, 1)], [_flood(*SITE, 0, 48)]
    )
    model = _run(scenario, [(CALL_H, *SITE)], _MoveOnAfterJob())
    released = CALL_H + HANDLING_H + ONE_DEGREE_H / SLOW + REPAIR_H
    states = _states(model)
    assert (pytest.approx(released), RELOCATING) in states
    move_h = 1.5 * ONE_DEGREE_H / SLOW
    assert move_h == pytest.approx(3.335853, abs=1e-6)
    assert states[-1] == (pytest.approx(released + move_h, abs=1e-9), IDLE)


def test_overlapping_surges_keep_a_station_shut_until_both_end(tmp_path: Path) -> None:
    # Two floods shut station A (each shuts every station in its region): the first from
    # hour 0 to 10, the second from hour 5 to 20. Station B, one degree south of A, is
    # outside both. A call at A's door at hour 12 must go to B (A still shut by the
    # second flood): B's van drives one degree north into the second flood, at half
    # speed, 2.223902 h. At hour 22 both have ended: A's van takes the call on its
    # doorstep (no drive at all).
    station_b = (STATION[0] - 1.0, STATION[1])
    first = _flood(*STATION, 0, 10, name="first", stations_shut_fraction=1.0)
    second = _flood(*STATION, 5 / 24, 15, name="second", stations_shut_fraction=1.0)
    scenario = _scenario(tmp_path, [("A", *STATION, 1), ("B", *station_b, 1)], [first, second])
    model = _run(scenario, [(12.0, *STATION), (22.0, *STATION)])
    rec = model.records
    assert rec.station.tolist() == [1, 0]
    assert rec.van.tolist() == [1, 0]
    assert rec.arrived_h[0] == pytest.approx(12.0 + HANDLING_H + ONE_DEGREE_H / SLOW, abs=1e-9)
    assert rec.arrived_h[1] == pytest.approx(22.0 + HANDLING_H, abs=1e-9)
    assert bool(model.view.station_open.all())


def test_a_station_shut_by_two_surges_opens_when_the_last_ends(tmp_path: Path) -> None:
    first = _flood(*STATION, 0, 10, name="first", stations_shut_fraction=1.0)
    second = _flood(*STATION, 5 / 24, 15, name="second", stations_shut_fraction=1.0)
    scenario = _scenario(tmp_path, [("A", *STATION, 1)], [first, second])
    network = build_network(scenario)
    calls = pd.DataFrame({"t_call_h": [47.0], "lat": [34.0], "lon": [113.0]})
    stream = draw_call_stream(scenario, network, 0, calls=calls)
    model = Model(scenario, network, stream)
    seen = []
    for hour in (4.0, 9.0, 12.0, 19.0, 21.0):
        model.advance(hour)
        seen.append(bool(model.view.station_open[0]))
    assert seen == [False, False, False, False, True]
    assert np.array_equal(model.view.station_open, [True])
