"""Network designs and their analytic first stage: candidate sites, demand points, coverage.

A *design* is a number of vans at each candidate site; a site with no van is closed.
It becomes a scenario through a stations CSV (id, lat, lon, vans, workshop_bays) that
``network.stations.csv`` loads, so that every design the optimiser evaluates, and the
one it returns, is read back exactly as a planner would load it.

The first stage seeds the search from the scenario's own models, never from its runs:

* demand points: calls drawn from the scenario's demand model (streams kept for design,
  replication numbers from :data:`DESIGN_REPLICATION` on, which no run uses), pooled on a
  grid of ``cell_km`` cells;
* the chance of arriving within the promise at a given road distance, when a van sets
  off at once: Monte Carlo over the scenario's handling, turn-out, speed and noise
  distributions (:func:`on_time_probability`); the coverage radius is the distance up to
  which that chance stays at least the coverage level;
* stations by the maximal covering model (Church & ReVelle 1974) or the p-median
  (Hakimi 1964; ReVelle & Swain 1970) over the candidate sites;
* vans by expected covering (Daskin 1983) whose busy fractions come from a short
  simulation (:func:`probe`): when the dispatch rule keeps each order at its nearest
  station, every station's value is its own (local busy fractions, ReVelle & Hogan
  1989) and the allocation is :func:`~sim.experiments.design.covering.separable_allocation`;
  otherwise Daskin's MEXCLP with one system-wide busy fraction.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.spatial import cKDTree

from sim.analysis.kpis import van_busy_hours
from sim.errors import UserInputError
from sim.experiments.design.covering import (
    Solve,
    expected_covering,
    local_availability,
    maximal_covering,
    p_median,
    separable_allocation,
)
from sim.experiments.runs.executor import Experiment
from sim.experiments.runs.run import run_jobs
from sim.model.demand import draw_call_stream
from sim.model.geo import EARTH_RADIUS_KM, SpatialIndex, great_circle_km_array, to_xyz
from sim.model.loading import with_fields
from sim.model.network import Network
from sim.model.scenario import Scenario
from sim.model.streams import named_rng
from sim.model.travel import PromiseTable, TravelModel

DESIGN_REPLICATION = 1_000_000
"""First replication number of the streams the design stage draws (demand points, probe).

