"""Road travel-time matrices (travel.matrix, rescue-sim travel-matrix): docs/travel.md.

* A matrix written by ``travel-matrix`` and read back gives the travel model's records,
  bit for bit, for calls at the prefecture seats (the matrix's zone points).
* A blocked corridor (a river with no bridge: huge minutes from one station to one
  prefecture) moves that prefecture's calls to another station, and no other call.
* A bad matrix ends with one line naming the file, the line (or row) and the column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.experiments.runs.run import ReplicationResult, run_replication
from sim.model.demand import draw_call_stream
from sim.model.dispatch import Order
from sim.model.geo import great_circle_km
from sim.model.loading import load_scenario, with_fields
from sim.model.network import build_network
from sim.model.scenario import Scenario
from sim.model.simulation import Model
from sim.model.travel import TravelModel
from sim.model.travel_matrix import StationLegs, implied_matrix, load_travel_matrix
from sim.outputs.travel_matrix_file import write_travel_matrix
from tests.cli_checks import QUICK, one_error_line
from tests.test_golden_trace import table_digest

runner = CliRunner()


def _at_seats(**fields: object) -> Scenario:
    """scenarios/quick.yaml with every call at its prefecture's seat (no scatter)."""
    return with_fields(load_scenario(QUICK), {"demand.spatial.scatter_km": 0.0, **fields})


def _records(result: ReplicationResult) -> dict[str, str]:
    return {"calls": table_digest(result.calls), "units": table_digest(result.units)}


def _with_matrix(scenario: Scenario, path: Path) -> Scenario:
    return with_fields(scenario, {"travel.matrix": str(path)})


def _quick_at_seats_file(tmp_path: Path, coverage: float) -> Path:
    """scenarios/quick.yaml as a file, every call at its seat, ``coverage`` of prefectures."""
    text = QUICK.read_text(encoding="utf-8")
    text = text.replace("coverage_target: 1.0", f"coverage_target: {coverage}")
    text = text.replace("  calls_per_day: 130", "  spatial: {scatter_km: 0}\n  calls_per_day: 130")
    path = tmp_path / "quick_at_seats.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
@pytest.mark.parametrize(
    "coverage",
    [
        # The quick scenario itself: every prefecture has a station at its seat.
        pytest.param(1.0, id="every_prefecture"),
        # Three of Henan's 17 without one: their calls are driven by the matrix's factors
        # (a station at the seat keeps the travel model, so the case above never is).
        pytest.param(0.8, id="three_without"),
    ],
)
def test_the_implied_matrix_read_back_gives_the_same_records(
    tmp_path: Path, suffix: str, coverage: float
) -> None:
    scenario_file = _quick_at_seats_file(tmp_path, coverage)
    scenario = load_scenario(scenario_file)
    assert scenario.demand.spatial.scatter_km == 0
    path = tmp_path / f"od{suffix}"
    result = runner.invoke(app, ["travel-matrix", str(scenario_file), "--out", str(path)])
    assert result.exit_code == 0, result.output
    with_matrix = _with_matrix(scenario, path)
    network = build_network(with_matrix)
    assert network.travel_matrix is not None and network.travel_matrix.n_pairs > 0
    assert _records(run_replication(with_matrix, 0, network=network)) == _records(
        run_replication(scenario, 0)
    )


def test_a_drive_away_from_the_seat_takes_the_pairs_factors(tmp_path: Path) -> None:
    scenario = load_scenario(QUICK)
    network = build_network(scenario)
    travel = TravelModel(scenario.travel)
    frame = implied_matrix(network, travel, 4)
    frame["road_km"] *= 1.5
    frame["minutes"] *= 2.0
    matrix = load_travel_matrix(write_travel_matrix(frame, tmp_path / "od.csv"), network, travel)
    # Zhengzhou's seat is area 0 (adcode 410100); a call 30 km north-east of it.
    seat = network.areas.iloc[0]
    lat, lon = float(seat["lat"]) + 0.2, float(seat["lon"]) + 0.2
    station = int(
        network.nearest_stations(np.array([seat["lat"]]), np.array([seat["lon"]]), 4)[0][0, 3]
    )
    legs = StationLegs(matrix, travel, network, np.array([0]))
    model_road, model_drive = travel.trip(
        great_circle_km(network.station_lat[station], network.station_lon[station], lat, lon),
        9.5,
        1.1,
    )
    road, drive = legs.trip(station, 0, lat, lon, 9.5, 1.1)
    assert road == pytest.approx(1.5 * model_road, rel=1e-12)
    assert drive == pytest.approx(2.0 * model_drive, rel=1e-12)
    # A pair the matrix lacks keeps the travel model.
    far = int(
        network.nearest_stations(np.array([seat["lat"]]), np.array([seat["lon"]]), 10)[0][0, 9]
    )
    assert legs.trip(far, 0, lat, lon, 9.5, 1.1) == travel.trip(
        great_circle_km(network.station_lat[far], network.station_lon[far], lat, lon), 9.5, 1.1
    )


