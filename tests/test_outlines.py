"""Province outlines (seeds/province_outlines.geojson): joined to prefectures.csv, in place.

The outlines are real geography, so these tests hold them against the project's own
data: every provincial division of prefectures.csv has exactly one outline, every seat
and every station of the national scenario lies in its own province, and the prefecture
cells tile their province.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.path import Path as MplPath

from sim import load_scenario
from sim.model import network as network_module
from sim.model.network import Network, build_network
from sim.model.outlines import OUTLINES_FILE, Outlines, Region, geometry_region, read_outlines
from sim.model.reference import area_columns, areas, data_dir
from sim.model.scenario import GeneratedStations
from sim.outputs.outlines import region_path

ROOT = Path(__file__).resolve().parents[1]
NATIONAL = ROOT / "scenarios" / "dongfeng_light_truck.yaml"
KM_PER_DEGREE = 111.2
# A coastal seat may sit a little off a simplified coastline (the outlines keep DCW's
# coast to within a few km); none does today, the tolerance keeps a rebuild honest.
COASTAL_TOLERANCE_KM = 5.0
# 三沙市 sits on Yongxing Island in the Paracels; DCW's Hainan has no South China Sea
# islands, so its seat is outside every outline (the build script draws a disc instead).
SEAT_OFF_OUTLINE = {"460300"}
NOT_IN_MODEL = {"710000", "810000", "820000"}  # Taiwan, Hong Kong, Macao


@pytest.fixture(scope="module")
def outlines() -> Outlines:
    return read_outlines()


@pytest.fixture(scope="module")
def national() -> Network:
    return build_network(load_scenario(NATIONAL))


def _km_outside(region: Region, lat: float, lon: float) -> float:
    """0 inside the region, else the distance to its nearest edge in km (local flat map)."""
    if region.contains(lat, lon)[0]:
        return 0.0
    kx = np.cos(np.radians(lat))
    best = np.inf
    for xy in region.exteriors:
        a = (xy[:-1] - (lon, lat)) * (kx, 1.0)
        b = (xy[1:] - (lon, lat)) * (kx, 1.0)
        ab = b - a
        t = np.clip(-(a * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-18), 0.0, 1.0)
        nearest = a + t[:, None] * ab
        best = min(best, float(np.hypot(nearest[:, 0], nearest[:, 1]).min()))
    return best * KM_PER_DEGREE


# --------------------------------------------------------------------------- the join


def test_each_provincial_division_matches_exactly_one_outline(outlines: Outlines) -> None:
    table = areas()
    prefix = table["adcode"].str[:2]
    divisions = prefix.groupby(table["province"]).unique()
    assert len(divisions) == 31
    for province, prefixes in divisions.items():
        assert len(prefixes) == 1, province
        matches = [r for r in outlines.provinces if r.name == province]
        assert len(matches) == 1, province
        assert matches[0].adcode == f"{prefixes[0]}0000" and matches[0].in_model
    in_model = {r.name for r in outlines.provinces if r.in_model}
    assert in_model == set(divisions.index)
    assert {r.adcode for r in outlines.provinces if not r.in_model} == NOT_IN_MODEL
    assert len(outlines.provinces) == 34


def test_every_seat_lies_in_its_own_province(outlines: Outlines) -> None:
    table = areas()
    found = outlines.locate(table["lat"].to_numpy(), table["lon"].to_numpy())
    own = (table["adcode"].str[:2] + "0000").to_numpy()
    off = set(table["adcode"][found != own])
    assert off == SEAT_OFF_OUTLINE  # and nowhere else: the others are strictly inside
    for adcode in off:
        assert found[table["adcode"] == adcode][0] == ""  # at sea, in no other province


def test_every_station_at_a_seat_lies_in_its_own_province(
    outlines: Outlines, national: Network
) -> None:
    seats = national.areas.iloc[national.station_area]
    at_seat = (national.station_lat == seats["lat"].to_numpy()) & (
        national.station_lon == seats["lon"].to_numpy()
    )
    assert at_seat.sum() >= 300  # every covered division has one at its seat
    for k in np.flatnonzero(at_seat).tolist():
        adcode = str(seats["adcode"].iat[k])
        if adcode in SEAT_OFF_OUTLINE:
            continue
        km = _km_outside(
            outlines.province(adcode), national.station_lat[k], national.station_lon[k]
        )
        assert km <= COASTAL_TOLERANCE_KM, national.station_name[k]


def _at_seat(network: Network) -> np.ndarray:
    seats = network.areas.iloc[network.station_area]
    lat_equal = network.station_lat == seats["lat"].to_numpy()
    return np.asarray(lat_equal & (network.station_lon == seats["lon"].to_numpy()))


def _outside_own_province(outlines: Outlines, network: Network) -> np.ndarray:
    """True for each station that is not strictly inside its own province's outline."""
    seats = network.areas.iloc[network.station_area]
    own = (seats["adcode"].str[:2] + "0000").to_numpy()
    return np.asarray(outlines.locate(network.station_lat, network.station_lon) != own)


