"""The call stream: reproducible, common across policies, one named stream per quantity.

docs/architecture.md, principles 2, 3 and 7: every random input is drawn up front from
(seed, replication, stream name); the same scenario and seed give identical draws in any
process; a change of policy or of one unrelated distribution shifts no other draw; a
recorded call list can replace the drawn times and places.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sim import Scenario, ScenarioError, load_scenario
from sim.model.call_volume import expected_calls_per_day
from sim.model.demand import (
    CallStream,
    draw_call_stream,
    hourly_rates,
    read_call_trace,
)
from sim.model.loading import with_fields
from sim.model.network import Network, build_network

TESTS = Path(__file__).resolve().parent
QUICK = TESTS.parent / "scenarios" / "quick.yaml"
FIELDS = [f.name for f in fields(CallStream)]


def stream_digests(stream: CallStream) -> dict[str, str]:
    """sha256 of every column: its name, dtype, shape and bytes."""
    out = {}
    for name in FIELDS:
        array = np.ascontiguousarray(getattr(stream, name))
        h = hashlib.sha256()
        h.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        h.update(array.tobytes())
        out[name] = h.hexdigest()
    return out


def draw_from_file(path: str | Path, replication: int) -> CallStream:
    scenario = load_scenario(path)
    return draw_call_stream(scenario, build_network(scenario), replication)


_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from test_streams import draw_from_file, stream_digests
print(json.dumps(stream_digests(draw_from_file(sys.argv[2], int(sys.argv[3])))))
"""


@pytest.fixture(scope="module")
def quick() -> Scenario:
    return load_scenario(QUICK)


@pytest.fixture(scope="module")
def network(quick: Scenario) -> Network:
    return build_network(quick)


@pytest.fixture(scope="module")
def stream(quick: Scenario, network: Network) -> CallStream:
    return draw_call_stream(quick, network, 0)


def _changed(a: CallStream, b: CallStream) -> set[str]:
    return {
        name
        for name in FIELDS
        if not np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True)
    }


def _override(scenario: Scenario, section: str, path: list[Any], value: Any) -> Scenario:
    """A copy with one nested value replaced (``path`` inside top-level ``section``)."""
    data = scenario.model_dump(by_alias=True)[section]
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return scenario.with_overrides(**{section: data})


# --------------------------------------------------------------------------- shape


def test_stream_shape(quick: Scenario, stream: CallStream) -> None:
    n = len(stream)
    assert n > 0
    attempts = quick.hotline.max_attempts
    for name in FIELDS:
        column = getattr(stream, name)
        assert len(column) == n, name
    for name in ("handling_h", "patience_h", "redial_u", "redial_delay_h"):
        assert getattr(stream, name).shape == (n, attempts)
    assert stream.candidates.shape == (n, quick.dispatch.candidates)
    assert (np.diff(stream.t_call_h) >= 0).all()
    assert stream.t_call_h.min() >= 0 and stream.t_call_h.max() < quick.horizon.hours
    assert (stream.surge == -1).all()
    assert set(np.unique(stream.fault)) == {0, 1, 2}
    assert (stream.handling_h > 0).all()


def test_equals_detects_one_changed_value(stream: CallStream) -> None:
    assert stream.equals(stream)
    bumped = stream.repair_h.copy()
    bumped[-1] = np.nextafter(bumped[-1], np.inf)
    assert not stream.equals(replace(stream, repair_h=bumped))


# --------------------------------------------------------------------------- reproducibility


def test_same_seed_same_stream_in_other_processes(stream: CallStream) -> None:
    here = stream_digests(stream)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(TESTS), str(QUICK), "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        for hash_seed in ("0", "4242")
    ]
    digests = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        digests.append(json.loads(stdout))
    assert digests[0] == digests[1]
    assert digests[0] == here


def test_same_seed_same_stream_in_process(quick: Scenario, network: Network) -> None:
    a = draw_call_stream(quick, network, 1)
    b = draw_call_stream(load_scenario(QUICK), build_network(load_scenario(QUICK)), 1)
    assert a.equals(b)
    assert stream_digests(a) == stream_digests(b)