def _uncovered_area(scenario: Scenario) -> tuple[int, int, str]:
    """A prefecture with no station of its own, its nearest station and its adcode."""
    network = build_network(scenario)
    own = set(network.station_area.tolist())
    area = next(a for a in range(len(network.areas)) if a not in own)
    seat = network.areas.iloc[[area]]
    nearest, _ = network.nearest_stations(
        seat["lat"].to_numpy(float), seat["lon"].to_numpy(float), 1
    )
    return area, int(nearest[0, 0]), str(seat["adcode"].iat[0])


def test_a_blocked_corridor_moves_the_calls_behind_it(tmp_path: Path) -> None:
    # Three of Henan's 17 prefectures without a station: their calls come from a neighbour.
    scenario = _at_seats(**{"network.stations.generate.coverage_target": 0.8})
    _, blocked, adcode = _uncovered_area(scenario)
    network = build_network(scenario)
    frame = implied_matrix(network, TravelModel(scenario.travel), 16)
    river = (frame["origin"] == network.station_name[blocked]) & (frame["destination"] == adcode)
    assert river.any()
    frame.loc[river, "minutes"] *= 1000.0  # no bridge: the long way round
    path = write_travel_matrix(frame, tmp_path / "river.parquet")

    before = run_replication(scenario, 0).calls
    after = run_replication(_with_matrix(scenario, path), 0).calls
    behind = (before["adcode"].astype(str) == adcode).to_numpy()
    served = before["station"].to_numpy() >= 0
    assert (before["station"].to_numpy()[behind & served] == blocked).all()
    assert (behind & served).sum() > 0
    moved = after["station"].to_numpy()[behind & served]
    assert (moved != blocked).all() and (moved >= 0).all()
    # Every other call keeps its station (the published rule: the nearest by road time).
    others = ~behind & served
    assert np.array_equal(before["station"].to_numpy()[others], after["station"].to_numpy()[others])


def test_the_policies_estimates_see_the_blocked_corridor(tmp_path: Path) -> None:
    # nearest_station_with_backup, contractor_overflow and preparedness estimate a
    # station's arrival with DispatchView.station_drive_h; nearest_idle_van with
    # estimated_arrival_h.
    scenario = _at_seats(**{"network.stations.generate.coverage_target": 0.8})
    _, blocked, adcode = _uncovered_area(scenario)
    network = build_network(scenario)
    frame = implied_matrix(network, TravelModel(scenario.travel), 16)
    river = (frame["origin"] == network.station_name[blocked]) & (frame["destination"] == adcode)
    frame.loc[river, "minutes"] *= 1000.0
    with_river = _with_matrix(scenario, write_travel_matrix(frame, tmp_path / "river.parquet"))
    network = build_network(with_river)
    stream = draw_call_stream(with_river, network, 0)
    call = int(np.flatnonzero(network.areas["adcode"].to_numpy()[stream.area] == adcode)[0])
    order = Order(
        call, float(stream.lat[call]), float(stream.lon[call]), 10.0, 10.0, 0, 0,
        stream.candidates[call], stream.candidate_km[call], None,  # type: ignore[arg-type]
    )  # fmt: skip
    view = Model(with_river, network, stream).view
    km = great_circle_km(
        network.station_lat[blocked], network.station_lon[blocked], order.lat, order.lon
    )
    travel = TravelModel(with_river.travel)
    model_h = travel.expected_drive_h(travel.road_km(km), 10.5)
    assert view.station_drive_h(blocked, km, order, 10.5) == pytest.approx(1000 * model_h)
    van = next(v for v in view.vans if v.station == blocked)
    assert view.estimated_arrival_h(van, order) > 500 * model_h
    assert blocked not in stream.candidates[call][:1]