def test_every_station_lies_in_its_own_province(outlines: Outlines, national: Network) -> None:
    # Seats have their own test above (with a tolerance for the coast); the stations
    # scattered around them must lie strictly inside, with no tolerance at all.
    scattered = ~_at_seat(national)
    assert national.n_stations == 1050 and scattered.sum() > 700
    outside = _outside_own_province(outlines, national) & scattered
    assert list(national.station_name[outside]) == []


def test_only_the_stations_that_fell_outside_are_redrawn(
    outlines: Outlines, national: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first draws, as generated before the outlines were consulted.
    monkeypatch.setattr(network_module, "_keep_in_province", lambda *args, **kwargs: None)
    first = build_network(load_scenario(NATIONAL))
    moved = (first.station_lat != national.station_lat) | (
        first.station_lon != national.station_lon
    )
    fell_outside = _outside_own_province(outlines, first) & ~_at_seat(first)
    assert 30 < fell_outside.sum() < 150  # the national network needs the rule
    assert (moved == fell_outside).all()  # every other station keeps its first draw
    assert (national.vans_per_station == first.vans_per_station).all()
    # Redrawn around their own seat, not pushed to it: none fell back to the seat here.
    assert not _at_seat(national)[fell_outside].any()
    seat_lat = national.areas["lat"].to_numpy()[national.station_area]
    km = np.abs(national.station_lat - seat_lat)[moved] * KM_PER_DEGREE
    assert km.max() < 5 * 20.0  # within five spreads (spread_km 20) north-south


def test_a_station_that_cannot_be_drawn_inside_stands_at_its_seat() -> None:
    # 三沙市's seat lies outside every outline (see SEAT_OFF_OUTLINE): no redraw can
    # land in Hainan 295 km away, so its further stations fall back to the seat.
    columns = area_columns()
    keep = np.isin(columns["adcode"], list(SEAT_OFF_OUTLINE))
    sansha = {name: values[keep] for name, values in columns.items()}
    cfg = GeneratedStations(count=3, coverage_target=1.0, spread_km=20.0)
    table = network_module._generate_stations(cfg, sansha, seed=1)
    assert len(table["lat"]) == 3
    assert (table["lat"] == sansha["lat"][0]).all()
    assert (table["lon"] == sansha["lon"][0]).all()


# --------------------------------------------------------------------------- the cells


def _area(region: Region) -> float:
    """Area in square degrees: exteriors minus holes (shoelace)."""

    def ring_area(xy: np.ndarray) -> float:
        x, y = xy[:, 0], xy[:, 1]
        return abs(0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)))

    return sum(ring_area(p) for p in region.exteriors) - sum(ring_area(p) for p in region.holes)