def test_replications_differ(quick: Scenario, network: Network, stream: CallStream) -> None:
    other = draw_call_stream(quick, network, 1)
    assert not stream.equals(other)
    changed = _changed(stream, other)
    assert {"t_call_h", "lat", "lon", "handling_h", "repair_h", "complaint_u"} <= changed
    assert stream_digests(stream)["t_call_h"] != stream_digests(other)["t_call_h"]


def test_seed_changes_the_stream(quick: Scenario, network: Network, stream: CallStream) -> None:
    other = draw_call_stream(quick.with_overrides(seed=quick.seed + 1), network, 0)
    assert not stream.equals(other)


# --------------------------------------------------------------------------- common random numbers


@pytest.mark.parametrize("policy", ["nearest_idle_van", "nearest_station"])
def test_policy_change_keeps_the_stream(
    quick: Scenario, network: Network, stream: CallStream, policy: str
) -> None:
    changed = _override(quick, "dispatch", ["policy"], policy)
    assert changed.dispatch.policy == policy
    assert draw_call_stream(changed, network, 0).equals(stream)


_LOGNORMAL = {"dist": "lognormal", "mean": 2.0, "cv": 0.5}


@pytest.mark.parametrize(
    ("section", "path", "value", "expected"),
    [
        pytest.param(
            "complaints",
            ["work_time_h"],
            {"dist": "gamma", "mean": 2.0, "cv": 1.0},
            {"complaint_work_h"},
            id="complaint_work_time",
        ),
        pytest.param(
            "hotline",
            ["handling_time_min"],
            {"dist": "lognormal", "mean": 9.0, "cv": 0.3},
            {"handling_h"},
            id="handling_time",
        ),
        pytest.param(
            "hotline",
            ["patience_min"],
            {"dist": "uniform", "low": 1.0, "high": 9.0},
            {"patience_h"},
            id="patience",
        ),
        pytest.param(
            "hotline",
            ["redial_delay_min"],
            {"dist": "fixed", "value": 3.0},
            {"redial_delay_h"},
            id="redial_delay",
        ),
        pytest.param(
            "stations",
            ["contact_delay_min"],
            {"dist": "fixed", "value": 5.0},
            {"contact_delay_h"},
            id="contact_delay",
        ),
        pytest.param(
            "stations",
            ["tow_wait_h"],
            _LOGNORMAL,
            {"tow_wait_h"},
            id="tow_wait",
        ),
        pytest.param(
            "travel",
            ["noise_cv"],
            0.1,
            {"drive_noise", "return_noise"},
            id="travel_noise",
        ),
        pytest.param(
            "stations",
            ["turnout_night_min"],
            {"dist": "fixed", "value": 25.0},
            {"turnout_night_h"},
            id="turnout_night",
        ),
        pytest.param(
            "stations",
            ["turnout_day_min"],
            {"dist": "fixed", "value": 15.0},
            {"turnout_day_h"},
            id="turnout_day",
        ),
        pytest.param(
            "demand",
            ["fault_classes", 2, "repair_time_min"],
            {"dist": "gamma", "mean": 200.0, "cv": 0.7},
            {"repair_h"},
            id="repair_time_of_the_last_class",
        ),
    ],
)
def test_one_distribution_changes_one_column(
    quick: Scenario,
    network: Network,
    stream: CallStream,
    section: str,
    path: list[Any],
    value: Any,
    expected: set[str],
) -> None:
    other = draw_call_stream(_override(quick, section, path, value), network, 0)
    assert _changed(stream, other) == expected