def test_the_model_drives_by_the_matrix(tmp_path: Path) -> None:
    # Roads 1.5 times longer and twice as slow as the travel model says, everywhere: the
    # stations' order is unchanged, and the calls of the prefectures without a station of
    # their own (the others are served from their seat, where the matrix is not used)
    # are driven 1.5 times farther in twice the time.
    scenario = _at_seats(**{"network.stations.generate.coverage_target": 0.8})
    network = build_network(scenario)
    frame = implied_matrix(network, TravelModel(scenario.travel), 32)
    frame["road_km"] *= 1.5
    frame["minutes"] *= 2.0
    path = write_travel_matrix(frame, tmp_path / "slow.parquet")
    before = run_replication(scenario, 0).calls
    after = run_replication(_with_matrix(scenario, path), 0).calls
    assert before["station"].equals(after["station"])
    own = set(network.areas["adcode"].to_numpy()[network.station_area].tolist())
    behind = ~before["adcode"].isin(own).to_numpy() & (before["road_km"] > 0).to_numpy()
    assert behind.sum() > 10
    km_ratio = after["road_km"].to_numpy()[behind] / before["road_km"].to_numpy()[behind]
    hourly = np.asarray(scenario.travel.hourly_speed_factor)

    def free_flow_drive_h(calls: pd.DataFrame) -> np.ndarray:
        """Drive hours at the hour's speed factor 1 (a departure may move to another hour)."""
        departed = calls["departed_h"].to_numpy()[behind]
        drive = calls["arrived_h"].to_numpy()[behind] - departed
        return drive * hourly[np.nan_to_num(departed).astype(int) % 24]

    from_base = np.isclose(km_ratio, 1.5, rtol=1e-9) & ~after["arrived_h"].isna().to_numpy()[behind]
    assert from_base.mean() > 0.5
    ratio = free_flow_drive_h(after)[from_base] / free_flow_drive_h(before)[from_base]
    assert np.allclose(ratio, 2.0, rtol=1e-6)


# --------------------------------------------------------------------------- bad matrices

HEADER = "origin,destination,from_hour,to_hour,road_km,minutes\n"
GOOD_ROWS = "郑州市-1,410200,0,24,70.5,80.25\n郑州市-2,410200,0,24,75,85\n"


