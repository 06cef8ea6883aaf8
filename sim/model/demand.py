"""The call stream: every random input of one replication, drawn up front as arrays.

A :class:`CallStream` is data. It is drawn from the scenario and a replication number
before the model runs (or read from a file of recorded calls, trace replay), so that
every dispatch policy compared on it sees exactly the same calls, patience, repair times
and travel noise. Each quantity has its own named stream (see :mod:`sim.model.streams`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import ScenarioError
from sim.model.csv_input import number_column, read_csv_table
from sim.model.demand_points import read_demand_points
from sim.model.geo import SpatialIndex, great_circle_km_array
from sim.model.network import KM_PER_DEGREE, Network
from sim.model.outlines import Region, read_outlines
from sim.model.reference import Columns
from sim.model.roads import load_road_places
from sim.model.scenario import Scenario, Surge
from sim.model.streams import named_rng
from sim.model.trace import MAX_TRACE_CALLS, trace_calls
from sim.model.travel import TravelModel
from sim.model.travel_matrix import rank_candidates

# Redraws of the calls scattered outside their prefecture's cell, in rounds: in round k
# each call still outside draws min(4^k, PLACE_BATCH) places around its seat at once and
# takes the first inside (few rounds: the cells are tested area by area, and each test
# has a fixed cost); after MAX_PLACE_ROUNDS rounds (at most 1,365 draws in all) a call
# still outside stands at its seat. A small island cell (Zhoushan) holds a few percent
# of the draws around its seat.
MAX_PLACE_ROUNDS = 8
PLACE_BATCH = 256


@dataclass(frozen=True)
class CallStream:
    """Columns of length n (one entry per breakdown call, sorted by call time).

    Per-attempt hotline inputs have shape (n, max_attempts).
    """

    t_call_h: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    area: np.ndarray
    segment: np.ndarray
    fault: np.ndarray
    surge: np.ndarray
    handling_h: np.ndarray
    patience_h: np.ndarray
    redial_u: np.ndarray
    redial_delay_h: np.ndarray
    remote_u: np.ndarray
    contact_delay_h: np.ndarray
    turnout_day_h: np.ndarray
    turnout_night_h: np.ndarray
    drive_noise: np.ndarray
    return_noise: np.ndarray
    repair_h: np.ndarray
    fix_u: np.ndarray
    part_u: np.ndarray
    part_delay_h: np.ndarray
    tow_wait_h: np.ndarray
    workshop_h: np.ndarray
    complaint_u: np.ndarray
    complaint_work_h: np.ndarray
    contractor_u: np.ndarray
    contractor_km: np.ndarray
    contractor_delay_h: np.ndarray
    candidates: np.ndarray
    candidate_km: np.ndarray
    # The row of the replayed trace each call comes from (-1: a drawn call); None in a
    # stream made by hand.
    trace_row: np.ndarray | None = None
    # The point of the demand CSV each call was drawn at (-1: none; a travel matrix's
    # rows to that point drive it); None in a stream made by hand.
    point: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.t_call_h)

    def equals(self, other: CallStream) -> bool:
        """True when every column is identical (NaN equal to NaN)."""
        return all(
            np.array_equal(getattr(self, f.name), getattr(other, f.name), equal_nan=True)
            for f in fields(self)
        )


def hourly_rates(scenario: Scenario) -> np.ndarray:
    """Expected calls in each hour of the horizon, before surges.

    Day 0 falls on the weekday of ``horizon.start_date`` (a Monday when it is not given).
    """
    demand = scenario.demand
    n_hours = math.ceil(scenario.horizon.hours)
    hours = np.arange(n_hours)
    hour_w = np.asarray(demand.hour_of_day_profile, dtype=float)
    hour_w = hour_w / hour_w.sum()
    day_w = np.asarray(demand.day_of_week_profile, dtype=float)
    day_w = day_w / day_w.mean()
    weekday = (hours // 24 + scenario.horizon.start_weekday) % 7
    rates: np.ndarray = demand.mean_calls_per_day * day_w[weekday] * hour_w[hours % 24]
    return rates


def _area_weights(
    scenario: Scenario, network: Network
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Demand points (lat, lon) and their weights: the area seats, or the demand CSV's."""
    spatial = scenario.demand.spatial
    if spatial.csv is None:
        areas = network.area_columns
        return (
            areas["lat"].astype(float),
            areas["lon"].astype(float),
            areas["population_weight"].astype(float),
        )
    return read_demand_points(spatial.csv)