def test_repair_time_of_one_class_leaves_other_classes(
    quick: Scenario, network: Network, stream: CallStream
) -> None:
    changed = _override(
        quick, "demand", ["fault_classes", 0, "repair_time_min"], {"dist": "fixed", "value": 45.0}
    )
    other = draw_call_stream(changed, network, 0)
    assert (other.repair_h[other.fault == 0] == 45.0 / 60.0).all()
    keep = stream.fault != 0
    np.testing.assert_array_equal(other.repair_h[keep], stream.repair_h[keep])
    np.testing.assert_array_equal(other.fix_u, stream.fix_u)


_FLOOD = {
    "name": "flood",
    "region": {"center_lat": 34.75, "center_lon": 113.62, "radius_km": 100},
    "start_day": 2,
    "duration_h": 72,
    "demand_multiplier": 5,
}


def test_surge_keeps_the_ordinary_call_times(
    quick: Scenario, network: Network, stream: CallStream
) -> None:
    surged = draw_call_stream(quick.with_overrides(surges=[_FLOOD]), network, 0)
    ordinary = surged.surge < 0
    assert ordinary.sum() == len(stream)
    assert (~ordinary).sum() > 50
    np.testing.assert_array_equal(surged.t_call_h[ordinary], stream.t_call_h)
    in_surge = surged.t_call_h[~ordinary]
    assert in_surge.min() >= 48.0 and in_surge.max() < 48.0 + 72.0


def test_surge_keeps_the_ordinary_call_places(
    quick: Scenario, network: Network, stream: CallStream
) -> None:
    surged = draw_call_stream(quick.with_overrides(surges=[_FLOOD]), network, 0)
    ordinary = surged.surge < 0
    np.testing.assert_array_equal(surged.lat[ordinary], stream.lat)
    np.testing.assert_array_equal(surged.lon[ordinary], stream.lon)


# --------------------------------------------------------------------------- volume


def test_arrival_counts_match_the_expected_rate(quick: Scenario, network: Network) -> None:
    days = quick.horizon.days
    per_day = expected_calls_per_day(quick)
    assert per_day == quick.demand.calls_per_day == 130
    assert hourly_rates(quick).sum() == pytest.approx(per_day * days)
    mean = per_day * days  # Poisson: variance = mean
    replications = 20
    counts = np.array([len(draw_call_stream(quick, network, r)) for r in range(replications)])
    assert counts.std() > 0
    assert np.abs(counts - mean).max() <= 5 * math.sqrt(mean)
    total_mean = mean * replications
    assert abs(counts.sum() - total_mean) <= 4 * math.sqrt(total_mean)


def test_arrivals_follow_the_hour_of_day_profile(quick: Scenario, network: Network) -> None:
    times = np.concatenate([draw_call_stream(quick, network, r).t_call_h for r in range(10)])
    profile = np.asarray(quick.demand.hour_of_day_profile, dtype=float)
    night_hours = [*range(16, 24), *range(0, 8)]
    p = profile[night_hours].sum() / profile.sum()
    assert 0.4 < p < 0.6  # docs/architecture.md: about 55% of truck jobs between 16:00 and 08:00
    night = np.isin(np.floor(times).astype(int) % 24, night_hours)
    n = len(times)
    assert abs(night.sum() - n * p) <= 4 * math.sqrt(n * p * (1 - p))


def test_fleet_volume(quick: Scenario, network: Network) -> None:
    demand = quick.demand.model_dump(by_alias=True)
    demand["calls_per_day"] = None
    demand["fleet"] = {"vehicles": 73_000, "calls_per_vehicle_year": 1.0}
    scenario = quick.with_overrides(demand=demand)
    assert expected_calls_per_day(scenario) == pytest.approx(200.0)
    n = len(draw_call_stream(scenario, network, 0))
    assert abs(n - 200.0 * 7) <= 4 * math.sqrt(200.0 * 7)


# --------------------------------------------------------------------------- trace replay


def _names(quick: Scenario) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.array([f.name for f in quick.demand.fault_classes]),
        np.array([s.name for s in quick.demand.segments]),
    )