def test_prefecture_cells_tile_their_province(outlines: Outlines) -> None:
    table = areas()
    assert [c.adcode for c in outlines.cells] == sorted(table["adcode"])
    names = dict(zip(table["adcode"], table["province"], strict=True))
    for cell in outlines.cells:
        assert cell.province == names[cell.adcode]
    for province in outlines.provinces:
        if not province.in_model:
            continue
        own = [c for c in outlines.cells if c.province == province.name and c.adcode != "460300"]
        assert sum(_area(c) for c in own) == pytest.approx(_area(province), rel=1e-3)
    # Each seat lies in its own cell: the cells are the seats' Voronoi regions.
    found = outlines.locate(table["lat"].to_numpy(), table["lon"].to_numpy(), level="prefecture")
    assert (found == table["adcode"].to_numpy()).all()


# --------------------------------------------------------------------------- reading


def test_locate_knows_the_map(outlines: Outlines) -> None:
    lat = np.array([34.75, 39.90, 39.97, 38.5, 25.05, 22.42])
    lon = np.array([113.62, 116.40, 116.98, 120.0, 121.50, 114.12])
    # Zhengzhou; Beijing; Sanhe (Hebei's exclave between Beijing and Tianjin); the Bohai
    # Sea; Taipei; the New Territories of Hong Kong.
    assert list(outlines.locate(lat, lon)) == [
        "410000", "110000", "130000", "", "710000", "810000"
    ]  # fmt: skip
    assert outlines.province("410100").name == "河南省"
    assert outlines.cell("410100").name == "郑州市"
    with pytest.raises(KeyError):
        outlines.province("990000")


def test_contains_agrees_with_matplotlib(outlines: Outlines) -> None:
    # The model tests points with numpy alone; matplotlib's paths (which draw the maps)
    # must give the same answer on the same rings.
    rng = np.random.default_rng(17)
    lon = rng.uniform(73.0, 135.5, 20_000)
    lat = rng.uniform(15.5, 54.0, 20_000)
    points = np.column_stack((lon, lat))
    inside = 0
    for region in (*outlines.provinces, *outlines.cells[::10]):
        expected = np.zeros(len(points), dtype=bool)
        for ring in region.exteriors:
            expected |= MplPath(ring).contains_points(points)
        for ring in region.holes:  # the shipped file has none: the test below has one
            expected &= ~MplPath(ring).contains_points(points)
        assert (region.contains(lat, lon) == expected).all(), region.name
        inside += int(expected.sum())
    assert inside > 5_000  # China covers about a third of the box, islands included


def test_holes_are_outside_and_drawn_empty(tmp_path: Path) -> None:
    square = [[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]]
    hole = [[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]]  # counter-clockwise like the square, on purpose
    region = geometry_region({"type": "Polygon", "coordinates": [square, hole]})
    assert list(region.contains([2.0, 0.5, 5.0], [2.0, 0.5, 5.0])) == [False, True, False]
    # Drawn with matplotlib's nonzero rule, the hole must wind against the square.
    pieces = [np.asarray(p, dtype=float) for p in region_path(region).to_polygons(closed_only=True)]
    signed = [0.5 * np.sum(p[:-1, 0] * p[1:, 1] - p[1:, 0] * p[:-1, 1]) for p in pieces]
    assert signed[0] > 0 > signed[1]
    # A file written elsewhere reads the same way, MultiPolygons included.
    multi = {"type": "MultiPolygon", "coordinates": [[square], [[[5, 5], [6, 5], [6, 6]]]]}
    data = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {"adcode": "1"}, "geometry": multi}],
    }
    path = tmp_path / "x.geojson"
    path.write_text(json.dumps(data), encoding="utf-8")
    (read,) = read_outlines(path).provinces
    assert len(read.exteriors) == 2 and list(read.contains([5.5, 2.0], [5.9, 2.0])) == [True, True]
    with pytest.raises(ValueError, match="Polygon"):
        geometry_region({"type": "Point", "coordinates": [0, 0]})


def test_the_shipped_file_stays_small() -> None:
    path = data_dir("seeds") / OUTLINES_FILE
    assert path.stat().st_size < 600_000  # the outlines live in git: a few hundred KB
    header = path.read_text(encoding="utf-8")[:2000]
    assert "DCW-GMT" in header and "not a surveyed standard map" in header