def _poisson_times(
    rng: np.random.Generator, rates: np.ndarray, offset_h: float = 0.0
) -> np.ndarray:
    """Arrival times of a Poisson process with a piecewise-constant hourly rate."""
    counts = rng.poisson(rates)
    starts = np.repeat(np.arange(len(rates), dtype=float), counts)
    return offset_h + starts + rng.random(len(starts))


def _scatter(
    rng: np.random.Generator, lat: np.ndarray, lon: np.ndarray, scatter_km: float
) -> tuple[np.ndarray, np.ndarray]:
    if scatter_km <= 0:
        return lat.copy(), lon.copy()
    d = rng.normal(0.0, scatter_km / KM_PER_DEGREE, (2, len(lat)))
    new_lat = np.clip(lat + d[0], -89.0, 89.0)
    new_lon = lon + d[1] / np.maximum(0.2, np.cos(np.radians(lat)))
    return new_lat, new_lon


# Margins on the radii of _Cells: a place this close to either circle is tested.
_INNER_MARGIN = 1.0 - 1e-9
_OUTER_MARGIN = 1.0 + 1e-9


@dataclass(frozen=True)
class _Cells:
    """The prefecture cell of each demand area (seeds/province_outlines.geojson).

    Around each seat two circles (:meth:`Region.radii_around`, in the plane of the
    outlines' degrees): a place inside the inner one is in the cell, a place beyond the
    outer one is not, and only the places between are tested against the cell's rings.
    The answer is the rings' either way; the circles only spare the tests.
    """

    regions: tuple[Region | None, ...]  # None: an area without a cell, any place will do
    seat_lat: np.ndarray
    seat_lon: np.ndarray
    inner2: np.ndarray  # squared radii, degrees^2
    outer2: np.ndarray

    def contains(self, area: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """True for each place inside the cell of its area."""
        d2 = (lon - self.seat_lon[area]) ** 2 + (lat - self.seat_lat[area]) ** 2
        inside: np.ndarray = d2 < self.inner2[area]
        test = np.flatnonzero(~inside & (d2 <= self.outer2[area]))
        if not len(test):  # every place settled by the circles (np.split would give one group)
            return inside
        order = test[np.argsort(area[test], kind="stable")]
        groups, starts = np.unique(area[order], return_index=True)
        for a, rows in zip(groups.tolist(), np.split(order, starts[1:]), strict=True):
            cell = self.regions[a]
            inside[rows] = cell.contains(lat[rows], lon[rows]) if cell is not None else True
        return inside


def _area_cells(network: Network) -> _Cells:
    """The cells of the network's demand areas (worked out once per process)."""
    columns = network.area_columns
    return _cells(
        tuple(columns["adcode"].astype(str).tolist()),
        tuple(columns["lat"].astype(float).tolist()),
        tuple(columns["lon"].astype(float).tolist()),
    )


@cache
def _cells(adcode: tuple[str, ...], lat: tuple[float, ...], lon: tuple[float, ...]) -> _Cells:
    by_adcode = read_outlines().cells_by_adcode
    regions = tuple(by_adcode.get(code) for code in adcode)
    inner = np.zeros(len(adcode))
    outer = np.full(len(adcode), np.inf)  # an area without a cell: every place is tested
    for a, region in enumerate(regions):
        if region is not None:
            inner[a], outer[a] = region.radii_around(lat[a], lon[a])
    return _Cells(
        regions,
        np.array(lat),
        np.array(lon),
        (inner * _INNER_MARGIN) ** 2,
        (outer * _OUTER_MARGIN) ** 2,
    )


def _scatter_in_cells(
    rng: np.random.Generator,
    area: np.ndarray,
    seat_lat: np.ndarray,
    seat_lon: np.ndarray,
    scatter_km: float,
    cells: _Cells,
) -> tuple[np.ndarray, np.ndarray]:
    """Places around the seats of ``area``, each inside its area's cell.

    Every call is scattered once (as :func:`_scatter`); then, round by round, the calls
    outside their cell are drawn again around their seat, in call order, from the same
    stream, each taking the first of its round's draws that falls inside: the normal cut
    to the cell. The calls that fell inside keep their first draw. A call still outside
    after ``MAX_PLACE_ROUNDS`` rounds stands at its seat.
    """
    lat, lon = _scatter(rng, seat_lat[area], seat_lon[area], scatter_km)
    if scatter_km <= 0:
        return lat, lon
    outside = np.flatnonzero(~cells.contains(area, lat, lon))
    for k in range(1, MAX_PLACE_ROUNDS + 1):
        if len(outside) == 0:
            break
        batch = min(4**k, PLACE_BATCH)
        a = np.repeat(area[outside], batch)  # each call's draws side by side
        new_lat, new_lon = _scatter(rng, seat_lat[a], seat_lon[a], scatter_km)
        hit = cells.contains(a, new_lat, new_lon).reshape(-1, batch)
        found = hit.any(axis=1)
        first = np.flatnonzero(found) * batch + hit[found].argmax(axis=1)
        lat[outside[found]] = new_lat[first]
        lon[outside[found]] = new_lon[first]
        outside = outside[~found]
    lat[outside] = seat_lat[area[outside]]
    lon[outside] = seat_lon[area[outside]]
    return lat, lon


def _surge_points(surge: Surge, lat: np.ndarray, lon: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Demand weight of each point inside the surge region (the nearest point if none is)."""
    region = surge.region
    dist = great_circle_km_array(lat, lon, region.center_lat, region.center_lon)
    inside = np.where(dist <= region.radius_km, weight, 0.0)
    if inside.sum() > 0:
        return inside
    nearest: np.ndarray = (dist == dist.min()).astype(float)
    return nearest


def _arrivals(scenario: Scenario, network: Network, replication: int) -> pd.DataFrame:
    """Call times, places and areas, the surges' extra calls included, before the horizon.

    A call drawn for a demand area (a prefecture seat) lies in that area's cell and keeps
    the area (``area``); a call scattered around a point of a demand CSV keeps its place
    as drawn, and its area is -1 (found from its place, :func:`locate_areas`). Ordinary
    calls and each surge's extra calls have streams of their own, so adding a surge
    leaves every ordinary call where and when it was.
    """
    seed = scenario.seed
    horizon_h = scenario.horizon.hours
    point_lat, point_lon, weight = _area_weights(scenario, network)
    scatter_km = scenario.demand.spatial.scatter_km
    rates = hourly_rates(scenario)
    from_areas = scenario.demand.spatial.csv is None
    roads = scenario.demand.spatial.roads
    cells = _area_cells(network) if from_areas and (scatter_km > 0 or roads) else None
    adcodes = network.area_columns["adcode"].astype(str).tolist()
    on_roads = load_road_places(roads, adcodes) if roads is not None else None

    def place(
        rng: np.random.Generator, n: int, w: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Places, areas and demand-CSV points (-1: drawn for an area) of ``n`` calls."""
        point = rng.choice(len(w), size=n, p=w / w.sum())
        none = np.full(n, -1, dtype=np.int64)
        if not from_areas:
            lat, lon = _scatter(rng, point_lat[point], point_lon[point], scatter_km)
            return lat, lon, none, point.astype(np.int64)
        if on_roads is not None and cells is not None:  # on a road of the call's area
            return (*on_roads.draw(rng, point, cells.contains), point.astype(np.int64), none)
        if cells is None:  # no scatter: every call at its seat
            return point_lat[point], point_lon[point], point.astype(np.int64), none
        lat, lon = _scatter_in_cells(rng, point, point_lat, point_lon, scatter_km, cells)
        return lat, lon, point.astype(np.int64), none

    t = _poisson_times(named_rng(seed, "arrivals", replication), rates)
    t = t[t < horizon_h]  # the last hour is drawn whole; a Poisson process cut stays Poisson
    lat, lon, area, point = place(named_rng(seed, "places", replication), len(t), weight)
    parts = [(t, lat, lon, area, point, np.full(len(t), -1, dtype=np.int8))]
    for s, surge in enumerate(scenario.surges):
        if surge.demand_multiplier <= 1.0:
            continue
        w = _surge_points(surge, point_lat, point_lon, weight)
        share = max(float(w.sum() / weight.sum()), 1e-3)
        window = np.zeros(len(rates))
        window[math.floor(surge.start_h) : min(len(rates), math.ceil(surge.end_h))] = 1.0
        extra = (surge.demand_multiplier - 1.0) * rates * window * share
        t = _poisson_times(named_rng(seed, f"surge:{surge.name}:arrivals", replication), extra)
        t = t[(t >= surge.start_h) & (t < surge.end_h) & (t < horizon_h)]
        rng = named_rng(seed, f"surge:{surge.name}:places", replication)
        lat, lon, area, point = place(rng, len(t), w)
        parts.append((t, lat, lon, area, point, np.full(len(t), s, dtype=np.int8)))
    t_call, lat, lon, area, point, surge_id = (
        np.concatenate(column) for column in zip(*parts, strict=True)
    )
    order = np.argsort(t_call, kind="stable")
    return pd.DataFrame(
        {
            "t_call_h": t_call[order],
            "lat": lat[order],
            "lon": lon[order],
            "area": area[order],
            "point": point[order],
            "surge": surge_id[order],
        }
    )


def locate_areas(areas: Columns, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The demand area of each place: the area whose prefecture cell holds it.

    ``areas`` are area columns (``adcode``, ``lat``, ``lon``: a network's
    ``area_columns``). A place in no cell of these areas (at sea, abroad, or in a
    province they leave out) belongs to the area with the nearest seat.
    """
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    if len(lat) == 0:
        return np.zeros(0, dtype=np.int64)
    codes = read_outlines().locate_cells(lat, lon)
    index = {str(code): a for a, code in enumerate(areas["adcode"])}
    area = np.array([index.get(code, -1) for code in codes.tolist()], dtype=np.int64)
    loose = np.flatnonzero(area < 0)
    if len(loose):
        seats = SpatialIndex(np.asarray(areas["lat"], float), np.asarray(areas["lon"], float))
        area[loose] = seats.nearest(lat[loose], lon[loose], 1)[0][:, 0]
    return area


def _categorical(rng: np.random.Generator, shares: list[float], n: int) -> np.ndarray:
    p = np.asarray(shares, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int8)


def _lognormal_noise(rng: np.random.Generator, cv: float, size: int) -> np.ndarray:
    if cv <= 0:
        return np.ones(size)
    sigma2 = math.log1p(cv**2)
    return rng.lognormal(-sigma2 / 2, math.sqrt(sigma2), size)


def draw_call_stream(
    scenario: Scenario,
    network: Network,
    replication: int = 0,
    calls: pd.DataFrame | None = None,
) -> CallStream:
    """Draw every random input of one replication.

    ``calls`` (columns t_call_h, lat, lon and optionally fault, segment by name, and
    trace_row) replaces the drawn times and places: a replay of recorded calls. A scenario
    with ``demand.trace`` replays its trace (:func:`sim.model.trace.trace_calls`). A fault
    or segment the calls leave empty (None), or a column they lack, is drawn. Everything
    else is drawn.
    """
    seed = scenario.seed
    demand = scenario.demand
    if calls is None and demand.trace is not None:
        calls = trace_calls(scenario, replication)
    if calls is None:
        base = _arrivals(scenario, network, replication)
        n = len(base)
        fault = _categorical(
            named_rng(seed, "faults", replication), [f.share for f in demand.fault_classes], n
        )
        segment = _categorical(
            named_rng(seed, "segments", replication), [s.share for s in demand.segments], n
        )
    else:
        base = calls.sort_values("t_call_h", kind="stable").reset_index(drop=True)
        n = len(base)
        base["surge"] = np.int8(-1)
        # A trace's own fault and segment where it gives them, else drawn from the shares.
        fault, segment = (
            _given_or_drawn(
                base,
                column,
                [c.name for c in classes],
                [c.share for c in classes],
                named_rng(seed, stream, replication),
            )
            for column, classes, stream in (
                ("fault", demand.fault_classes, "faults"),
                ("segment", demand.segments, "segments"),
            )
        )

    lat = base["lat"].to_numpy(float)
    lon = base["lon"].to_numpy(float)
    # Which demand area a call belongs to: the one it was drawn for; for a replayed call,
    # or one scattered around a point of a demand CSV, the one whose cell holds its place.
    area = (
        base["area"].to_numpy(np.int64, copy=True) if "area" in base else np.full(n, -1, np.int64)
    )
    unknown = np.flatnonzero(area < 0)
    if len(unknown):
        area[unknown] = locate_areas(network.area_columns, lat[unknown], lon[unknown])

    def rng(name: str) -> np.random.Generator:
        return named_rng(seed, name, replication)

    hotline = scenario.hotline
    attempts = hotline.max_attempts
    min_per_h = 1.0 / 60.0
    handling_h = hotline.handling_time_min.sample(rng("handling"), (n, attempts)) * min_per_h
    if hotline.patience_min is None:
        patience_h = np.full((n, attempts), np.inf)
    else:
        patience_h = hotline.patience_min.sample(rng("patience"), (n, attempts)) * min_per_h
    redial_delay_h = hotline.redial_delay_min.sample(rng("redial_delay"), (n, attempts)) * min_per_h

    # Per fault class, each from a stream of its own: another class's settings never
    # shift these draws.
    repair_h = np.empty(n)
    part_delay_h = np.empty(n)
    workshop_h = np.empty(n)
    for k, fc in enumerate(demand.fault_classes):
        mask = fault == k
        m = int(mask.sum())
        repair_h[mask] = fc.repair_time_min.sample(rng(f"repair:{fc.name}"), m) * min_per_h
        part_delay_h[mask] = fc.part_delay_h.sample(rng(f"part_delay:{fc.name}"), m)
        workshop_h[mask] = fc.workshop_repair_h.sample(rng(f"workshop:{fc.name}"), m)

    ops = scenario.stations
    noise_cv = scenario.travel.noise_cv
    contractors = scenario.contractors
    # Nearest of the shops scattered as a planar Poisson process: Rayleigh distance.
    shops_per_km2 = contractors.shops_per_1000_km2 / 1000.0
    contractor_km = rng("contractor_distance").rayleigh(
        1.0 / math.sqrt(2 * math.pi * shops_per_km2), n
    )
    point = base["point"].to_numpy(np.int64) if "point" in base else np.full(n, -1, dtype=np.int64)
    candidates, candidate_km = network.nearest_stations(lat, lon, scenario.dispatch.candidates)
    if network.travel_matrix is not None:  # ranked by road time instead (sim.model.travel_matrix)
        candidates, candidate_km = rank_candidates(
            network.travel_matrix,
            network.nearest_stations,
            TravelModel(scenario.travel),
            lat,
            lon,
            area,
            base["t_call_h"].to_numpy(float),
            scenario.dispatch.candidates,
            point,
        )
    return CallStream(
        t_call_h=base["t_call_h"].to_numpy(float),
        lat=lat,
        lon=lon,
        area=np.asarray(area, dtype=np.int64),
        segment=segment,
        fault=fault,
        surge=base["surge"].to_numpy(np.int8),
        handling_h=handling_h,
        patience_h=patience_h,
        redial_u=rng("redial").random((n, attempts)),
        redial_delay_h=redial_delay_h,
        remote_u=rng("remote").random(n),
        contact_delay_h=ops.contact_delay_min.sample(rng("contact"), n) * min_per_h,
        turnout_day_h=ops.turnout_day_min.sample(rng("turnout_day"), n) * min_per_h,
        turnout_night_h=ops.turnout_night_min.sample(rng("turnout_night"), n) * min_per_h,
        drive_noise=_lognormal_noise(rng("drive_noise"), noise_cv, n),
        return_noise=_lognormal_noise(rng("return_noise"), noise_cv, n),
        repair_h=repair_h,
        fix_u=rng("on_site_fix").random(n),
        part_u=rng("part_missing").random(n),
        part_delay_h=part_delay_h,
        tow_wait_h=ops.tow_wait_h.sample(rng("tow_wait"), n),
        workshop_h=workshop_h,
        complaint_u=rng("complaint").random(n),
        complaint_work_h=scenario.complaints.work_time_h.sample(rng("complaint_work"), n),
        contractor_u=rng("contractor_accept").random(n),
        contractor_km=contractor_km,
        contractor_delay_h=contractors.response_delay_h.sample(rng("contractor_delay"), n),
        candidates=candidates,
        candidate_km=candidate_km,
        trace_row=(
            base["trace_row"].to_numpy(np.int64)
            if "trace_row" in base
            else np.full(n, -1, dtype=np.int64)
        ),
        point=point,
    )


def _given_or_drawn(
    table: pd.DataFrame,
    column: str,
    names: list[str],
    shares: list[float],
    rng: np.random.Generator,
) -> np.ndarray:
    """Codes of the names in ``column``; drawn by ``shares`` where it is empty or absent."""
    codes = _categorical(rng, shares, len(table))
    if column in table:
        given = table[column].notna().to_numpy()
        codes[given] = _names_to_index(table[given], column, names)
    return codes


def _names_to_index(table: pd.DataFrame, column: str, names: list[str]) -> np.ndarray:
    if column not in table:
        return np.zeros(len(table), dtype=np.int8)
    lookup = {name: i for i, name in enumerate(names)}
    values = table[column].astype(str)
    unknown = sorted(set(values) - set(lookup))
    if unknown:
        raise ScenarioError(f"unknown {column} names {unknown}; known: {names}", field=column)
    return values.map(lookup).to_numpy(np.int8)


def read_call_trace(path: str | Path) -> pd.DataFrame:
    """A recorded call list: CSV with t_call_h, lat, lon and optional fault, segment."""
    path = Path(path)
    raw = read_csv_table(path, "the call trace", {"t_call_h", "lat", "lon"}, MAX_TRACE_CALLS)
    table = raw.copy()
    table["t_call_h"] = number_column(raw, "t_call_h", path, low=0)
    table["lat"] = number_column(raw, "lat", path, low=-90, high=90)
    table["lon"] = number_column(raw, "lon", path, low=-180, high=180)
    return table