def _scenario_with_matrix(tmp_path: Path, name: str = "od.csv") -> Path:
    text = QUICK.read_text(encoding="utf-8") + f"travel:\n  matrix: {name}\n"
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _refused(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    return one_error_line(result.stdout, result.stderr)


CSV_CASES = [
    ("unknown_station", "nowhere-1,410200,0,24,1,1\n", 2, "origin",
     "no station named 'nowhere-1' (nor with that index) in the network"),
    ("station_index_out_of_range", "60,410200,0,24,1,1\n", 2, "origin",
     "no station named '60' (nor with that index) in the network"),
    ("unknown_adcode", "郑州市-1,999999,0,24,1,1\n", 2, "destination",
     "'999999' is no prefecture adcode (seeds/prefectures.csv)"),
    ("hour_past_the_day", "郑州市-1,410200,24,24,1,1\n", 2, "from_hour",
     "must be at most 23: '24'"),
    ("fractional_hour", "郑州市-1,410200,0.5,24,1,1\n", 2, "from_hour",
     "must be a whole number: '0.5'"),
    ("empty_band", "郑州市-1,410200,5,5,1,1\n", 2, "to_hour",
     "to_hour 5 must be after from_hour 5"),
    ("overlapping_bands", "郑州市-1,410200,0,12,1,1\n郑州市-1,410300,6,24,1,1\n", 3, "from_hour",
     "hour band 6-24 overlaps band 0-12; bands must not overlap"),
    ("negative_minutes", GOOD_ROWS + "郑州市-3,410200,0,24,1,-3\n", 4, "minutes",
     "must be at least 0: '-3'"),
    ("not_a_number", GOOD_ROWS + "郑州市-3,410200,0,24,far,3\n", 4, "road_km",
     "not a number: 'far'"),
    ("repeated_row", GOOD_ROWS + "郑州市-1,410200,0,24,70,80\n", 4, "origin",
     "station, prefecture and hour band repeated (first on line 2)"),
    ("point_without_demand_csv", GOOD_ROWS + "郑州市-1,point:0,0,24,1,1\n", 4, "destination",
     "'point:0': the scenario has no demand CSV (demand.spatial.csv)"),
    ("malformed_point", "郑州市-1,point:07,0,24,1,1\n", 2, "destination",
     "'point:07': a demand point is point:N, N its row in the demand CSV counted from 0"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rows", "line", "field", "message"), [pytest.param(*c[1:], id=c[0]) for c in CSV_CASES]
)
def test_a_bad_row_is_named_by_line_and_column(
    tmp_path: Path, rows: str, line: int, field: str, message: str
) -> None:
    (tmp_path / "od.csv").write_text(HEADER + rows, encoding="utf-8")
    scenario = _scenario_with_matrix(tmp_path)
    assert _refused(["validate", str(scenario)]) == (
        f"error: {tmp_path / 'od.csv'}:{line}: {field}: {message}"
    )


def test_a_missing_column_and_a_missing_file(tmp_path: Path) -> None:
    (tmp_path / "od.csv").write_text("origin,destination,from_hour,to_hour,road_km\n", "utf-8")
    scenario = _scenario_with_matrix(tmp_path)
    assert _refused(["validate", str(scenario)]) == (
        f"error: {tmp_path / 'od.csv'}:1: the travel matrix lacks columns ['minutes']"
    )
    scenario = _scenario_with_matrix(tmp_path, "absent.parquet")
    line = len(QUICK.read_text(encoding="utf-8").splitlines()) + 2
    assert _refused(["validate", str(scenario)]) == (
        f"error: {scenario}:{line}: travel.matrix: file not found: absent.parquet"
    )


def test_a_bad_parquet_row_is_named_by_its_row(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "origin": ["郑州市-1", "郑州市-2"],
            "destination": ["410200", "410200"],
            "from_hour": [0, 0],
            "to_hour": [24, 24],
            "road_km": [70.0, float("nan")],
            "minutes": [80.0, 85.0],
        }
    )
    frame.to_parquet(tmp_path / "od.parquet")
    scenario = _scenario_with_matrix(tmp_path, "od.parquet")
    assert _refused(["validate", str(scenario)]) == (
        f"error: {tmp_path / 'od.parquet'}: road_km: row 2: missing value"
    )
    frame.loc[1, "road_km"] = 75.0
    frame.loc[0, "minutes"] = -3.0
    frame.to_parquet(tmp_path / "od.parquet")
    assert _refused(["validate", str(scenario)]) == (
        f"error: {tmp_path / 'od.parquet'}: minutes: row 1: must be at least 0: -3.0"
    )
    (tmp_path / "od.parquet").write_bytes(b"not parquet at all")
    line = _refused(["validate", str(scenario)])
    assert line.startswith(f"error: {tmp_path / 'od.parquet'}: not a readable Parquet file: ")


def test_a_good_matrix_validates_and_a_foreign_prefecture_is_left_out(tmp_path: Path) -> None:
    # 420100 (Wuhan) lies outside the Henan scenario: a national matrix serves it.
    rows = GOOD_ROWS + "郑州市-1,420100,0,24,500,400\n"
    (tmp_path / "od.csv").write_text(HEADER + rows, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(_scenario_with_matrix(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "3 rows, 2 station-prefecture pairs, 1 hour bands" in result.output


def test_travel_matrix_refuses_an_unknown_format(tmp_path: Path) -> None:
    out = tmp_path / "od.xlsx"
    assert _refused(["travel-matrix", str(QUICK), "--out", str(out)]) == (
        "error: --out: name a .parquet or .csv file"
    )
    assert not out.exists()


def test_the_result_store_key_follows_the_matrix_file(tmp_path: Path) -> None:
    from sim.experiments.runs.keys import input_digests

    (tmp_path / "od.csv").write_text(HEADER + GOOD_ROWS, encoding="utf-8")
    scenario = _with_matrix(load_scenario(QUICK), tmp_path / "od.csv")
    first = input_digests(scenario)["travel.matrix"]
    (tmp_path / "od.csv").write_text(HEADER + GOOD_ROWS.replace("80.25", "90"), encoding="utf-8")
    assert input_digests(scenario)["travel.matrix"] != first
