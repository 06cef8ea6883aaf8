"""Roads from an OpenStreetMap extract (sim/model/roads.py, docs/travel.md).

The extracts are written here with pyosmium: a hand-made one of four places, and grids of
roads over Henan (scenarios/quick.yaml's province; benchmarks/roads.py), node places
jittered so that no two routes tie.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from benchmarks.roads import grid_class, grid_nodes, outside_boxes, write_grid_extract
from sim.cli import app
from sim.model import road_read, roads
from sim.model.demand import draw_call_stream
from sim.model.geo import great_circle_km_array
from sim.model.loading import load_scenario, with_fields
from sim.model.network import Network, build_network
from sim.model.outlines import read_outlines
from sim.model.roads import Box, Router, read_roads
from sim.model.travel import TravelModel
from tests.cli_checks import QUICK, one_error_line, tree

runner = CliRunner()
ROWS, COLS = 54, 67  # about 10 km apart over Henan
HAND = {  # node id: (lat, lon); A to D by motorway through B, or by a tertiary road through C
    1: (34.0, 113.0),
    2: (34.3, 113.5),
    3: (33.95, 113.5),
    4: (34.0, 114.0),
}


def _haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle km on the sphere of radius 6371.009 km (sim.model.geo.EARTH_RADIUS_KM)."""
    (lat1, lon1), (lat2, lon2) = (map(math.radians, p) for p in (a, b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.009 * math.asin(math.sqrt(h))


def _hand_extract(path: Path) -> None:
    import osmium

    with osmium.SimpleWriter(str(path), overwrite=True) as writer:
        for node, (lat, lon) in HAND.items():
            writer.add_node(osmium.osm.mutable.Node(id=node, location=(lon, lat)))
        # A motorway is one way (A to D) unless tagged otherwise.
        writer.add_way(osmium.osm.mutable.Way(id=1, nodes=[1, 2, 4], tags={"highway": "motorway"}))
        writer.add_way(osmium.osm.mutable.Way(id=2, nodes=[1, 3], tags={"highway": "tertiary"}))
        writer.add_way(
            osmium.osm.mutable.Way(id=3, nodes=[3, 4], tags={"highway": "tertiary_link"})
        )


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A grid of roads over Henan, one way per segment (so that one can be left out)."""
    path = tmp_path_factory.mktemp("osm") / "henan_grid.osm.pbf"
    write_grid_extract(path, ROWS, COLS)
    return path


def test_drive_times_equal_a_hand_computed_shortest_path(tmp_path: Path) -> None:
    path = tmp_path / "hand.osm.pbf"
    _hand_extract(path)
    router = Router(read_roads(path, Box(33, 112, 35, 115)))
    node, access_km = router.snap(np.array([34.0, 34.0]), np.array([113.0, 114.0]))
    assert access_km.tolist() == [0.0, 0.0]
    minutes, km = router.between(node, node)
    a, b, c, d = HAND.values()
    by_motorway_km = _haversine_km(a, b) + _haversine_km(b, d)
    by_tertiary_km = _haversine_km(a, c) + _haversine_km(c, d)
    by_motorway_min = by_motorway_km / roads.SPEED_KMH["motorway"] * 60
    by_tertiary_min = by_tertiary_km / roads.SPEED_KMH["tertiary"] * 60
    assert by_motorway_min < by_tertiary_min < by_motorway_min * 2  # each way the fastest once
    # A to D by the motorway; back by the tertiary road, the motorway being one way.
    assert minutes[0, 1] == pytest.approx(by_motorway_min, abs=1e-9)
    assert km[0, 1] == pytest.approx(by_motorway_km, abs=1e-9)
    assert minutes[1, 0] == pytest.approx(by_tertiary_min, abs=1e-9)
    assert km[1, 0] == pytest.approx(by_tertiary_km, abs=1e-9)
    assert minutes[0, 0] == km[0, 0] == 0.0
    # A slow motorway (--road-speeds): A to D by the tertiary road too.
    slow = Router(router.graph, roads.parse_speeds("motorway=30"))
    assert slow.between(node, node)[0][0, 1] == pytest.approx(by_tertiary_min, abs=1e-9)
    # Searched back from the targets on the reversed graph: the same routes.
    minutes_back, km_back = router.between(node, node, toward=True)
    assert np.allclose(minutes_back, minutes.T, rtol=0, atol=1e-12)
    assert np.allclose(km_back, km.T, rtol=0, atol=1e-12)


class _OneStation:
    """A network of one station and one prefecture (sim.model.travel_matrix.StationSet)."""

    def __init__(self, station: tuple[float, float], seat: tuple[float, float]) -> None:
        self.station_name = np.array(["A"])
        self.station_lat, self.station_lon = np.array([station[0]]), np.array([station[1]])
        self.areas = pd.DataFrame({"adcode": ["410100"], "lat": [seat[0]], "lon": [seat[1]]})
        self.n_stations = 1

    def nearest_stations(
        self, lat: np.ndarray, lon: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((len(lat), 1), dtype=np.int64), np.zeros((len(lat), 1))


def test_a_demand_points_drive_equals_a_hand_computed_shortest_path(tmp_path: Path) -> None:
    path = tmp_path / "hand.osm.pbf"
    _hand_extract(path)
    router = Router(read_roads(path, Box(33, 112, 35, 115)))
    a, b, c, d = HAND.values()
    # The station at A, the seat at C; point:0 at D, point:1 2.2 km north of C.
    network = _OneStation(a, c)
    point_1 = (33.97, 113.5)
    points = (np.array([d[0], point_1[0]]), np.array([d[1], point_1[1]]))
    travel = TravelModel(load_scenario(QUICK).travel)
    frame, unreachable = roads.road_matrix(network, travel, router, 1, points=points)
    assert len(unreachable) == 0
    assert set(frame["destination"]) == {"410100", "point:0", "point:1"}
    by_motorway_km = _haversine_km(a, b) + _haversine_km(b, d)
    access_km = _haversine_km(point_1, c)
    expected = {  # free-flow km and minutes
        "point:0": (by_motorway_km, by_motorway_km / roads.SPEED_KMH["motorway"] * 60),
        "point:1": (
            _haversine_km(a, c) + access_km,
            _haversine_km(a, c) / roads.SPEED_KMH["tertiary"] * 60 + access_km / 20 * 60,
        ),
    }
    factor = np.asarray(travel.hourly_speed_factor)
    for point, (km, minutes) in expected.items():
        rows = frame[frame["destination"] == point]
        assert len(rows) == frame["from_hour"].nunique() > 1
        assert np.allclose(rows["road_km"], km, rtol=0, atol=1e-9)
        free_min = rows["minutes"] * factor[rows["from_hour"].to_numpy()]
        assert np.allclose(free_min, minutes, rtol=0, atol=1e-9)


def _matrix(extract: Path, out: Path, scenario: Path = QUICK) -> pd.DataFrame:
    result = runner.invoke(
        app, ["travel-matrix", str(scenario), "--osm", str(extract), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "0 station-prefecture" in result.stderr and " pairs have no route" in result.stderr
    return pd.read_parquet(out).set_index(["origin", "destination", "from_hour"])


def _segment_way(r0: int, c0: int, r1: int, c1: int) -> int:
    """The way id of the grid segment between two neighbouring nodes (benchmarks/roads.py)."""
    if r0 == r1:
        return r0 * (COLS - 1) + min(c0, c1) + 1
    return ROWS * (COLS - 1) + c0 * (ROWS - 1) + min(r0, r1) + 1


def test_a_road_removed_changes_exactly_the_pairs_that_used_it(grid: Path, tmp_path: Path) -> None:
    before = _matrix(grid, tmp_path / "before.parquet")
    # The routes of every pair, on the graph the command read.
    network = build_network(load_scenario(QUICK))
    lat, lon = roads.scenario_places(network)
    router = Router(read_roads(grid, Box.around(lat, lon)))
    station, station_km = router.snap(network.station_lat, network.station_lon)
    seat, seat_km = router.snap(network.areas["lat"].to_numpy(), network.areas["lon"].to_numpy())
    index = {str(n): i for i, n in enumerate(network.station_name)}
    adcodes = network.areas["adcode"].astype(str).tolist()
    pairs = sorted({(o, d) for o, d, _ in before.index})
    # The command's searches stop near each station: the same as searching everything.
    # Hour 6 has a speed factor of 1.0: free-flow minutes.
    minutes, km = router.between(station, seat)
    i = np.array([index[o] for o, _ in pairs])
    j = np.array([adcodes.index(d) for _, d in pairs])
    access_km = station_km[i] + seat_km[j]
    at_6 = before.xs(6, level="from_hour").loc[pairs]
    assert np.allclose(at_6["road_km"], km[i, j] + access_km, rtol=0, atol=1e-9)
    assert np.allclose(at_6["minutes"], minutes[i, j] + access_km / 20 * 60, rtol=0, atol=1e-9)
    routes = {
        (o, d): router.route(int(station[index[o]]), int(seat[adcodes.index(d)])) for o, d in pairs
    }
    # The grid segment the most routes use (between two nodes of the grid).
    used: dict[tuple[int, int], int] = {}
    for nodes in routes.values():
        for u, v in itertools.pairwise(nodes):
            key = (min(u, v), max(u, v))
            used[key] = used.get(key, 0) + 1
    u, v = max(used, key=lambda k: used[k])
    grid_lat, grid_lon = grid_nodes(ROWS, COLS, (31.2, 110.2, 36.5, 116.8))
    place = {
        (int(grid_lat[r, c]), int(grid_lon[r, c])): (r, c) for r in range(ROWS) for c in range(COLS)
    }
    g = router.graph
    ends = [
        place[(round(g.node_lat[n] * 10_000_000), round(g.node_lon[n] * 10_000_000))]
        for n in (u, v)
    ]
    removed = _segment_way(*ends[0], *ends[1])
    cut = tmp_path / "cut.osm.pbf"
    write_grid_extract(cut, ROWS, COLS, skip=lambda way: way == removed)
    after = _matrix(cut, tmp_path / "after.parquet")

    through = {
        pair for pair, nodes in routes.items() if {(u, v), (v, u)} & set(itertools.pairwise(nodes))
    }
    assert 0 < len(through) < len(pairs)
    assert before.index.equals(after.index)
    differs = (before != after).any(axis=1)
    changed = {(o, d) for o, d, _ in before.index[differs.to_numpy()]}
    assert changed == through
    # A detour is never shorter in time.
    worse = after["minutes"] - before["minutes"]
    assert (worse >= 0).all(), worse[worse < 0]


def test_every_call_lies_on_a_road_of_an_allowed_class_in_its_prefecture(grid: Path) -> None:
    weights = {"motorway": 4.0, "trunk": 2.0, "primary": 1.0}
    scenario = with_fields(
        load_scenario(QUICK),
        {"demand.spatial.roads": {"osm": str(grid), "class_weight": weights}},
    )
    network = build_network(scenario)
    calls = draw_call_stream(scenario, network, replication=0)
    assert len(calls) > 500
    # Every segment of an allowed class in the extract, as written.
    lat, lon = grid_nodes(ROWS, COLS, (31.2, 110.2, 36.5, 116.8))
    lat, lon = lat / 10_000_000, lon / 10_000_000
    ends = []
    for r in range(ROWS):
        if grid_class(r) in weights:
            ends += [(lat[r, c], lon[r, c], lat[r, c + 1], lon[r, c + 1]) for c in range(COLS - 1)]
    for c in range(COLS):
        if grid_class(c) in weights:
            ends += [(lat[r, c], lon[r, c], lat[r + 1, c], lon[r + 1, c]) for r in range(ROWS - 1)]
    seg = np.array(ends)
    p = np.column_stack([calls.lat, calls.lon])
    a, b = seg[:, :2], seg[:, 2:]
    ab = b - a
    t = ((p[:, None, :] - a[None]) * ab[None]).sum(axis=2) / (ab**2).sum(axis=1)[None]
    nearest = a[None] + np.clip(t, 0, 1)[..., None] * ab[None]
    off_deg = np.sqrt(((p[:, None, :] - nearest) ** 2).sum(axis=2)).min(axis=1)
    assert off_deg.max() < 1e-9
    adcode = network.areas["adcode"].astype(str).to_numpy()[calls.area]
    assert (read_outlines().locate_cells(calls.lat, calls.lon) == adcode).all()
    assert len(set(calls.area.tolist())) == len(adcode.tolist()) or len(set(adcode)) == 17
    # The same replication draws the same places (the run's own stream).
    again = draw_call_stream(scenario, network, replication=0)
    assert np.array_equal(again.lat, calls.lat) and np.array_equal(again.lon, calls.lon)


def test_a_place_whose_segment_leaves_the_cell_moves_to_the_nearer_end() -> None:
    # One segment along the equator whose middle (lon 0.4 to 0.6) lies outside the cell.
    places = roads.RoadPlaces(
        lat0=np.zeros(1),
        lon0=np.zeros(1),
        lat1=np.zeros(1),
        lon1=np.ones(1),
        edge_class=np.zeros(1, dtype=np.int8),
        start=np.array([0, 1]),
        cumulative=np.ones(1),
    )

    def inside(area: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        return ~((lon > 0.4) & (lon < 0.6))

    lat, lon = places.draw(np.random.default_rng(5), np.zeros(2000, dtype=np.int64), inside)
    assert inside(np.zeros(0), lat, lon).all()
    assert (lat == 0).all() and set(lon[(lon >= 0.4) & (lon <= 0.6)].tolist()) == set()
    assert ((lon == 0.0) | (lon == 1.0)).sum() > 100  # about a fifth moved to an end


def test_a_run_on_the_roads_matrix_and_road_demand(grid: Path, tmp_path: Path) -> None:
    matrix_path = tmp_path / "od.parquet"
    _matrix(grid, matrix_path)
    text = QUICK.read_text(encoding="utf-8").replace(
        "  calls_per_day: 130",
        f"  calls_per_day: 130\n  spatial:\n    roads: {{osm: {grid}}}",
    )
    scenario_file = tmp_path / "roads.yaml"
    scenario_file.write_text(text + f"travel:\n  matrix: {matrix_path}\n", encoding="utf-8")
    out = tmp_path / "run"
    args = ["run", str(scenario_file), "--days", "3", "--replications", "2", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = pd.read_json(out / "summary.json", typ="series")
    kpi = summary["kpis"]["on_time_arrival_rate"]
    assert kpi["ci95_low"] <= kpi["mean"] <= kpi["ci95_high"] and kpi["replications"] == 2
    assert "demand.spatial.roads.osm" in summary["input_sha256"]
    # The places come from each replication's own stream: the same on two workers.
    args[-1] = str(tmp_path / "run_on_two")
    assert runner.invoke(app, [*args, "--workers", "2"]).exit_code == 0
    calls_on_two = pd.read_parquet(tmp_path / "run_on_two" / "calls.parquet")
    assert calls_on_two.equals(pd.read_parquet(out / "calls.parquet"))

    # Each drive out from a base: the travel model's km to the call times the pair's km
    # factor, matrix km / model km to the seat (docs/travel.md), for the chosen station.
    scenario = load_scenario(scenario_file)
    network = build_network(scenario)
    travel = TravelModel(scenario.travel)
    calls = pd.read_parquet(out / "calls.parquet")
    calls = calls[(calls["station"] >= 0) & (calls["departed_h"] > calls["assigned_h"])]
    assert len(calls) > 200
    matrix = pd.read_parquet(matrix_path)
    calls = calls.assign(
        origin=network.station_name.astype(str)[calls["station"].to_numpy()],
        destination=calls["adcode"].astype(str),
        hour=np.floor(calls["departed_h"]).astype(int) % 24,
    ).merge(matrix, on=["origin", "destination"], suffixes=("", "_matrix"))
    calls = calls[(calls["hour"] >= calls["from_hour"]) & (calls["hour"] < calls["to_hour"])]
    expected = _scaled_by_seat(network, travel, calls)
    assert np.allclose(calls["road_km"].to_numpy(), expected, rtol=1e-12, atol=0)


def _scaled_by_seat(network: Network, travel: TravelModel, calls: pd.DataFrame) -> np.ndarray:
    """The travel model's km from each call's station to the call times matrix km / model
    km to the seat of its prefecture (``destination``), the matrix's km in ``road_km_matrix``."""
    station = calls["station"].to_numpy()
    seats = network.areas.set_index(network.areas["adcode"].astype(str))

    def model_km(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        gc = great_circle_km_array(
            network.station_lat[station], network.station_lon[station], lat, lon
        )
        km: np.ndarray = travel.road_km_array(gc)
        return km

    to_seat = model_km(
        seats.loc[calls["destination"], "lat"].to_numpy(float),
        seats.loc[calls["destination"], "lon"].to_numpy(float),
    )
    to_call = model_km(calls["lat"].to_numpy(), calls["lon"].to_numpy())
    factor = np.divide(
        calls["road_km_matrix"].to_numpy(), to_seat, out=np.ones(len(to_seat)), where=to_seat > 0
    )
    scaled: np.ndarray = to_call * factor
    return scaled


def _demand_points(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A demand CSV of two points near each seat of quick.yaml, and quick.yaml reading it
    with every call at its point (no scatter)."""
    seats = build_network(load_scenario(QUICK)).areas
    points = pd.DataFrame(
        {
            "lat": np.concatenate([seats["lat"] + 0.12, seats["lat"] - 0.07]),
            "lon": np.concatenate([seats["lon"] - 0.09, seats["lon"] + 0.15]),
            "weight": 1.0,
        }
    )
    points.to_csv(tmp_path / "points.csv", index=False)
    text = QUICK.read_text(encoding="utf-8").replace(
        "  calls_per_day: 130",
        "  calls_per_day: 130\n  spatial: {csv: points.csv, scatter_km: 0}",
    )
    scenario_file = tmp_path / "points.yaml"
    scenario_file.write_text(text, encoding="utf-8")
    return scenario_file, points


def test_a_run_drives_the_calls_at_demand_points_by_the_points_rows(
    grid: Path, tmp_path: Path
) -> None:
    scenario_file, points = _demand_points(tmp_path)
    matrix_path = tmp_path / "od.parquet"
    matrix = _matrix(grid, matrix_path, scenario_file).reset_index()
    to_point = matrix["destination"].str.startswith("point:")
    assert set(matrix["destination"][to_point]) == {f"point:{i}" for i in range(len(points))}
    text = scenario_file.read_text(encoding="utf-8") + f"travel:\n  matrix: {matrix_path}\n"
    scenario_file.write_text(text, encoding="utf-8")
    out = tmp_path / "run"
    args = ["run", str(scenario_file), "--days", "3", "--replications", "2", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output

    # Each drive out from a base: to the call's own point, the matrix's km for the
    # station chosen (every call stands at its point).
    network = build_network(load_scenario(scenario_file))
    calls = pd.read_parquet(out / "calls.parquet")
    calls = calls[(calls["station"] >= 0) & (calls["departed_h"] > calls["assigned_h"])]
    point_of = {(lat, lon): f"point:{i}" for i, lat, lon in points[["lat", "lon"]].itertuples()}
    calls = calls.assign(
        origin=network.station_name.astype(str)[calls["station"].to_numpy()],
        destination=[point_of[p] for p in zip(calls["lat"], calls["lon"], strict=True)],
        hour=np.floor(calls["departed_h"]).astype(int) % 24,
    )
    driven = calls.merge(matrix, on=["origin", "destination"], suffixes=("", "_matrix"))
    driven = driven[(driven["hour"] >= driven["from_hour"]) & (driven["hour"] < driven["to_hour"])]
    assert len(driven) == len(calls) > 200  # every pair is in the matrix
    assert np.allclose(driven["road_km"], driven["road_km_matrix"], rtol=1e-12, atol=0)
    # Not what the prefecture's row, scaled from its seat to the call, would give.
    seat_rows = matrix[~to_point][["origin", "destination", "from_hour", "road_km"]]
    by_seat = (
        driven.drop(columns=["destination", "road_km_matrix"])
        .assign(destination=driven["adcode"].astype(str))
        .merge(seat_rows, on=["origin", "destination", "from_hour"], suffixes=("", "_matrix"))
    )
    assert len(by_seat) > 100
    seat_scaled = _scaled_by_seat(
        network, TravelModel(load_scenario(scenario_file).travel), by_seat
    )
    assert not np.allclose(by_seat["road_km"], seat_scaled, rtol=0.01, atol=0)


def test_a_bad_demand_csv_is_one_line_before_the_extract_is_read(
    grid: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario_file, _ = _demand_points(tmp_path)
    (tmp_path / "points.csv").write_text("lat,lon,weight\n34.7,113.6,1\n94.1,113.7,1\n")

    def no_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("the extract was read")

    monkeypatch.setattr(roads, "read_roads", no_read)
    before = tree(tmp_path)
    args = ["travel-matrix", str(scenario_file), "--osm", str(grid), "--out"]
    line = _refused([*args, str(tmp_path / "od.parquet")])
    assert line == f"error: {tmp_path / 'points.csv'}:3: lat: must be at most 90: '94.1'"
    assert tree(tmp_path) == before


def test_a_matrix_naming_a_point_past_the_demand_csv_is_refused(tmp_path: Path) -> None:
    scenario_file, points = _demand_points(tmp_path)
    n = len(points)
    (tmp_path / "od.csv").write_text(
        "origin,destination,from_hour,to_hour,road_km,minutes\n"
        f"郑州市-1,point:{n - 1},0,24,1,1\n郑州市-1,point:{n},0,24,1,1\n",
        encoding="utf-8",
    )
    text = scenario_file.read_text(encoding="utf-8") + "travel:\n  matrix: od.csv\n"
    scenario_file.write_text(text, encoding="utf-8")
    assert _refused(["validate", str(scenario_file)]) == (
        f"error: {tmp_path / 'od.csv'}:3: destination: 'point:{n}': the demand CSV has {n} "
        f"points (point:0 to point:{n - 1})"
    )


def test_roads_outside_the_box_change_nothing_that_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alone, more = tmp_path / "alone.osm.pbf", tmp_path / "more.osm.pbf"
    write_grid_extract(alone, 20, 24)
    write_grid_extract(more, 20, 24, outside=outside_boxes(2))  # three times the file
    box = Box(32.0, 111.0, 35.5, 115.5)  # cuts the grid: segments leave it
    classes = roads.ROAD_CLASSES
    whole = read_roads(more, box, classes)
    monkeypatch.setattr(road_read, "SEGMENT_BATCH", 50)  # segments sorted in many batches
    for graph in (read_roads(alone, box, classes), read_roads(more, box, classes)):
        for field in dataclasses.fields(roads.RoadGraph):
            assert np.array_equal(getattr(graph, field.name), getattr(whole, field.name))
    assert box.contains(whole.node_lat, whole.node_lon).all()
    # Exactly the grid's segments with both ends inside (a motorway is one edge, one way).
    lat, lon = grid_nodes(20, 24, (31.2, 110.2, 36.5, 116.8))
    inside = box.contains(lat / 10_000_000, lon / 10_000_000)
    edges = [
        (1 if grid_class(line) == "motorway" else 2) * int((ends[:-1] & ends[1:]).sum())
        for grid in (inside, inside.T)
        for line, ends in enumerate(grid)
    ]
    assert whole.n_edges == sum(edges) < 4 * 20 * 24


def test_progress_lines_while_reading(grid: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(road_read, "PROGRESS_INTERVAL_S", 0.0)
    lines: list[str] = []
    read_roads(grid, Box(31, 110, 37, 117), progress=lines.append)
    assert any(line.startswith("read ") and "roads" in line for line in lines)
    assert any(line.startswith("read ") and "nodes" in line for line in lines)


def _refused(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    return one_error_line(result.stdout, result.stderr)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing", "--osm: no such file"),
        ("corrupt", "--osm: not a readable OpenStreetMap file"),
        ("truncated", "--osm: not a readable OpenStreetMap file: PBF error: unexpected EOF"),
        ("elsewhere", "--osm: the extract covers lat 39.490 to 41.010"),
        ("elsewhere_undeclared", "--osm: the extract has no road of the classes motorway, trunk"),
        ("unknown_class", "--road-classes: unknown road classes ['motorwya']"),
        ("bad_speed", "--road-speeds: 'trunk=fast': give CLASS=KMH with a speed above 0"),
    ],
)
def test_bad_extracts_and_options_are_one_line(case: str, expected: str, tmp_path: Path) -> None:
    extract = tmp_path / "extract.osm.pbf"
    classes = "motorway,trunk"
    if case == "corrupt":
        extract.write_bytes(b"\x00\x00\x00\x0dnot a pbf at all" * 100)
    elif case == "truncated":  # a good start: the header reads, the ways break off
        write_grid_extract(extract, ROWS, COLS)
        whole = extract.read_bytes()
        extract.write_bytes(whole[: len(whole) // 2])
    elif case.startswith("elsewhere"):  # Hebei, not Henan
        box = (39.5, 115.0, 41.0, 117.0)
        write_grid_extract(extract, 8, 8, box, declare_box=case == "elsewhere")
    elif case == "unknown_class":
        write_grid_extract(extract, 4, 4)
        classes = "motorwya,trunk"
    speeds = "trunk=fast" if case == "bad_speed" else "trunk=65"
    out = tmp_path / "od.parquet"
    before = tree(tmp_path)
    line = _refused(
        ["travel-matrix", str(QUICK), "--osm", str(extract), "--road-classes", classes,
         "--road-speeds", speeds, "--out", str(out)]
    )  # fmt: skip
    assert expected in line
    assert tree(tmp_path) == before  # nothing written, not even the list of pairs


def test_a_scenario_naming_a_missing_extract_or_both_kinds_is_refused(tmp_path: Path) -> None:
    text = QUICK.read_text(encoding="utf-8")
    missing = tmp_path / "missing.yaml"
    missing.write_text(
        text.replace(
            "  calls_per_day: 130", "  calls_per_day: 130\n  spatial: {roads: {osm: no.pbf}}"
        )
    )
    assert "file not found: no.pbf" in _refused(["validate", str(missing)])
    bad_class = tmp_path / "bad_class.yaml"
    (tmp_path / "x.osm.pbf").write_bytes(b"")
    bad_class.write_text(
        text.replace(
            "  calls_per_day: 130",
            "  calls_per_day: 130\n  spatial: {roads: {osm: x.osm.pbf, class_weight: {lane: 1}}}",
        )
    )
    assert "unknown road classes ['lane']" in _refused(["validate", str(bad_class)])
    # An extract of Hebei for a scenario of Henan: refused before the run's folder is made.
    write_grid_extract(tmp_path / "hebei.osm.pbf", 8, 8, (39.5, 115.0, 41.0, 117.0))
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text(
        text.replace(
            "  calls_per_day: 130", "  calls_per_day: 130\n  spatial: {roads: {osm: hebei.osm.pbf}}"
        )
    )
    out = tmp_path / "run"
    line = _refused(["run", str(elsewhere), "--days", "2", "--out", str(out)])
    assert "demand.spatial.roads.osm: the extract has no road of the classes" in line
    assert not out.exists()
