"""Where the calls land: on land, inside the prefecture cell they were drawn for.

The national scenario's month of calls is drawn (no simulation: the demand generator
alone, about a second) and checked against the province outlines and prefecture cells of
seeds/province_outlines.geojson and the 2020 census by province (docs/demand.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom
from typer.testing import CliRunner

from sim import load_scenario
from sim.cli import app
from sim.model.demand import (
    CallStream,
    _area_cells,
    _arrivals,
    _scatter,
    _scatter_in_cells,
    draw_call_stream,
)
from sim.model.geo import SpatialIndex
from sim.model.network import Network, build_network
from sim.model.outlines import read_outlines
from sim.model.reference import default_scenario_path
from sim.model.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quick.yaml"
CENSUS = ROOT / "seeds" / "census2020_provinces.csv"
runner = CliRunner()

MAX_OFF_LAND = 0.002  # outside every outline: the outlines' simplification tolerance
MAX_OTHER_PROVINCE = 0.005  # recorded in another province than the point lies in
CENSUS_TOLERANCE = 0.001  # 0.1 percentage points


@pytest.fixture(scope="module")
def national() -> tuple[Scenario, Network, CallStream]:
    scenario = load_scenario(default_scenario_path())
    network = build_network(scenario)
    return scenario, network, draw_call_stream(scenario, network, 0)


def _province(codes: np.ndarray) -> np.ndarray:
    return np.array([str(code)[:2] for code in codes.tolist()])


def test_a_national_month_of_calls_lies_on_land_in_its_own_province(
    national: tuple[Scenario, Network, CallStream],
) -> None:
    scenario, network, stream = national
    assert scenario.horizon.days == 30 and len(stream) > 50_000
    where = read_outlines().locate(stream.lat, stream.lon)
    off_land = float(np.mean(where == ""))
    assert off_land <= MAX_OFF_LAND, off_land
    recorded = network.area_columns["adcode"].astype(str)[stream.area]
    on_land = where != ""
    other = float(np.mean(on_land & (_province(where) != _province(recorded))))
    assert other <= MAX_OTHER_PROVINCE, other


def test_every_call_lies_in_the_cell_of_the_prefecture_it_records(
    national: tuple[Scenario, Network, CallStream],
) -> None:
    _, network, stream = national
    codes = network.area_columns["adcode"].astype(str)
    cells = read_outlines().cells_by_adcode
    at_seat = (stream.lat == network.area_columns["lat"][stream.area]) & (
        stream.lon == network.area_columns["lon"][stream.area]
    )
    outside = 0
    for a in np.unique(stream.area):
        mine = np.flatnonzero((stream.area == a) & ~at_seat)
        outside += int((~cells[codes[a]].contains(stream.lat[mine], stream.lon[mine])).sum())
    assert outside == 0
    # Only a seat outside its own cell falls back to it, and no seat is (Sansha's disc
    # holds its seat): the bounded redraws always found a place.
    assert int(at_seat.sum()) == 0


def test_every_prefectures_share_of_calls_is_its_weight_share(
    national: tuple[Scenario, Network, CallStream],
) -> None:
    _, network, stream = national
    weight = network.area_columns["population_weight"].astype(float)
    p = weight / weight.sum()
    n = len(stream)
    calls = np.bincount(stream.area, minlength=len(p))
    # The binomial 99% interval of each prefecture's count. With 337 prefectures about
    # three are expected outside their own interval by chance alone (1% each): a few
    # more would still be chance, a systematic shift (the nearest-seat rule moved
    # 21-39% of a municipality's calls) puts dozens outside.
    low, high = binom.ppf(0.005, n, p), binom.ppf(0.995, n, p)
    outside = np.flatnonzero((calls < low) | (calls > high))
    assert len(outside) <= 8, network.area_columns["name"][outside].tolist()
    # And the largest gap is a sampling gap: well inside 1.5x the 99% half-width.
    half = (high - low) / 2
    assert np.max(np.abs(calls - n * p) / np.maximum(half, 1)) < 1.5


@pytest.mark.slow
def test_the_recorded_province_shares_are_the_census_shares(
    national: tuple[Scenario, Network, CallStream],
) -> None:
    # 20 national months pooled (1.2 M calls, about 10 s of drawing): one month's 60,000
    # calls give Henan's share a standard error of 0.1 pt by chance alone; 20 bring the
    # largest provinces' to 0.024 pt, so 0.1 pt is some 4 standard errors.
    scenario, network, _ = national
    census = pd.read_csv(CENSUS, dtype={"adcode": str}).set_index("province")["population_2020"]
    census_share = census / census.sum()
    area = np.concatenate([_arrivals(scenario, network, r)["area"] for r in range(20)])
    province = network.area_columns["province"].astype(str)[area]
    share = pd.Series(province).value_counts(normalize=True)
    gap = (share.reindex(census_share.index, fill_value=0.0) - census_share).abs()
    assert gap.max() <= CENSUS_TOLERANCE, gap.sort_values().tail(3).to_dict()


def test_the_calls_that_fell_inside_keep_their_first_draw() -> None:
    quick = load_scenario(QUICK)
    network = build_network(quick)
    assert draw_call_stream(quick, network, 0).equals(draw_call_stream(quick, network, 0))
    seat_lat = network.area_columns["lat"].astype(float)
    seat_lon = network.area_columns["lon"].astype(float)
    area = np.random.default_rng(3).integers(0, len(seat_lat), 5000)
    first_lat, first_lon = _scatter(np.random.default_rng(4), seat_lat[area], seat_lon[area], 60)
    cells = _area_cells(network)
    lat, lon = _scatter_in_cells(np.random.default_rng(4), area, seat_lat, seat_lon, 60, cells)
    first_inside = cells.contains(area, first_lat, first_lon)
    assert 0.2 < first_inside.mean() < 0.9  # 60 km around Henan's seats: many fall outside
    np.testing.assert_array_equal(lat[first_inside], first_lat[first_inside])
    np.testing.assert_array_equal(lon[first_inside], first_lon[first_inside])
    assert cells.contains(area, lat, lon).all()
    assert not np.any(lat[~first_inside] == first_lat[~first_inside])


def test_a_trace_keeps_its_places_and_records_the_cell_that_holds_each() -> None:
    quick = load_scenario(QUICK)
    network = build_network(quick)
    # Near Zhengzhou's seat, in Luoyang's cell, across the border in Hubei (no cell of
    # quick.yaml's areas) and in the Yellow Sea: the last two take the nearest seat.
    lat = np.array([34.80, 34.62, 31.9, 35.0])
    lon = np.array([113.70, 112.45, 112.2, 123.0])
    calls = pd.DataFrame({"t_call_h": [1.0, 2.0, 3.0, 4.0], "lat": lat, "lon": lon})
    stream = draw_call_stream(quick, network, 0, calls=calls)
    np.testing.assert_array_equal(stream.lat, lat)
    np.testing.assert_array_equal(stream.lon, lon)
    codes = network.area_columns["adcode"].astype(str)
    assert codes[stream.area[:2]].tolist() == ["410100", "410300"]
    assert read_outlines().locate_cells(lat, lon).tolist() == ["410100", "410300", "420600", ""]
    nearest = SpatialIndex(network.area_columns["lat"], network.area_columns["lon"])
    np.testing.assert_array_equal(stream.area[2:], nearest.nearest(lat[2:], lon[2:], 1)[0][:, 0])


def test_validate_warns_of_trace_calls_at_sea(tmp_path: Path) -> None:
    trace = tmp_path / "calls.csv"
    trace.write_text(
        "time,lat,lon\n"
        "2021-07-17 08:00,34.75,113.62\n"
        "2021-07-17 09:00,35.00,123.00\n"  # the Yellow Sea
        "2021-07-17 10:00,34.80,113.70\n"
        "2021-07-17 11:00,30.00,124.50\n",  # the East China Sea
        encoding="utf-8",
    )
    scenario = tmp_path / "s.yaml"
    text = QUICK.read_text(encoding="utf-8").replace(
        "  calls_per_day: 130     # Henan's share (~6.5%) of ~2000 national calls a day\n",
        "  calls_per_day: 130\n  trace:\n    file: calls.csv\n",
    )
    assert "trace:" in text
    scenario.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(scenario)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: calls.csv: 2 of 4 calls lie outside every province outline "
        "(at sea or abroad), the first on line 3"
    ]
    assert "scenario is valid" in result.output
    # A trace on land: no warning.
    trace.write_text("time,lat,lon\n2021-07-17 08:00,34.75,113.62\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", str(scenario)])
    assert result.exit_code == 0 and "warning:" not in result.output


def _cells_and_seats(network: Network) -> tuple[Any, np.ndarray, np.ndarray]:
    """The network's area cells, and the seats' latitudes and longitudes."""
    columns = network.area_columns
    return _area_cells(network), columns["lat"].astype(float), columns["lon"].astype(float)


def test_the_circles_around_the_seats_only_spare_tests(
    national: tuple[Scenario, Network, CallStream],
) -> None:
    # The same answers as testing every place against its cell's rings.
    cells, seat_lat, seat_lon = _cells_and_seats(national[1])
    rng = np.random.default_rng(5)
    area = rng.integers(0, len(seat_lat), 100_000)
    lat, lon = _scatter(rng, seat_lat[area], seat_lon[area], 83)
    expected = np.zeros(len(area), dtype=bool)
    for a in np.unique(area):
        mine = area == a
        expected[mine] = cells.regions[a].contains(lat[mine], lon[mine])  # type: ignore[union-attr]
    got = cells.contains(area, lat, lon)
    np.testing.assert_array_equal(got, expected)
    assert 0.2 < expected.mean() < 0.8
    skipped = (lon - seat_lon[area]) ** 2 + (lat - seat_lat[area]) ** 2
    assert np.mean((skipped < cells.inner2[area]) | (skipped > cells.outer2[area])) > 0.3


def test_places_all_settled_by_the_circles_need_no_ring(
    national: tuple[Scenario, Network, CallStream],
) -> None:
    # Every place at its seat (inside the inner circle) or far away (beyond the outer):
    # no ring is tested. It raised "zip() argument 2 is longer than argument 1" (a short
    # run of the double-11 scenario redrew a handful of calls that were all such places).
    cells, seat_lat, seat_lon = _cells_and_seats(national[1])
    area = np.array([0, 1, 2])
    at_seat = cells.contains(area, seat_lat[area], seat_lon[area])
    assert at_seat.all()
    far = cells.contains(area, seat_lat[area] + 30.0, seat_lon[area])
    assert not far.any()
    nothing = cells.contains(area[:0], seat_lat[:0], seat_lon[:0])
    assert nothing.shape == (0,)


def test_a_short_double11_run_places_its_calls() -> None:
    from sim.experiments.runs.arguments import shortened_horizon
    from sim.experiments.runs.replication import run_replication

    path = default_scenario_path().parent / "double11_logistics_peak.yaml"
    scenario = load_scenario(path)
    scenario = scenario.with_overrides(horizon=shortened_horizon(scenario, 2), replications=1)
    result = run_replication(scenario, 0)
    assert len(result.calls) > 0
