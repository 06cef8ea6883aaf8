"""The rescue network: stations with their vans and workshop bays, and a spatial index.

Stations are either generated from the demand areas (every covered prefecture gets a
station at its seat, the rest go where demand is largest) or read from a CSV. Network
generation is deterministic: it uses its own random stream, derived from the scenario
seed, only to scatter a prefecture's extra stations around its seat, each redrawn until
it lies inside its seat's province (the outlines of :mod:`sim.model.outlines`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.errors import ScenarioError
from sim.model.geo import SpatialIndex
from sim.model.reference import Columns, area_frame, select_area_columns
from sim.model.scenario import GeneratedStations, Scenario, VansConfig
from sim.model.schema import MAX_STATIONS, MAX_VANS
from sim.model.streams import named_rng

if TYPE_CHECKING:
    import pandas as pd

    from sim.model.travel_matrix import TravelMatrix

KM_PER_DEGREE = 111.2
# Draws of a scattered station before it falls back to its seat. A seat inside its
# province has a good share of the normal's mass around it on that province's land
# (the national scenario redraws 66 stations, none more than 11 times), so the
# fallback is for seats that lie outside their own outline, like Sansha's.
MAX_REDRAWS = 100


@dataclass(frozen=True)
class Network:
    """Stations as parallel arrays (index = station id) and the index over them."""

    station_name: np.ndarray  # str
    station_lat: np.ndarray
    station_lon: np.ndarray
    station_area: np.ndarray  # index into ``areas``; -1 when loaded without one
    vans_per_station: np.ndarray
    workshop_bays: np.ndarray
    # The demand areas (reference.area_columns), as arrays; ``areas`` is them as a table.
    area_columns: Columns = field(repr=False)
    index: SpatialIndex
    # Road km and minutes from stations to prefectures (travel.matrix), when given.
    travel_matrix: TravelMatrix | None = None

    @cached_property
    def areas(self) -> pd.DataFrame:
        """The demand areas: adcode, name, province, kind, lat, lon, population_weight,
        is_prefecture (built on first use)."""
        return area_frame(self.area_columns)

    @property
    def n_areas(self) -> int:
        return len(self.area_columns["adcode"])

    @property
    def n_stations(self) -> int:
        return len(self.station_lat)

    @property
    def n_vans(self) -> int:
        return int(self.vans_per_station.sum())

    @property
    def van_station(self) -> np.ndarray:
        """Home station of each van, vans numbered station by station."""
        return np.repeat(np.arange(self.n_stations), self.vans_per_station)

    def prefecture_coverage(self) -> float:
        """Share of the scenario's prefecture-level divisions with at least one station."""
        is_pref = self.area_columns["is_prefecture"]
        if not is_pref.any():
            return float("nan")
        with_station = np.zeros(self.n_areas, dtype=bool)
        with_station[self.station_area[self.station_area >= 0]] = True
        return float(with_station[is_pref].mean())

    def nearest_stations(
        self, lat: np.ndarray, lon: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Indices and great-circle km of the k nearest stations to each point."""
        return self.index.nearest(lat, lon, min(k, self.n_stations))


def build_network(scenario: Scenario) -> Network:
    """Stations, vans and bays for a scenario, ready for the model."""
    areas = select_area_columns(
        scenario.geography.provinces, scenario.geography.include_municipalities
    )
    if len(areas["adcode"]) == 0:
        raise ScenarioError("no prefecture matches the scenario's geography", field="geography")
    stations = scenario.network.stations
    if stations.generate is not None:
        table = _generate_stations(stations.generate, areas, scenario.seed)
    else:
        assert stations.csv is not None
        table = _read_stations(stations.csv, areas)
    vans = _allocate_vans(scenario.network.vans, table, stations.csv is not None)
    if vans.sum() <= 0:
        raise ScenarioError("the network has no vans", field="network.vans.total")
    lat = np.asarray(table["lat"], dtype=float)
    lon = np.asarray(table["lon"], dtype=float)
    network = Network(
        station_name=np.asarray(table["name"]).astype(str),
        station_lat=lat,
        station_lon=lon,
        station_area=np.asarray(table["area"], dtype=np.int64),
        vans_per_station=vans,
        workshop_bays=np.asarray(table["workshop_bays"], dtype=np.int64),
        area_columns=areas,
        index=SpatialIndex(lat, lon),
    )
    _check_roster_stations(scenario, network.station_name)
    roads = scenario.demand.spatial.roads
    if roads is not None:  # read and checked with the network, before any run starts
        from sim.model.roads import load_road_places

        load_road_places(roads, network.area_columns["adcode"].astype(str).tolist())
    matrix = scenario.travel.matrix
    if matrix is None:
        return network
    from sim.model.demand_points import read_demand_points
    from sim.model.travel import TravelModel
    from sim.model.travel_matrix import load_travel_matrix

    csv = scenario.demand.spatial.csv
    points = None if csv is None else read_demand_points(csv)[:2]  # rows to "point:N"
    travel = TravelModel(scenario.travel)
    return replace(network, travel_matrix=load_travel_matrix(matrix, network, travel, points))


def _check_roster_stations(scenario: Scenario, names: np.ndarray) -> None:
    """Every station a roster names by name is one of the network's."""
    if scenario.roster is None:
        return
    known = set(names.tolist())
    for k, own in enumerate(scenario.roster.stations):
        for j, name in enumerate(own.stations):
            if name not in known:
                raise ScenarioError(
                    f"no station named {name!r} in the network",
                    field=f"roster.stations[{k}].stations[{j}]",
                )


def _largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer shares of ``total`` proportional to ``weights`` (Hamilton's method)."""
    if total <= 0:
        return np.zeros(len(weights), dtype=np.int64)
    exact = weights / weights.sum() * total
    base: np.ndarray = np.floor(exact).astype(np.int64)
    short = total - int(base.sum())
    # Ties break by position so that the allocation is deterministic.
    order = np.lexsort((np.arange(len(weights)), -(exact - base)))
    base[order[:short]] += 1
    return base


def _generate_stations(cfg: GeneratedStations, areas: Columns, seed: int) -> Columns:
    weight = areas["population_weight"].astype(float)
    n_areas = len(weight)
    is_pref = areas["is_prefecture"]
    # Which areas get a station at all: every municipality, and the largest prefectures
    # until the coverage target is met; a network reaches the small ones last.
    n_pref_covered = math.ceil(cfg.coverage_target * is_pref.sum() - 1e-9)
    pref_order = np.flatnonzero(is_pref)[np.argsort(-weight[is_pref], kind="stable")]
    covered = ~is_pref.copy()
    covered[pref_order[:n_pref_covered]] = True
    if covered.sum() > cfg.count:
        raise ScenarioError(
            f"{cfg.count} stations cannot cover {int(covered.sum())} areas; "
            "raise count or lower coverage_target",
            field="network.stations.generate.count",
        )
    per_area = covered.astype(np.int64)
    # With nothing covered by the target (coverage 0 and no municipality), stations simply
    # go where demand is largest.
    extra_weight = np.where(covered, weight, 0.0) if covered.any() else weight
    per_area += _largest_remainder(extra_weight, cfg.count - int(per_area.sum()))

    rng = named_rng(seed, "network")
    names: list[str] = []
    lats: list[float] = []
    lons: list[float] = []
    scattered: list[int] = []  # stations drawn around a seat
    seat_lats = areas["lat"].astype(float)
    seat_lons = areas["lon"].astype(float)
    area_names = areas["name"].tolist()
    for a in range(n_areas):
        seat_lat = float(seat_lats[a])
        seat_lon = float(seat_lons[a])
        for j in range(per_area[a]):
            lat, lon = seat_lat, seat_lon
            if j > 0:  # the first station stands at the seat, the others around it
                lat, lon = _scatter(rng, seat_lat, seat_lon, cfg.spread_km)
                scattered.append(len(names))
            names.append(f"{area_names[a]}-{j + 1}")
            lats.append(lat)
            lons.append(lon)
    area = np.repeat(np.arange(n_areas, dtype=np.int64), per_area)  # the loop's order
    table: Columns = {
        "name": np.array(names, dtype=object),
        "lat": np.array(lats, dtype=float),
        "lon": np.array(lons, dtype=float),
        "area": area,
        "workshop_bays": np.full(len(names), cfg.workshop_bays, dtype=np.int64),
        "demand_weight": (weight / np.maximum(per_area, 1))[area],
    }
    if scattered and cfg.spread_km > 0:
        _keep_in_province(table, np.asarray(scattered), areas, rng, cfg.spread_km)
    return table


def _scatter(
    rng: np.random.Generator, seat_lat: float, seat_lon: float, spread_km: float
) -> tuple[float, float]:
    """A place around a seat: normal offsets of ``spread_km`` north and east."""
    d_lat, d_lon = rng.normal(0.0, spread_km / KM_PER_DEGREE, 2)
    return seat_lat + d_lat, seat_lon + d_lon / max(0.2, math.cos(math.radians(seat_lat)))


def _keep_in_province(
    table: Columns,
    rows: np.ndarray,
    areas: Columns,
    rng: np.random.Generator,
    spread_km: float,
) -> None:
    """Redraw the scattered stations (``rows`` of ``table``) that fell outside their province.

    Each is drawn again around its seat, from the same stream, until it lies inside the
    outline of its seat's province (seeds/province_outlines.geojson); after
    ``MAX_REDRAWS`` misses it stands at the seat. The stations that fell inside keep
    their first draw (the redraws come after every first draw), so the rule moves only
    the stations it must.
    """
    from sim.model.outlines import read_outlines  # read only for networks that need it

    outlines = read_outlines()
    lat = table["lat"].astype(float, copy=True)
    lon = table["lon"].astype(float, copy=True)
    area = table["area"]
    adcode = areas["adcode"].astype(str)[area]
    province = np.array([code[:2] for code in adcode])
    outside = np.zeros(len(lat), dtype=bool)
    for prefix in np.unique(province[rows]):
        mine = rows[province[rows] == prefix]
        outside[mine] = ~outlines.province(prefix).contains(lat[mine], lon[mine])
    seat_lats = areas["lat"].astype(float)
    seat_lons = areas["lon"].astype(float)
    for k in np.flatnonzero(outside):  # in station order, so the redraws are reproducible
        region = outlines.province(adcode[k])
        seat_lat, seat_lon = float(seat_lats[area[k]]), float(seat_lons[area[k]])
        lat[k], lon[k] = seat_lat, seat_lon
        for _ in range(MAX_REDRAWS):
            new_lat, new_lon = _scatter(rng, seat_lat, seat_lon, spread_km)
            if region.contains(new_lat, new_lon)[0]:
                lat[k], lon[k] = new_lat, new_lon
                break
    table["lat"] = lat
    table["lon"] = lon


def _read_stations(path: Path, areas: Columns) -> Columns:
    from sim.model.csv_input import id_column, number_column, read_csv_table

    raw = read_csv_table(path, "the stations CSV", {"id", "lat", "lon"}, MAX_STATIONS)
    table: Columns = {"name": np.asarray(id_column(raw, "id", path), dtype=object)}
    table["lat"] = np.asarray(number_column(raw, "lat", path, low=-90, high=90), dtype=float)
    table["lon"] = np.asarray(number_column(raw, "lon", path, low=-180, high=180), dtype=float)
    for column in ("vans", "workshop_bays"):
        if column in raw:
            numbers = number_column(raw, column, path, low=0, high=MAX_VANS, whole=True)
            table[column] = np.asarray(numbers).astype(np.int64)
    if "vans" in table and int(table["vans"].sum()) > MAX_VANS:
        raise ScenarioError(
            f"{int(table['vans'].sum()):,} vans in all; at most {MAX_VANS:,} are allowed",
            file=str(path),
            field="vans",
        )
    if "workshop_bays" not in table:
        table["workshop_bays"] = np.full(len(table["lat"]), 2, dtype=np.int64)
    # Each station belongs to the demand area whose seat is nearest.
    area_index = SpatialIndex(areas["lat"].astype(float), areas["lon"].astype(float))
    nearest, _ = area_index.nearest(table["lat"], table["lon"], 1)
    table["area"] = nearest[:, 0]
    table["demand_weight"] = areas["population_weight"].astype(float)[table["area"]]
    return table


def _allocate_vans(cfg: VansConfig, stations: Columns, from_csv: bool) -> np.ndarray:
    n = len(stations["lat"])
    if cfg.total is None:
        if not from_csv or "vans" not in stations:
            raise ScenarioError(
                "give network.vans.total, or a stations CSV with a vans column",
                field="network.vans.total",
            )
        return stations["vans"].astype(np.int64)
    if cfg.min_per_station * n > cfg.total:
        raise ScenarioError(
            f"{cfg.total} vans cannot give {cfg.min_per_station} to each of {n} stations",
            field="network.vans.total",
        )
    vans = np.full(n, cfg.min_per_station, dtype=np.int64)
    weights = stations["demand_weight"].astype(float) if cfg.allocation == "demand" else np.ones(n)
    allocated: np.ndarray = vans + _largest_remainder(weights, cfg.total - int(vans.sum()))
    return allocated
