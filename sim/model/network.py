"""The rescue network: stations with their vans and workshop bays, and a spatial index.

Stations are either generated from the demand areas (every covered prefecture gets a
station at its seat, the rest go where demand is largest) or read from a CSV. Network
generation is deterministic: it uses its own random stream, derived from the scenario
seed, only to scatter a prefecture's extra stations around its seat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import ScenarioError
from sim.model.csv_input import id_column, number_column, read_csv_table
from sim.model.geo import SpatialIndex
from sim.model.reference import select_areas
from sim.model.scenario import MAX_STATIONS, MAX_VANS, GeneratedStations, Scenario, VansConfig
from sim.model.streams import named_rng

KM_PER_DEGREE = 111.2


@dataclass(frozen=True)
class Network:
    """Stations as parallel arrays (index = station id) and the index over them."""

    station_name: np.ndarray  # str
    station_lat: np.ndarray
    station_lon: np.ndarray
    station_area: np.ndarray  # index into ``areas``; -1 when loaded without one
    vans_per_station: np.ndarray
    workshop_bays: np.ndarray
    areas: pd.DataFrame
    index: SpatialIndex

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
        is_pref = self.areas["is_prefecture"].to_numpy()
        if not is_pref.any():
            return float("nan")
        with_station = np.zeros(len(self.areas), dtype=bool)
        with_station[self.station_area[self.station_area >= 0]] = True
        return float(with_station[is_pref].mean())

    def nearest_stations(
        self, lat: np.ndarray, lon: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Indices and great-circle km of the k nearest stations to each point."""
        return self.index.nearest(lat, lon, min(k, self.n_stations))


def build_network(scenario: Scenario) -> Network:
    """Stations, vans and bays for a scenario, ready for the model."""
    areas = select_areas(scenario.geography.provinces, scenario.geography.include_municipalities)
    if len(areas) == 0:
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
    lat = table["lat"].to_numpy(dtype=float)
    lon = table["lon"].to_numpy(dtype=float)
    network = Network(
        station_name=table["name"].to_numpy(dtype=str),
        station_lat=lat,
        station_lon=lon,
        station_area=table["area"].to_numpy(dtype=np.int64),
        vans_per_station=vans,
        workshop_bays=table["workshop_bays"].to_numpy(dtype=np.int64),
        areas=areas,
        index=SpatialIndex(lat, lon),
    )
    _check_roster_stations(scenario, network.station_name)
    return network


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


def _generate_stations(cfg: GeneratedStations, areas: pd.DataFrame, seed: int) -> pd.DataFrame:
    weight = areas["population_weight"].to_numpy(dtype=float)
    n_areas = len(areas)
    is_pref = areas["is_prefecture"].to_numpy()
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
    rows = []
    seat_lats = areas["lat"].to_numpy(dtype=float)
    seat_lons = areas["lon"].to_numpy(dtype=float)
    for a in range(n_areas):
        seat_lat = float(seat_lats[a])
        seat_lon = float(seat_lons[a])
        for j in range(per_area[a]):
            lat, lon = seat_lat, seat_lon
            if j > 0:  # the first station stands at the seat, the others around it
                d_lat, d_lon = rng.normal(0.0, cfg.spread_km / KM_PER_DEGREE, 2)
                lat += d_lat
                lon += d_lon / max(0.2, math.cos(math.radians(seat_lat)))
            rows.append(
                {
                    "name": f"{areas['name'].iat[a]}-{j + 1}",
                    "lat": lat,
                    "lon": lon,
                    "area": a,
                    "workshop_bays": cfg.workshop_bays,
                    "demand_weight": weight[a] / per_area[a],
                }
            )
    return pd.DataFrame(rows)


def _read_stations(path: Path, areas: pd.DataFrame) -> pd.DataFrame:
    raw = read_csv_table(path, "the stations CSV", {"id", "lat", "lon"}, MAX_STATIONS)
    table = pd.DataFrame({"name": id_column(raw, "id", path)})
    table["lat"] = number_column(raw, "lat", path, low=-90, high=90)
    table["lon"] = number_column(raw, "lon", path, low=-180, high=180)
    for column in ("vans", "workshop_bays"):
        if column in raw:
            numbers = number_column(raw, column, path, low=0, high=MAX_VANS, whole=True)
            table[column] = numbers.astype(np.int64)
    if "vans" in table and int(table["vans"].sum()) > MAX_VANS:
        raise ScenarioError(
            f"{int(table['vans'].sum()):,} vans in all; at most {MAX_VANS:,} are allowed",
            file=str(path),
            field="vans",
        )
    if "workshop_bays" not in table:
        table["workshop_bays"] = 2
    # Each station belongs to the demand area whose seat is nearest.
    area_index = SpatialIndex(areas["lat"].to_numpy(float), areas["lon"].to_numpy(float))
    nearest, _ = area_index.nearest(table["lat"].to_numpy(float), table["lon"].to_numpy(float), 1)
    table["area"] = nearest[:, 0]
    table["demand_weight"] = areas["population_weight"].to_numpy(float)[table["area"]]
    return table


def _allocate_vans(cfg: VansConfig, stations: pd.DataFrame, from_csv: bool) -> np.ndarray:
    n = len(stations)
    if cfg.total is None:
        if not from_csv or "vans" not in stations:
            raise ScenarioError(
                "give network.vans.total, or a stations CSV with a vans column",
                field="network.vans.total",
            )
        return stations["vans"].to_numpy(dtype=np.int64)
    if cfg.min_per_station * n > cfg.total:
        raise ScenarioError(
            f"{cfg.total} vans cannot give {cfg.min_per_station} to each of {n} stations",
            field="network.vans.total",
        )
    vans = np.full(n, cfg.min_per_station, dtype=np.int64)
    weights = (
        stations["demand_weight"].to_numpy(dtype=float)
        if cfg.allocation == "demand"
        else np.ones(n)
    )
    allocated: np.ndarray = vans + _largest_remainder(weights, cfg.total - int(vans.sum()))
    return allocated
