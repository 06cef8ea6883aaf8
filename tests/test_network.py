"""The rescue network: stations, vans and coverage, generated or read from a CSV."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sim import ScenarioError, load_scenario, parse_scenario
from sim.cli import app
from sim.model.network import Network, build_network
from sim.model.reference import PREFECTURE_COUNT

ROOT = Path(__file__).resolve().parents[1]
NATIONAL = ROOT / "scenarios" / "dongfeng_light_truck.yaml"
QUICK = ROOT / "scenarios" / "quick.yaml"


@pytest.fixture(scope="module")
def national() -> Network:
    return build_network(load_scenario(NATIONAL))


def _scenario_in(tmp_path: Path, text: str, csv_text: str | None = None) -> Path:
    if csv_text is not None:
        (tmp_path / "stations.csv").write_text(textwrap.dedent(csv_text).lstrip("\n"), "utf-8")
    path = tmp_path / "scenario.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), "utf-8")
    return path


# --------------------------------------------------------------------------- national


def test_national_network_matches_the_published_network(national: Network) -> None:
    assert national.n_stations >= 1000
    assert national.n_vans == 2000
    assert len(national.areas) == PREFECTURE_COUNT == 337
    assert national.prefecture_coverage() >= 0.90
    # Coverage counted by hand: areas holding at least one station.
    covered = np.unique(national.station_area)
    assert covered.min() >= 0
    assert len(covered) / 337 == pytest.approx(national.prefecture_coverage())
    # Every municipality has a station.
    municipal = np.flatnonzero((national.areas["kind"] == "municipality").to_numpy())
    assert set(municipal.tolist()) <= set(covered.tolist())


def test_national_arrays_are_consistent(national: Network) -> None:
    n = national.n_stations
    for column in (
        national.station_name,
        national.station_lat,
        national.station_lon,
        national.station_area,
        national.vans_per_station,
        national.workshop_bays,
    ):
        assert len(column) == n
    assert len(set(national.station_name.tolist())) == n
    assert (national.workshop_bays == 2).all()
    assert national.index.size == n
    van_station = national.van_station
    assert len(van_station) == 2000
    assert np.bincount(van_station, minlength=n).tolist() == national.vans_per_station.tolist()
    # Stations stand in China, near their own area's seat.
    assert national.station_lat.min() > 3 and national.station_lat.max() < 54
    assert national.station_lon.min() > 73 and national.station_lon.max() < 136


def test_network_generation_is_deterministic(national: Network) -> None:
    again = build_network(load_scenario(NATIONAL))
    np.testing.assert_array_equal(again.station_lat, national.station_lat)
    np.testing.assert_array_equal(again.station_lon, national.station_lon)
    np.testing.assert_array_equal(again.vans_per_station, national.vans_per_station)


def test_validate_prints_the_network_figures(national: Network) -> None:
    result = CliRunner().invoke(app, ["validate", str(NATIONAL)])
    assert result.exit_code == 0, result.output
    text = result.stdout

    def figure(label: str, pattern: str = r"([\d,.]+)") -> str:
        match = re.search(rf"^\W*{label}\W+{pattern}", text, flags=re.MULTILINE)
        assert match, f"no {label!r} row in:\n{text}"
        return match.group(1)

    stations = int(figure("stations"))
    vans = int(figure("vans"))
    coverage = float(figure("prefectures covered", r"([\d.]+)% of 337"))
    assert stations == national.n_stations >= 1000
    assert vans == national.n_vans == 2000
    assert coverage == pytest.approx(100 * national.prefecture_coverage(), abs=0.05)
    assert coverage >= 90.0
    assert "scenario is valid" in text


# --------------------------------------------------------------------------- vans


@pytest.mark.parametrize(
    ("allocation", "total", "minimum"),
    [("demand", 110, 1), ("demand", 200, 3), ("equal", 150, 2), ("equal", 60, 1)],
)
def test_van_allocation(allocation: str, total: int, minimum: int) -> None:
    scenario = load_scenario(QUICK)
    network_cfg = scenario.network.model_dump(by_alias=True)
    network_cfg["vans"] = {"total": total, "allocation": allocation, "min_per_station": minimum}
    net = build_network(scenario.with_overrides(network=network_cfg))
    assert net.n_stations == 60
    assert int(net.vans_per_station.sum()) == net.n_vans == total
    assert net.vans_per_station.min() >= minimum
    if allocation == "equal":
        assert net.vans_per_station.max() - net.vans_per_station.min() <= 1
    else:  # demand: the most populous area gets more vans than the least populous
        weight = net.areas["population_weight"].to_numpy()
        per_area = np.bincount(
            net.station_area, weights=net.vans_per_station, minlength=len(weight)
        )
        assert per_area[np.argmax(weight)] > per_area[np.argmin(weight)]


def test_national_allocation_respects_minimum(national: Network) -> None:
    assert national.vans_per_station.min() >= 1
    assert national.vans_per_station.max() > 1


def test_too_few_vans_for_the_minimum() -> None:
    scenario = load_scenario(QUICK)
    network_cfg = scenario.network.model_dump(by_alias=True)
    network_cfg["vans"] = {"total": 100, "min_per_station": 2}
    with pytest.raises(ScenarioError) as info:
        build_network(scenario.with_overrides(network=network_cfg))
    assert info.value.field == "network.vans.total"


def test_generated_stations_need_a_van_total() -> None:
    scenario = load_scenario(QUICK)
    network_cfg = scenario.network.model_dump(by_alias=True)
    network_cfg["vans"] = {"total": None}
    with pytest.raises(ScenarioError) as info:
        build_network(scenario.with_overrides(network=network_cfg))
    assert info.value.field == "network.vans.total"


# --------------------------------------------------------------------------- CSV


SCENARIO_WITH_CSV = """
name: csv_network
geography:
  provinces: [河南省]
  include_municipalities: false