Runs number their replications from 0, so the first stage never sees the call streams
that judge the designs.
"""
PROBE_REPLICATION = DESIGN_REPLICATION + 900_000

# Dispatch rules that keep an order at its nearest station until one of its own vans is
# free: under them a station's vans serve its own catchment only.
STATION_BOUND_POLICIES = frozenset({"nearest_station", "priority"})

# Jobs a station's measured busy time per job counts for against the pooled mean (a
# station with few jobs in the probe keeps close to the pooled value).
_SHRINK_JOBS = 10.0


# --------------------------------------------------------------------------- sites


@dataclass(frozen=True)
class Sites:
    """Candidate sites, one row each: the current stations first, then seats, then a CSV's.

    Columns: id, lat, lon, workshop_bays, opening_cost_cny, origin ("current", "seat",
    "candidate"), adcode, prefecture, province (of the area the site lies in: a
    station's own, a seat's, a candidate's nearest seat).
    """

    table: pd.DataFrame

    def __len__(self) -> int:
        return len(self.table)

    @property
    def lat(self) -> np.ndarray:
        return self.table["lat"].to_numpy(float)

    @property
    def lon(self) -> np.ndarray:
        return self.table["lon"].to_numpy(float)

    @property
    def ids(self) -> np.ndarray:
        return self.table["id"].to_numpy(str)

    @property
    def is_current(self) -> np.ndarray:
        return (self.table["origin"] == "current").to_numpy()

    @property
    def opening_cost_cny(self) -> np.ndarray:
        return self.table["opening_cost_cny"].to_numpy(float)


def _read_candidates(path: Path) -> pd.DataFrame:
    """A CSV of candidate sites: id, lat, lon, optional opening_cost_cny and workshop_bays."""
    try:
        table = pd.read_csv(path, dtype={"id": str})
    except FileNotFoundError:
        raise UserInputError("candidate sites file not found", file=path) from None
    except Exception as exc:
        raise UserInputError(f"cannot read candidate sites: {exc}", file=path) from None
    missing = {"id", "lat", "lon"} - set(table.columns)
    if missing:
        raise UserInputError(f"candidate sites lack columns {sorted(missing)}", file=path, line=1)
    checks = [("lat", -90.0, 90.0), ("lon", -180.0, 180.0)]
    if "opening_cost_cny" in table:
        checks.append(("opening_cost_cny", 0.0, math.inf))
    else:
        table["opening_cost_cny"] = 0.0
    if "workshop_bays" in table:
        checks.append(("workshop_bays", 0.0, math.inf))
    for column, low, high in checks:
        values = pd.to_numeric(table[column], errors="coerce")
        bad = ~values.between(low, high)  # NaN is out of range too
        if column == "workshop_bays":
            bad |= values != values.round()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise UserInputError("missing or out of range", file=path, line=row + 2, field=column)
        table[column] = values
    ids = table["id"].fillna("").astype(str).str.strip()
    empty = ids == ""
    repeated = ids.duplicated()
    if empty.any() or repeated.any():
        row = int(np.flatnonzero((empty | repeated).to_numpy())[0])
        what = "empty" if empty.iloc[row] else "given twice"
        raise UserInputError(f"site id {what}", file=path, line=row + 2, field="id")
    table["id"] = ids
    return table


def candidate_sites(
    scenario: Scenario,
    network: Network,
    *,
    candidates_csv: Path | None = None,
    seat_opening_cost_cny: float = 0.0,
    merge_km: float = 1.0,
) -> Sites:
    """The current stations, the scenario's prefecture seats and a CSV's sites.

    A seat within ``merge_km`` of a current station is that station already and is left
    out. New sites get the scenario's workshop bays (those of generated stations, else
    2, the stations CSV default) unless the CSV gives their own.
    """
    generate = scenario.network.stations.generate
    bays = generate.workshop_bays if generate is not None else 2
    current = pd.DataFrame(
        {
            "id": network.station_name.astype(str),
            "lat": network.station_lat,
            "lon": network.station_lon,
            "workshop_bays": network.workshop_bays,
            "opening_cost_cny": 0.0,
            "origin": "current",
        }
    )
    areas = network.areas  # the scenario's areas, in the order of network.station_area
    seat_lat = areas["lat"].to_numpy(float)
    seat_lon = areas["lon"].to_numpy(float)
    _, near_km = network.nearest_stations(seat_lat, seat_lon, 1)
    fresh = near_km[:, 0] > merge_km
    seats = pd.DataFrame(
        {
            "id": areas["name"].to_numpy(str)[fresh],
            "lat": seat_lat[fresh],
            "lon": seat_lon[fresh],
            "workshop_bays": bays,
            "opening_cost_cny": float(seat_opening_cost_cny),
            "origin": "seat",
        }
    )
    taken = set(current["id"])
    seats["id"] = [
        name if name not in taken else f"{name}-{adcode}"
        for name, adcode in zip(seats["id"], areas["adcode"].to_numpy(str)[fresh], strict=True)
    ]
    parts = [current, seats]
    if candidates_csv is not None:
        extra = _read_candidates(candidates_csv)
        taken |= set(seats["id"])
        clash = extra["id"].isin(taken).to_numpy()
        if clash.any():
            row = int(np.flatnonzero(clash)[0])
            raise UserInputError(
                f"site id {extra['id'].iat[row]!r} is already a station or a seat",
                file=candidates_csv,
                line=row + 2,
                field="id",
            )
        if "workshop_bays" not in extra:
            extra["workshop_bays"] = bays
        extra["origin"] = "candidate"
        parts.append(extra[["id", "lat", "lon", "workshop_bays", "opening_cost_cny", "origin"]])
    table = pd.concat(parts, ignore_index=True)
    table["workshop_bays"] = table["workshop_bays"].astype(np.int64)
    # The area each site belongs to: a current station's own (where it was generated;
    # for a stations CSV the network's rule, the nearest seat), a seat's own prefecture,
    # and for a candidate of a CSV the area of the nearest seat. The nearest seat alone
    # would put a station scattered towards a neighbour's seat in the neighbour's area.
    nearest, _ = SpatialIndex(seat_lat, seat_lon).nearest(
        table["lat"].to_numpy(float), table["lon"].to_numpy(float), 1
    )
    area = nearest[:, 0]
    n_current = len(current)
    own = network.station_area
    area[:n_current] = np.where(own >= 0, own, area[:n_current])
    area[n_current : n_current + len(seats)] = np.flatnonzero(fresh)
    table["adcode"] = areas["adcode"].to_numpy(str)[area]
    table["prefecture"] = areas["name"].to_numpy(str)[area]
    table["province"] = areas["province"].to_numpy(str)[area]
    return Sites(table)


# --------------------------------------------------------------------------- designs


def design_table(sites: Sites, vans: np.ndarray) -> pd.DataFrame:
    """The open sites of a design as a stations table: id, lat, lon, vans, workshop_bays."""
    is_open = np.asarray(vans) > 0
    table = sites.table.loc[is_open, ["id", "lat", "lon", "workshop_bays"]].copy()
    table.insert(3, "vans", np.asarray(vans, dtype=np.int64)[is_open])
    return table.reset_index(drop=True)


def design_csv(sites: Sites, vans: np.ndarray) -> str:
    """The stations CSV of a design, byte for byte what is evaluated and returned."""
    text: str = design_table(sites, vans).to_csv(index=False, lineterminator="\n")
    return text


def design_key(csv_text: str) -> str:
    """A short name for a design: the start of its CSV's SHA-256."""
    return hashlib.sha256(csv_text.encode("utf-8")).hexdigest()[:16]