def test_trace_replay_reproduces_times_and_places(
    tmp_path: Path, quick: Scenario, network: Network
) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(
        "t_call_h,lat,lon,fault,segment\n"
        "30.5,34.75,113.62,major,fleet\n"
        "2.25,32.99,112.53,routine,individual\n"
        "100.0,35.10,114.30,general,special_vehicle\n"
        "2.5,34.62,112.45,routine,fleet\n",
        encoding="utf-8",
    )
    table = read_call_trace(path)
    replayed = draw_call_stream(quick, network, 0, calls=table)
    assert len(replayed) == 4
    np.testing.assert_array_equal(replayed.t_call_h, [2.25, 2.5, 30.5, 100.0])
    np.testing.assert_array_equal(replayed.lat, [32.99, 34.62, 34.75, 35.10])
    np.testing.assert_array_equal(replayed.lon, [112.53, 112.45, 113.62, 114.30])
    faults, segments = _names(quick)
    assert faults[replayed.fault].tolist() == ["routine", "routine", "major", "general"]
    expected_segments = ["individual", "fleet", "fleet", "special_vehicle"]
    assert segments[replayed.segment].tolist() == expected_segments
    assert (replayed.surge == -1).all()
    index, km = network.nearest_stations(replayed.lat, replayed.lon, quick.dispatch.candidates)
    np.testing.assert_array_equal(replayed.candidates, index)
    np.testing.assert_array_equal(replayed.candidate_km, km)
    area_names = network.areas["name"].to_numpy()[replayed.area]
    assert area_names[2] == "郑州市"


@pytest.mark.parametrize("with_kinds", [True, False], ids=["with_kinds", "times_places_only"])
def test_replaying_a_drawn_stream_gives_it_back(
    tmp_path: Path, quick: Scenario, network: Network, with_kinds: bool
) -> None:
    original = draw_call_stream(quick, network, 2)
    faults, segments = _names(quick)
    table = pd.DataFrame({"t_call_h": original.t_call_h, "lat": original.lat, "lon": original.lon})
    if with_kinds:
        table["fault"] = faults[original.fault]
        table["segment"] = segments[original.segment]
    path = tmp_path / "trace.csv"
    table.sample(frac=1.0, random_state=3).to_csv(path, index=False)  # shuffled rows
    replayed = draw_call_stream(quick, network, 2, calls=read_call_trace(path))
    assert replayed.equals(original), _changed(original, replayed)


def test_trace_with_a_bad_row_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text("t_call_h,lat,lon\n1.0,34.7,113.6\n2.0,95.0,113.6\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        read_call_trace(path)
    assert info.value.line == 3
    assert info.value.file == str(path)


def test_trace_with_an_unknown_fault(tmp_path: Path, quick: Scenario, network: Network) -> None:
    path = tmp_path / "calls.csv"
    path.write_text("t_call_h,lat,lon,fault\n1.0,34.7,113.6,flat_tyre\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        draw_call_stream(quick, network, 0, calls=read_call_trace(path))
    assert "flat_tyre" in info.value.message
    assert info.value.field == "fault"


def test_missing_trace(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        read_call_trace(tmp_path / "absent.csv")
    assert info.value.file == str(tmp_path / "absent.csv")


def test_start_date_sets_the_weekday_of_day_0(quick: Scenario) -> None:
    """Day 0 on a Saturday takes the profile's Saturday; without a date day 0 is a Monday."""
    monday = hourly_rates(with_fields(quick, {"horizon.days": 7}))
    saturday = hourly_rates(
        with_fields(quick, {"horizon.start_date": "2021-07-17", "horizon.days": 7})
    )
    assert quick.horizon.start_date is None and quick.horizon.start_weekday == 0
    # Saturday is weekday 5: the Saturday run's day 0 is the Monday run's day 5.
    assert np.array_equal(saturday[:24], monday[5 * 24 : 6 * 24])
    assert np.array_equal(saturday[2 * 24 : 3 * 24], monday[:24])  # then Monday again
    assert not np.array_equal(saturday[:24], monday[:24])