network:
  stations:
    csv: stations.csv
  vans:
    total: {total}
demand:
  calls_per_day: 50
"""

GOOD_CSV = """
id,lat,lon,vans,workshop_bays
zhengzhou,34.7466,113.6253,3,4
luoyang,34.6197,112.4540,2,1
kaifeng,34.7971,114.3076,1,0
"""


def test_stations_csv_loads(tmp_path: Path) -> None:
    path = _scenario_in(tmp_path, SCENARIO_WITH_CSV.format(total="null"), GOOD_CSV)
    net = build_network(load_scenario(path))
    assert net.n_stations == 3
    assert net.station_name.tolist() == ["zhengzhou", "luoyang", "kaifeng"]
    np.testing.assert_array_equal(net.station_lat, [34.7466, 34.6197, 34.7971])
    np.testing.assert_array_equal(net.station_lon, [113.6253, 112.4540, 114.3076])
    assert net.vans_per_station.tolist() == [3, 2, 1]
    assert net.workshop_bays.tolist() == [4, 1, 0]
    areas = net.areas["name"].to_numpy()
    assert areas[net.station_area].tolist() == ["郑州市", "洛阳市", "开封市"]
    assert net.prefecture_coverage() == pytest.approx(3 / 17)


def test_stations_csv_with_a_van_total(tmp_path: Path) -> None:
    path = _scenario_in(tmp_path, SCENARIO_WITH_CSV.format(total=10), GOOD_CSV)
    net = build_network(load_scenario(path))
    assert net.n_vans == 10
    assert net.vans_per_station.min() >= 1


def test_stations_csv_without_optional_columns(tmp_path: Path) -> None:
    csv_text = "id,lat,lon\nA,34.7466,113.6253\nB,34.6197,112.4540\n"
    path = _scenario_in(tmp_path, SCENARIO_WITH_CSV.format(total=4), csv_text)
    net = build_network(load_scenario(path))
    assert net.workshop_bays.tolist() == [2, 2]
    assert net.n_vans == 4


def test_stations_csv_bad_lat_names_the_csv_line(tmp_path: Path) -> None:
    csv_text = GOOD_CSV.replace("34.6197", "134.6197")  # data row 2 = line 3
    path = _scenario_in(tmp_path, SCENARIO_WITH_CSV.format(total="null"), csv_text)
    with pytest.raises(ScenarioError) as info:
        build_network(load_scenario(path))
    error = info.value
    assert error.file == str(tmp_path / "stations.csv")
    assert error.line == 3
    assert error.field == "lat"
    assert str(error).startswith(f"{tmp_path / 'stations.csv'}:3: lat: ")


def test_stations_csv_negative_vans(tmp_path: Path) -> None:
    csv_text = GOOD_CSV.replace("kaifeng,34.7971,114.3076,1,0", "kaifeng,34.7971,114.3076,-1,0")
    path = _scenario_in(tmp_path, SCENARIO_WITH_CSV.format(total="null"), csv_text)
    with pytest.raises(ScenarioError) as info:
        build_network(load_scenario(path))
    assert (info.value.line, info.value.field) == (4, "vans")


def test_stations_csv_missing_column(tmp_path: Path) -> None:
    csv_text = "id,latitude,lon\nA,34.7,113.6\n"
    path = _scenario_in(tmp_path, SCENARIO_WITH_CSV.format(total=2), csv_text)
    with pytest.raises(ScenarioError) as info:
        build_network(load_scenario(path))
    assert info.value.line == 1
    assert "lat" in info.value.message


def test_stations_csv_non_numeric_lat_names_the_csv_line(tmp_path: Path) -> None:
    csv_text = GOOD_CSV.replace("34.6197", "north")
    path = _scenario_in(tmp_path, SCENARIO_WITH_CSV.format(total="null"), csv_text)
    with pytest.raises(ScenarioError) as info:
        build_network(load_scenario(path))
    assert (info.value.line, info.value.field) == (3, "lat")


def test_stations_csv_must_exist_relative_to_the_scenario(tmp_path: Path) -> None:
    text = SCENARIO_WITH_CSV.format(total=2)
    with pytest.raises(ScenarioError) as info:
        parse_scenario(textwrap.dedent(text).lstrip("\n"), tmp_path / "scenario.yaml")  # no CSV
    assert info.value.field == "network.stations.csv"
    assert info.value.line == 7