def design_scenario(base: Scenario, stations_csv: Path) -> Scenario:
    """``base`` with its stations and vans read from ``stations_csv``."""
    return with_fields(
        base,
        {
            "network.stations": {"generate": None, "csv": str(Path(stations_csv).resolve())},
            "network.vans.total": None,
        },
    )


# --------------------------------------------------------------------------- demand


@dataclass(frozen=True)
class DemandPoints:
    """Where calls come from, pooled on a grid: point lat, lon and calls per hour."""

    lat: np.ndarray
    lon: np.ndarray
    calls_per_h: np.ndarray
    sampled_calls: int
    draws: int

    def __len__(self) -> int:
        return len(self.lat)


def demand_points(
    scenario: Scenario, network: Network, *, min_calls: int = 20_000, cell_km: float = 10.0
) -> DemandPoints:
    """Calls drawn from the scenario's own demand model, pooled into ``cell_km`` cells.

    Whole horizons are drawn (design streams, never a run's) until at least
    ``min_calls`` calls are in hand; each cell becomes a point at the mean of its calls,
    weighted by its calls per hour.
    """
    lats, lons = [], []
    total = 0
    draws = 0
    while total < min_calls and draws < 10_000:
        stream = draw_call_stream(scenario, network, DESIGN_REPLICATION + draws)
        lats.append(stream.lat)
        lons.append(stream.lon)
        total += len(stream)
        draws += 1
    lat = np.concatenate(lats)
    lon = np.concatenate(lons)
    if total == 0:
        raise UserInputError("the scenario's demand model draws no calls", field="demand")
    step = cell_km / 111.2
    row = np.floor(lat / step)
    column = np.floor(lon * np.cos(np.radians((row + 0.5) * step)) / step)
    frame = pd.DataFrame({"row": row, "column": column, "lat": lat, "lon": lon})
    cells = frame.groupby(["row", "column"], sort=True).agg(
        lat=("lat", "mean"), lon=("lon", "mean"), calls=("lat", "size")
    )
    hours = draws * scenario.horizon.hours
    return DemandPoints(
        cells["lat"].to_numpy(float),
        cells["lon"].to_numpy(float),
        cells["calls"].to_numpy(float) / hours,
        total,
        draws,
    )


