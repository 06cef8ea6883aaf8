"""Each travel and promise rule is written once, and its scalar and array forms agree to the bit.

The model works out every call's promise from its nearest station before the run, with
the array forms, and everything else on the way with the scalar forms; a van that leaves
from the promise's station reuses the promise's road km. The golden trace holds only if
both forms give the same bits, which these tests check on real calls and on edge values.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from sim.model.demand import draw_call_stream
from sim.model.dispatch import Order
from sim.model.geo import great_circle_km, great_circle_km_array
from sim.model.loading import load_scenario
from sim.model.network import build_network
from sim.model.simulation import Model
from sim.model.travel import Bands, PromiseTable, TravelModel

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quick.yaml"


@pytest.fixture(scope="module")
def quick_model() -> Model:
    scenario = load_scenario(QUICK).with_overrides(horizon={"days": 3, "warmup_days": 0})
    network = build_network(scenario)
    return Model(scenario, network, draw_call_stream(scenario, network, 0))


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(np.asarray(a).view(np.int64), np.asarray(b).view(np.int64)))


def test_haversine_scalar_and_array_agree_to_the_bit() -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    lat1, lon1 = rng.uniform(18, 53, n), rng.uniform(73, 135, n)
    # Near pairs (a van's trip), far pairs, identical points and antipodes.
    lat2 = np.concatenate(
        [lat1[: n // 2] + rng.normal(0, 0.3, n // 2), rng.uniform(-90, 90, n // 2)]
    )
    lon2 = np.concatenate(
        [lon1[: n // 2] + rng.normal(0, 0.3, n // 2), rng.uniform(-180, 180, n // 2)]
    )
    lat2[:10], lon2[:10] = lat1[:10], lon1[:10]
    lat2[10:20], lon2[10:20] = -lat1[10:20], lon1[10:20] - 180.0
    scalar = np.array(
        [
            great_circle_km(*p)
            for p in zip(*(x.tolist() for x in (lat1, lon1, lat2, lon2)), strict=True)
        ]
    )
    assert _same_bits(great_circle_km_array(lat1, lon1, lat2, lon2), scalar)
    assert (scalar[:10] == 0.0).all()


def test_road_km_speed_and_promise_forms_agree_to_the_bit(quick_model: Model) -> None:
    travel, promises = quick_model.travel, quick_model.promises
    gc = np.concatenate([[0.0, 1e-9, 5.0], np.random.default_rng(3).exponential(40.0, 5000)])
    road = travel.road_km_array(gc)
    assert _same_bits(road, np.array([travel.road_km(x) for x in gc.tolist()]))
    # Band edges exactly, just either side of them, and far beyond the last.
    edges = [15.0, 60.0, 50.0, 100.0, 150.0, 300.0]
    probe = np.concatenate(
        [road, edges, np.nextafter(edges, 0.0), np.nextafter(edges, 1e9), [0.0, 1e6]]
    )
    speeds = travel.speed_kmh_array(probe)
    assert _same_bits(speeds, np.array([travel.speed_kmh(x) for x in probe.tolist()]))
    hours = promises.arrival_h_array(probe)
    assert _same_bits(hours, np.array([promises.arrival_h(x) for x in probe.tolist()]))


def test_bands_put_a_limit_in_the_band_below() -> None:
    bands = Bands([10.0, 20.0], [1.0, 2.0, 3.0])
    x = np.array([0.0, 10.0, np.nextafter(10.0, 11.0), 20.0, 20.5, 1e9])
    expected = [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    assert [bands.at(v) for v in x.tolist()] == expected
    assert bands.at_array(x).tolist() == expected
    with pytest.raises(ValueError, match="2 band limits need 3 values"):
        Bands([10.0, 20.0], [1.0, 2.0])


def test_drive_hours_are_road_over_speed_by_band_and_hour(quick_model: Model) -> None:
    cfg = quick_model.scenario.travel
    travel = TravelModel(cfg)
    band_speed = {b.up_to_km: b.speed_kmh for b in cfg.speed_bands}
    first_limit = cfg.speed_bands[0].up_to_km
    assert first_limit is not None
    road = first_limit  # a limit belongs to the band it closes
    factor = cfg.hourly_speed_factor[7]
    expected = road / (band_speed[first_limit] * factor * 0.5) * 1.2
    assert travel.drive_h(road, 7.9, 1.2, 0.5) == pytest.approx(expected, rel=1e-15)
    assert travel.trip(3.0, 7.9, 1.2, 0.5) == (
        travel.road_km(3.0),
        travel.drive_h(travel.road_km(3.0), 7.9, 1.2, 0.5),
    )
    promises = PromiseTable(quick_model.scenario.promises.arrival)
    assert promises.arrival_h(0.0) == quick_model.scenario.promises.arrival[0].hours


def test_each_calls_precomputed_promise_is_the_rules_answer(quick_model: Model) -> None:
    """The promise worked out for all calls at once equals the scalar rule, call by call."""
    view, stream = quick_model.view, quick_model.stream
    nearest = stream.candidates[:, 0]
    km = view.station_road_km_array(nearest, stream.lat, stream.lon)
    assert len(km) > 300
    scalar_km = [
        view.station_road_km(int(s), float(a), float(b))
        for s, a, b in zip(nearest, stream.lat, stream.lon, strict=True)
    ]
    assert _same_bits(km, np.array(scalar_km))
    hours = quick_model.promises.arrival_h_array(km)
    assert _same_bits(hours, np.array([quick_model.promises.arrival_h(x) for x in scalar_km]))
    # With a station shut, the next open one sets the promise, worked out on the spot.
    t0 = float(stream.t_call_h[0])
    order = Order(
        0,
        float(stream.lat[0]),
        float(stream.lon[0]),
        t0,
        t0,
        0,
        0,
        stream.candidates[0],
        stream.candidate_km[0],
        quick_model.env.event(),
    )
    assert view.arrival_promise(order) == (int(nearest[0]), scalar_km[0], float(hours[0]))
    view.station_open[nearest[0]] = False
    view.all_open = False
    try:
        station, promise_km, promise_h = view.arrival_promise(order)
        assert station == int(stream.candidates[0, 1])
        assert promise_km == view.station_road_km(station, order.lat, order.lon)
        assert promise_h == quick_model.promises.arrival_h(promise_km)
    finally:
        view.station_open[nearest[0]] = True
        view.all_open = True


# The text of each rule, as it stands once in sim/ (a second copy, spelt out, would match).
RULES = {
    "haversine": r"sin\(\(p2 - p1\) / 2\)",
    "road km": r"\(1\.0 \+ [a-z_.]*extra \* [a-z_.]*exp\(",
    "band lookup": r"bisect_left[,(]",
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule_is_written_once(rule: str) -> None:
    pattern = re.compile(RULES[rule])
    hits = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "sim").rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if pattern.search(line) and not line.lstrip().startswith("#")
    ]
    assert len(hits) == 1, hits