# --------------------------------------------------------------------------- coverage


def on_time_probability(
    scenario: Scenario, road_km: np.ndarray, *, samples: int = 4000
) -> np.ndarray:
    """P(arrival within the promise) at each road distance, for a van that sets off at once.

    Monte Carlo over the scenario's own distributions: the hour of the call (hour
    profile), the hotline's handling time, the station's turn-out by day or night, the
    band speed at that hour and the trip's noise. The hotline queue and any wait for a
    van are left out: they are what the vans, not the sites, decide.
    """
    rng = named_rng(scenario.seed, "design:coverage")
    profile = np.asarray(scenario.demand.hour_of_day_profile, dtype=float)
    hour = rng.choice(24, size=samples, p=profile / profile.sum())
    handling_h = scenario.hotline.handling_time_min.sample(rng, samples) / 60.0
    ops = scenario.stations
    day_h = ops.turnout_day_min.sample(rng, samples) / 60.0
    night_h = ops.turnout_night_min.sample(rng, samples) / 60.0
    start, end = ops.night_start_h, ops.night_end_h
    night = (hour >= start) | (hour < end) if start > end else (hour >= start) & (hour < end)
    turnout_h = np.where(night, night_h, day_h)
    cv = scenario.travel.noise_cv
    if cv > 0:
        sigma2 = math.log1p(cv**2)
        noise = rng.lognormal(-sigma2 / 2, math.sqrt(sigma2), samples)
    else:
        noise = np.ones(samples)
    travel = TravelModel(scenario.travel)
    promises = PromiseTable(scenario.promises.arrival)
    factor = np.asarray(travel.hourly_speed_factor, dtype=float)[hour]
    fixed_h = handling_h + turnout_h
    km = np.atleast_1d(np.asarray(road_km, dtype=float))
    out = np.empty(len(km))
    for k, d in enumerate(km):
        drive_h = d / (travel.speed_kmh(float(d)) * factor) * noise
        out[k] = np.mean(fixed_h + drive_h <= promises.arrival_h(float(d)))
    return out


@dataclass(frozen=True)
class Coverage:
    """The on-time chance by road km (1 km steps) and the coverage radius at a level."""

    level: float
    road_km: np.ndarray
    probability: np.ndarray
    radius_road_km: float
    radius_gc_km: float

    def probability_at(self, road_km: np.ndarray) -> np.ndarray:
        """On-time chance at each road distance (the grid's value at or below it)."""
        index = np.clip(
            np.floor(np.asarray(road_km, float)).astype(np.int64), 0, len(self.road_km) - 1
        )
        chance: np.ndarray = self.probability[index]
        return chance


def coverage(scenario: Scenario, level: float, *, max_road_km: float = 1500.0) -> Coverage:
    """The on-time chance at every road km, and the radius where it first drops below ``level``."""
    grid = np.arange(0.0, max_road_km + 1.0)
    probability = on_time_probability(scenario, grid)
    below = np.flatnonzero(probability < level)
    radius_road = float(grid[below[0]] - 1.0) if len(below) else float(grid[-1])
    radius_road = max(radius_road, 0.0)
    travel = TravelModel(scenario.travel)
    # Road km grows strictly with great-circle km: invert it on a fine grid.
    gc = np.linspace(0.0, max_road_km, 30_001)
    road = travel.road_km_array(gc)
    radius_gc = float(gc[np.searchsorted(road, radius_road, side="right") - 1])
    return Coverage(level, grid, probability, radius_road, radius_gc)


def cover_matrix(
    points: DemandPoints, lat: np.ndarray, lon: np.ndarray, radius_gc_km: float
) -> sparse.csr_array:
    """(points x sites) 0/1: the site lies within ``radius_gc_km`` great-circle km."""
    chord = 2.0 * math.sin(min(math.pi, radius_gc_km / EARTH_RADIUS_KM) / 2.0)
    tree = cKDTree(to_xyz(lat, lon))
    neighbours = tree.query_ball_point(to_xyz(points.lat, points.lon), r=chord)
    rows = np.repeat(np.arange(len(points)), [len(n) for n in neighbours])
    cols = np.fromiter((j for n in neighbours for j in n), dtype=np.int64, count=len(rows))
    data = np.ones(len(rows))
    return sparse.csr_array((data, (rows, cols)), shape=(len(points), len(lat)))


# --------------------------------------------------------------------------- probe


@dataclass(frozen=True)
class Probe:
    """What a short simulation of the current network says about the vans' work."""

    days: float
    busy_h_per_job: np.ndarray  # per current station; NaN where it had no job
    jobs: np.ndarray  # per current station
    pooled_busy_h_per_job: float
    dispatched_share: float  # dispatched calls / calls
    van_utilisation: float


def probe(
    scenario: Scenario, network: Network, days: float, experiment: Experiment | None = None
) -> Probe:
    """Run the scenario for ``days`` (one replication on a design stream) and measure the vans.

    ``experiment`` (keeping its tables) runs it, into its result store if it has one.
    """
    days = min(days, scenario.horizon.days)
    short = scenario.with_overrides(
        horizon={**scenario.horizon.model_dump(), "days": days, "warmup_days": 0.0}
    )
    (result,) = run_jobs([(short, PROBE_REPLICATION, None)], experiment=experiment)
    calls, units = result.calls, result.units
    horizon_h = short.horizon.hours
    busy = van_busy_hours(units, 0.0, horizon_h)
    busy = np.concatenate([busy, np.zeros(max(0, network.n_vans - len(busy)))])
    busy_by_station = np.bincount(
        network.van_station, weights=busy[: network.n_vans], minlength=network.n_stations
    )
    van = calls["van"].to_numpy()
    served = (van >= 0) & (van < network.n_vans)  # contractors' jobs are no van's
    home = network.van_station[van[served]]
    jobs = np.bincount(home, minlength=network.n_stations).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_job = np.where(jobs > 0, busy_by_station / jobs, np.nan)
    pooled = float(busy_by_station.sum() / jobs.sum()) if jobs.sum() else 1.0
    dispatched = float(calls["dispatched_h"].notna().mean()) if len(calls) else 1.0
    utilisation = float(busy.sum() / (network.n_vans * horizon_h))
    return Probe(days, per_job, jobs, pooled, dispatched, utilisation)


# --------------------------------------------------------------------------- seeding


@dataclass(frozen=True)
class VanModel:
    """The first stage's view of a design's stations: load and value by vans.

    ``catchment_calls_per_h``: dispatched calls an hour whose nearest open station it is;
    ``on_time_calls_per_h``: the same weighted by the on-time chance of the drive;
    ``load``: offered load in vans (calls an hour x busy hours a job).
    """

    site: np.ndarray  # the open sites, in site order
    catchment_calls_per_h: np.ndarray
    on_time_calls_per_h: np.ndarray
    busy_h_per_job: np.ndarray

    @property
    def load(self) -> np.ndarray:
        erlangs: np.ndarray = self.catchment_calls_per_h * self.busy_h_per_job
        return erlangs

    def value(self, vans: np.ndarray) -> float:
        """Expected on-time calls an hour with ``vans`` at the open sites (in site order)."""
        return float((self.on_time_calls_per_h * local_availability(self.load, vans)).sum())

    def tables(self, low: np.ndarray, high: np.ndarray) -> list[np.ndarray]:
        """Each open site's value with ``low[j]`` to ``high[j]`` vans (for the allocation MILP)."""
        return [
            self.on_time_calls_per_h[j]
            * local_availability(
                np.full(high[j] - low[j] + 1, self.load[j]), np.arange(low[j], high[j] + 1)
            )
            for j in range(len(self.site))
        ]

    def marginal(self, vans: np.ndarray, step: int) -> np.ndarray:
        """What one van more (``step`` 1) or less (-1) at each open site changes in value."""
        now = local_availability(self.load, vans)
        then = local_availability(self.load, np.maximum(vans + step, 0))
        return np.asarray(self.on_time_calls_per_h * (then - now), dtype=float)


@dataclass(frozen=True)
class FirstStageInputs:
    """What the first stage's van models are built on, whichever sites are open."""

    scenario: Scenario
    sites: Sites
    points: DemandPoints
    cover: Coverage
    probe: Probe


def van_model(inputs: FirstStageInputs, is_open: np.ndarray) -> VanModel:
    """Each open site's catchment (nearest open site of every point) and its busy time a job."""
    scenario, sites, points, cover, probe_result = (
        inputs.scenario, inputs.sites, inputs.points, inputs.cover, inputs.probe,
    )  # fmt: skip
    site = np.flatnonzero(is_open)
    lat, lon = sites.lat[site], sites.lon[site]
    nearest, gc_km = SpatialIndex(lat, lon).nearest(points.lat, points.lon, 1)
    road = TravelModel(scenario.travel).road_km_array(gc_km[:, 0])
    rate = points.calls_per_h * probe_result.dispatched_share
    catchment = np.bincount(nearest[:, 0], weights=rate, minlength=len(site))
    on_time = np.bincount(
        nearest[:, 0], weights=rate * cover.probability_at(road), minlength=len(site)
    )
    # Busy time a job: the probe's per station, pulled towards the pooled mean by its jobs.
    pooled = probe_result.pooled_busy_h_per_job
    per_job = np.full(len(site), pooled)
    current = np.flatnonzero(sites.is_current[site])
    jobs = probe_result.jobs[site[current]]
    measured = np.nan_to_num(probe_result.busy_h_per_job[site[current]], nan=pooled)
    per_job[current] = (jobs * measured + _SHRINK_JOBS * pooled) / (jobs + _SHRINK_JOBS)
    return VanModel(site, catchment, on_time, per_job)


def _upper_vans(load: np.ndarray, low: np.ndarray, total: int, cap: int | None) -> np.ndarray:
    """The most vans worth considering at each site: beyond it a van is almost never needed."""
    high = np.maximum(low, np.ceil(load + 4.0 * np.sqrt(load) + 2.0)).astype(np.int64)
    if cap is not None:
        high = np.minimum(high, max(cap, 0))
        high = np.maximum(high, low)
    # Room for the whole fleet: when the bounds are too tight, widen them all alike.
    while high.sum() < total and (cap is None or (high < cap).any()):
        high = high + 1 if cap is None else np.minimum(high + 1, cap)
    bounded: np.ndarray = high
    return bounded


@dataclass
class Stage1:
    """The seeded design and how the first stage got there."""

    vans: np.ndarray  # per site
    coverage: Coverage
    points: DemandPoints
    probe: Probe
    van_model_kind: str  # "local" (separable) or "daskin"
    station_solve: Solve | None
    van_solve: Solve
    model_value_current: float
    model_value_seed: float
    model_fewest_vans: int | None
    notes: list[str] = field(default_factory=list)


def seed_stations(
    method: str,
    sites: Sites,
    points: DemandPoints,
    cover: Coverage,
    current_open: np.ndarray,
    *,
    max_stations: int,
    fixed: np.ndarray,
    opening_budget_cny: float | None,
    time_limit_s: float,
) -> tuple[np.ndarray, Solve | None]:
    """Open sites by ``method``: "keep" (the current ones), "mclp" or "p_median"."""
    if method == "keep":
        return current_open.copy(), None
    # Among equally good answers, change the fewest current stations and spend the least.
    cost = sites.opening_cost_cny
    scale = float(cost.max()) if len(cost) and cost.max() > 0 else 1.0
    tie_break = np.where(current_open, -1.0, 1.0) + 0.5 * cost / scale
    if method == "mclp":
        a = cover_matrix(points, sites.lat, sites.lon, cover.radius_gc_km)
        budget_cost = np.where(current_open, 0.0, cost)
        solution = maximal_covering(
            points.calls_per_h,
            a,
            max_stations,
            fixed=fixed,
            cost=budget_cost if opening_budget_cny is not None else None,
            budget=opening_budget_cny,
            tie_break=tie_break,
            time_limit_s=time_limit_s,
        )
        return solution.open, solution.solve
    if method == "p_median":
        size = len(points) * len(sites)
        if size > 3_000_000:
            raise UserInputError(
                f"p-median over {len(points)} demand points x {len(sites)} sites is too large; "
                "use mclp or coarser demand cells (cell_km)",
                field="stations_model",
            )
        if opening_budget_cny is not None:
            raise UserInputError(
                "an opening budget needs the mclp stations model", field="opening_budget_cny"
            )
        distance = great_circle_km_array(
            points.lat[:, None], points.lon[:, None], sites.lat[None, :], sites.lon[None, :]
        )
        solution = p_median(
            points.calls_per_h, distance, max_stations, fixed=fixed, time_limit_s=time_limit_s
        )
        return solution.open, solution.solve
    raise ValueError(f"unknown stations model {method!r}")


def seed_vans(
    inputs: FirstStageInputs,
    is_open: np.ndarray,
    *,
    total_vans: int,
    min_vans: int,
    max_vans: int | None,
    time_limit_s: float,
) -> tuple[np.ndarray, Solve, str, VanModel]:
    """All ``total_vans`` at the open sites by expected covering; returns vans per site."""
    model = van_model(inputs, is_open)
    scenario, sites, points, cover = inputs.scenario, inputs.sites, inputs.points, inputs.cover
    n_open = len(model.site)
    low = np.full(n_open, min_vans, dtype=np.int64)
    high = _upper_vans(model.load, low, total_vans, max_vans)
    if scenario.dispatch.policy in STATION_BOUND_POLICIES:
        allocation = separable_allocation(
            model.tables(low, high),
            low,
            total_vans=total_vans,
            exact=True,
            time_limit_s=time_limit_s,
        )
        kind = "local"
    else:
        a = cover_matrix(points, sites.lat[model.site], sites.lon[model.site], cover.radius_gc_km)
        rate = points.calls_per_h * inputs.probe.dispatched_share
        q = min(0.95, float(model.load.sum()) / max(total_vans, 1))
        allocation = expected_covering(
            rate,
            a,
            total_vans,
            q,
            min_vans=low,
            max_vans=high,
            max_levels=max(1, math.ceil(math.log(1e-6) / math.log(max(q, 1e-6)))),
            exact=True,
            # Vans the coverage levels cannot tell apart go where the load is.
            tie_break=model.load,
            time_limit_s=time_limit_s,
        )
        kind = "daskin"
    vans = np.zeros(len(sites), dtype=np.int64)
    vans[model.site] = allocation.vans
    return vans, allocation.solve, kind, model


def fewest_vans(
    model: VanModel, target: float, min_vans: int, max_vans: int | None, time_limit_s: float
) -> int:
    """The fewest vans whose expected on-time calls (local model) reach ``target``."""
    low = np.full(len(model.site), min_vans, dtype=np.int64)
    high = _upper_vans(model.load, low, 0, max_vans)
    allocation = separable_allocation(
        model.tables(low, high), low, target=target, time_limit_s=time_limit_s
    )
    return int(allocation.vans.sum())


__all__ = [
    "DESIGN_REPLICATION",
    "Coverage",
    "DemandPoints",
    "Probe",
    "Sites",
    "Stage1",
    "VanModel",
    "candidate_sites",
    "cover_matrix",
    "coverage",
    "demand_points",
    "design_csv",
    "design_key",
    "design_scenario",
    "design_table",
    "fewest_vans",
    "on_time_probability",
    "probe",
    "seed_stations",
    "seed_vans",
    "van_model",
]
