"""Road travel-time matrices: road km and minutes from stations to prefectures, by hour band.

A matrix (``travel.matrix``: Parquet or CSV, format in docs/travel.md) has one row per
origin station, destination prefecture (adcode) and hour band ``[from_hour, to_hour)``,
with the road km and the minutes of the drive from the station to the prefecture's seat.

How it is used. A call stands somewhere in its prefecture, rarely at the seat; the
matrix says how the roads between a station and that prefecture compare with the travel
model (:class:`~sim.model.travel.TravelModel`). For every (station, prefecture, band) it
is read once into two factors, matrix km / model km and matrix minutes / model minutes,
both measured between the station and the seat. A drive from the station to a call (or
back) is then the travel model's drive to the call's own place, with its km and its time
scaled by the pair's factors. Pairs, and hours, the matrix lacks keep the travel model
(factor 1), as does a station standing at the seat itself (the matrix says nothing about
trips inside the prefecture then). A matrix written by ``rescue-sim travel-matrix`` holds
exactly the model's values, so every factor is exactly 1.0 and every drive is the travel
model's to the bit.

Demand points. With a demand CSV (``demand.spatial.csv``), a row's destination may be
one of its points instead, ``point:N`` (N: the point's row in the CSV, counted from 0),
with the road km and minutes from the station to the point itself. A call drawn at that
point is driven by the (station, point) pair's factors, measured between the station and
the point: standing at the point (``scatter_km: 0``) its drive is the matrix's. Pairs
the matrix lacks fall back to the (station, prefecture) pair's factors, then to 1.

Dispatch: a call's candidate stations are the nearest by great circle, a wider pool of
them, ranked by the expected drive at the call's hour with the matrix's time factor, the
first ``dispatch.candidates`` kept.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from sim.errors import ScenarioError
from sim.model.csv_input import line_of, number_column, read_csv_table, rows_not_lines
from sim.model.geo import great_circle_km, great_circle_km_array
from sim.model.reference import areas as all_areas
from sim.model.travel import TravelModel

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("origin", "destination", "from_hour", "to_hour", "road_km", "minutes")
# A destination that is a demand point of the scenario's demand CSV: "point:17".
POINT_PREFIX = "point:"
MAX_MATRIX_ROWS = 20_000_000
# Columns read as text whatever their type in a Parquet file (an adcode may be a number).
_TEXT_COLUMNS = ("origin", "destination")
MIN_PER_H = 60.0
# Hours in a day, as the scenario's hourly speed factor has them.
HOURS = 24
NearestFn = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]


class StationSet(Protocol):
    """What the matrix needs of a network (sim.model.network.Network has it)."""

    @property
    def station_name(self) -> np.ndarray: ...

    @property
    def station_lat(self) -> np.ndarray: ...

    @property
    def station_lon(self) -> np.ndarray: ...

    @property
    def areas(self) -> pd.DataFrame: ...

    @property
    def n_stations(self) -> int: ...

    def nearest_stations(
        self, lat: np.ndarray, lon: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]: ...


def band_minutes(
    travel: TravelModel, road_km: np.ndarray, from_hour: int, to_hour: int
) -> np.ndarray:
    """The travel model's minutes for drives of ``road_km`` starting in ``[from_hour, to_hour)``.

    The one rule both the matrix writer and the reader's factors use, so that a written
    matrix read back gives factors of exactly 1.0. Within a band of equal hourly speed
    factors it is ``TravelModel.drive_h`` (no noise) in minutes; across unequal ones, the
    mean over the band's hours.
    """
    road = np.asarray(road_km, dtype=float)
    band_kmh = travel.speed_kmh_array(road)
    factors = travel.hourly_speed_factor[from_hour:to_hour]
    per_hour = [road / (band_kmh * factor) * MIN_PER_H for factor in factors]
    if len(set(factors)) == 1:
        return per_hour[0]
    mean: np.ndarray = np.mean(per_hour, axis=0)
    return mean


def equal_factor_bands(hourly_speed_factor: Sequence[float]) -> list[tuple[int, int]]:
    """Hour bands ``[from, to)`` that each hold a run of equal hourly speed factors."""
    bands: list[tuple[int, int]] = []
    start = 0
    for hour in range(1, HOURS + 1):
        if hour == HOURS or hourly_speed_factor[hour] != hourly_speed_factor[start]:
            bands.append((start, hour))
            start = hour
    return bands


@dataclass(frozen=True)
class TravelMatrix:
    """A matrix read and checked against a network: factors by (station, area) pair and band.

    ``pair_of[station * n_areas + area]`` is the pair's row in the factor tables, -1 when
    the matrix lacks the pair; ``band_of_hour[h]`` the band of hour ``h``, -1 when no band
    covers it. ``km_factor`` and ``time_factor`` have one row per pair and one column per
    band; 1.0 where the matrix lacks the band or cannot be scaled (see the module doc).
    """

    source: str
    n_stations: int
    n_areas: int
    pair_of: np.ndarray
    bands: tuple[tuple[int, int], ...]
    band_of_hour: np.ndarray
    km_factor: np.ndarray
    time_factor: np.ndarray
    rows: int
    points: PointFactors | None = None  # the rows of demand points, if the matrix has any

    @property
    def n_pairs(self) -> int:
        return len(self.km_factor)

    def factors_array(
        self,
        stations: np.ndarray,
        areas: np.ndarray,
        hours_h: np.ndarray,
        points: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The km and time factors of each (station, area, start time), 1.0 where unknown;
        ``points``: each call's demand point (-1: none), whose pair's factors come first."""
        stations = np.asarray(stations, dtype=np.int64)
        areas = np.broadcast_to(np.asarray(areas, dtype=np.int64), stations.shape)
        hour = np.floor(np.asarray(hours_h, dtype=float)).astype(np.int64) % HOURS
        band = self.band_of_hour[hour]
        band = np.broadcast_to(band, stations.shape)
        pair = self.pair_of[stations * self.n_areas + areas]
        known = (pair >= 0) & (band >= 0)
        km = np.ones(stations.shape)
        time = np.ones(stations.shape)
        km[known] = self.km_factor[pair[known], band[known]]
        time[known] = self.time_factor[pair[known], band[known]]
        if self.points is not None and points is not None:
            row = self.points.row_of(stations, np.broadcast_to(points, stations.shape))
            known = (row >= 0) & (band >= 0)
            km[known] = self.points.km_factor[row[known], band[known]]
            time[known] = self.points.time_factor[row[known], band[known]]
        return km, time

    def describe(self) -> str:
        """One line for ``validate``: rows, pairs and bands."""
        points = "" if self.points is None else f", {len(self.points.keys):,} station-point pairs"
        return (
            f"{Path(self.source).name}: {self.rows:,} rows, "
            f"{self.n_pairs:,} station-prefecture pairs{points}, {len(self.bands)} hour bands"
        )


@dataclass(frozen=True)
class PointFactors:
    """The factors of a matrix's (station, demand point) pairs (module doc).

    ``keys`` are ``station * n_points + point``, sorted; ``km_factor`` and
    ``time_factor`` have a row per key and a column per band of the matrix.
    """

    n_points: int
    keys: np.ndarray
    km_factor: np.ndarray
    time_factor: np.ndarray

    def row_of(self, stations: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Each (station, point) pair's row, -1 where the matrix lacks it (or point < 0)."""
        key = np.asarray(stations, dtype=np.int64) * self.n_points + np.asarray(points)
        at = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)  # never empty
        found = (np.asarray(points) >= 0) & (self.keys[at] == key)
        row: np.ndarray = np.where(found, at, -1)
        return row


# --------------------------------------------------------------------------- reading


def _read_table(path: Path) -> tuple[pd.DataFrame, bool]:
    """The matrix as a table of text cells, and whether it came from Parquet."""
    import pandas as pd

    if path.suffix.lower() in {".parquet", ".pq"}:
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many kinds for a file that is not Parquet
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise ScenarioError(f"not a readable Parquet file: {message}", file=path) from None
        missing = set(COLUMNS) - {str(c) for c in frame.columns}
        if missing:
            raise ScenarioError(f"the travel matrix lacks columns {sorted(missing)}", file=path)
        if len(frame) == 0:
            raise ScenarioError("the travel matrix has no rows", file=path)
        if len(frame) > MAX_MATRIX_ROWS:
            raise ScenarioError(
                f"{len(frame):,} rows; the travel matrix may have at most {MAX_MATRIX_ROWS:,}",
                file=path,
            )
        # Numbers stay numbers (checked by number_column); anything else is read as text, as
        # from a CSV (a float's str is its shortest round-trip form: the same value).
        table = pd.DataFrame(
            {
                c: frame[c]
                if c not in _TEXT_COLUMNS and frame[c].dtype.kind in "iuf"
                else frame[c].astype(str).where(frame[c].notna(), "")
                for c in COLUMNS
            }
        )
        return table, True
    return read_csv_table(path, "the travel matrix", set(COLUMNS), MAX_MATRIX_ROWS), False


@dataclass(frozen=True)
class _Source:
    """The file a matrix was read from: an error names the line of a CSV, the row of Parquet."""

    path: Path
    parquet: bool

    def where(self, row: int) -> tuple[int | None, str]:
        """The line (CSV) or the row named in the message (Parquet) of table row ``row``."""
        return (None, f"row {row + 1}: ") if self.parquet else (line_of(row), "")

    def error(self, message: str, row: int, column: str) -> ScenarioError:
        """The error for ``column`` of table row ``row``."""
        line, prefix = self.where(row)
        return ScenarioError(prefix + message, file=self.path, line=line, field=column)

    def refuse_first(self, bad: np.ndarray, column: str, problem: Callable[[int], str]) -> None:
        """Raise the error at the first row where ``bad`` holds; ``problem(row)`` words it."""
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise self.error(problem(row), row, column)


def _origins(table: pd.DataFrame, source: _Source, names: np.ndarray) -> np.ndarray:
    """Station index of each row: a station's name, or its index when no name matches."""
    import pandas as pd

    lookup = {str(name): i for i, name in enumerate(names.tolist())}
    text = table["origin"].str.strip()
    by_name = text.map(lookup)
    as_index = pd.to_numeric(text.where(text.str.isdigit()), errors="coerce")
    station = by_name.fillna(as_index.where(as_index < len(names)))
    source.refuse_first(
        station.isna().to_numpy(),
        "origin",
        lambda row: f"no station named {text.iat[row]!r} (nor with that index) in the network",
    )
    return station.to_numpy(dtype=np.int64)


def _points(text: pd.Series, source: _Source, n_points: int | None) -> np.ndarray:
    """Demand point of each row (``point:N``); -1 for a row of a prefecture."""
    number = text.str.removeprefix(POINT_PREFIX)
    is_point = (text.str.startswith(POINT_PREFIX)).to_numpy()
    source.refuse_first(
        is_point & ~number.str.fullmatch(r"0|[1-9][0-9]{0,17}").to_numpy(),
        "destination",
        lambda row: (
            f"{text.iat[row]!r}: a demand point is {POINT_PREFIX}N, N its row in the "
            "demand CSV counted from 0"
        ),
    )
    point = np.where(is_point, number.where(is_point, "-1").astype(np.int64), -1)
    source.refuse_first(
        is_point if n_points is None else point >= n_points,
        "destination",
        lambda row: (
            f"{text.iat[row]!r}: the scenario has no demand CSV (demand.spatial.csv)"
            if n_points is None
            else f"{text.iat[row]!r}: the demand CSV has {n_points:,} points "
            f"({POINT_PREFIX}0 to {POINT_PREFIX}{n_points - 1})"
        ),
    )
    return point


def _destinations(
    table: pd.DataFrame, source: _Source, scenario_areas: pd.DataFrame, n_points: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Area index of each row in the scenario's areas (-1 for a prefecture outside them,
    or a demand point), and its demand point (-1 for a prefecture)."""
    known = set(all_areas()["adcode"].astype(str))
    lookup = {str(code): i for i, code in enumerate(scenario_areas["adcode"].astype(str))}
    text = table["destination"].str.strip()
    point = _points(text, source, n_points)
    source.refuse_first(
        (~text.isin(known)).to_numpy() & (point < 0),
        "destination",
        lambda row: f"{text.iat[row]!r} is no prefecture adcode (seeds/prefectures.csv)",
    )
    return text.map(lookup).fillna(-1).to_numpy(dtype=np.int64), point


def _bands(
    start: np.ndarray, end: np.ndarray, source: _Source
) -> tuple[tuple[tuple[int, int], ...], np.ndarray]:
    """The distinct hour bands, checked not to overlap, and each row's band."""
    source.refuse_first(
        end <= start,
        "to_hour",
        lambda row: f"to_hour {end[row]:g} must be after from_hour {start[row]:g}",
    )
    pairs = sorted({(int(a), int(b)) for a, b in zip(start.tolist(), end.tolist(), strict=True)})
    for (a0, b0), (a1, b1) in itertools.pairwise(pairs):
        if a1 < b0:
            row = int(np.flatnonzero((start == a1) & (end == b1))[0])
            raise source.error(
                f"hour band {a1}-{b1} overlaps band {a0}-{b0}; bands must not overlap",
                row,
                "from_hour",
            )
    position = {band: k for k, band in enumerate(pairs)}
    band = np.array(
        [position[(int(a), int(b))] for a, b in zip(start.tolist(), end.tolist(), strict=True)],
        dtype=np.int64,
    )
    return tuple(pairs), band


def load_travel_matrix(
    path: Path,
    network: StationSet,
    travel: TravelModel,
    points: tuple[np.ndarray, np.ndarray] | None = None,
) -> TravelMatrix:
    """Read and check a matrix against a network, and work out its factors (module doc).

    ``points``: latitudes and longitudes of the demand CSV's points (None: the scenario
    has none, and a row naming one is refused). Every mistake is one
    :class:`ScenarioError` naming the file, the line (CSV) or row (Parquet) and the
    column. Rows for prefectures outside the scenario's geography are left out, so that a
    national matrix serves a provincial scenario.
    """
    import pandas as pd

    table, parquet = _read_table(path)
    source = _Source(path, parquet)
    origin = _origins(table, source, network.station_name)
    area, point = _destinations(
        table, source, network.areas, None if points is None else len(points[0])
    )
    with rows_not_lines(parquet):  # numbers as read from Parquet, or text from a CSV
        start, end, km, minutes = (
            number_column(table, column, path, low=low, high=high, whole=whole).to_numpy(float)
            for column, low, high, whole in (
                ("from_hour", 0, HOURS - 1, True),
                ("to_hour", 1, HOURS, True),
                ("road_km", 0, None, False),
                ("minutes", 0, None, False),
            )
        )
    bands, band = _bands(start, end, source)

    # A row's key: station, destination as written (outside the scenario too), band.
    keys_table = pd.DataFrame(
        {"origin": origin, "destination": table["destination"].str.strip(), "band": band}
    )
    repeated = keys_table.duplicated().to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        same = (keys_table == keys_table.iloc[row]).all(axis=1).to_numpy()
        first = int(np.flatnonzero(same)[0])
        line, _ = source.where(first)
        first_at = f"line {line}" if line is not None else f"row {first + 1}"
        raise source.error(
            f"station, prefecture and hour band repeated (first on {first_at})", row, "origin"
        )

    n_areas = len(network.areas)
    pair_key = origin * n_areas + area
    inside = area >= 0
    keys, pair = np.unique(pair_key[inside], return_inverse=True)
    pair_of = np.full(network.n_stations * n_areas, -1, dtype=np.int64)
    pair_of[keys] = np.arange(len(keys))
    band_of_hour = np.full(HOURS, -1, dtype=np.int64)
    for k, (a, b) in enumerate(bands):
        band_of_hour[a:b] = k

    # The travel model's km and minutes from each pair's station to the area seat.
    station = keys // n_areas
    seat = keys % n_areas
    seat_lat = network.areas["lat"].to_numpy(float)[seat]
    seat_lon = network.areas["lon"].to_numpy(float)[seat]
    model_km = travel.road_km_array(
        great_circle_km_array(
            network.station_lat[station], network.station_lon[station], seat_lat, seat_lon
        )
    )
    rows = _Rows(bands, band[inside], km[inside], minutes[inside])
    km_factor, time_factor = rows.factors(travel, model_km, pair)
    is_point = point >= 0
    point_factors = None
    if points is not None and is_point.any():  # the same, to each demand point
        n_points = len(points[0])
        point_keys, point_pair = np.unique(
            origin[is_point] * n_points + point[is_point], return_inverse=True
        )
        station, at = point_keys // n_points, point_keys % n_points
        model_km = travel.road_km_array(
            great_circle_km_array(
                network.station_lat[station],
                network.station_lon[station],
                points[0][at],
                points[1][at],
            )
        )
        point_rows = _Rows(bands, band[is_point], km[is_point], minutes[is_point])
        point_factors = PointFactors(
            n_points, point_keys, *point_rows.factors(travel, model_km, point_pair)
        )
    return TravelMatrix(
        source=str(path),
        n_stations=network.n_stations,
        n_areas=n_areas,
        pair_of=pair_of,
        bands=bands,
        band_of_hour=band_of_hour,
        km_factor=km_factor,
        time_factor=time_factor,
        rows=len(table),
        points=point_factors,
    )


@dataclass(frozen=True)
class _Rows:
    """The matrix rows of one kind of destination: band, road km and minutes of each."""

    bands: tuple[tuple[int, int], ...]
    band: np.ndarray
    km: np.ndarray
    minutes: np.ndarray

    def factors(
        self, travel: TravelModel, model_km: np.ndarray, pair: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Km and time factors by pair and band: the rows over the travel model's km and
        minutes ``model_km[pair]`` of each row's pair; 1.0 where no row or model km 0."""
        km_factor = np.ones((len(model_km), len(self.bands)))
        time_factor = np.ones((len(model_km), len(self.bands)))
        for k, (a, b) in enumerate(self.bands):
            rows = self.band == k
            p = pair[rows]
            base_km = model_km[p]
            base_minutes = band_minutes(travel, base_km, a, b)
            # A station at the seat (or point): nothing to scale by, the travel model stands.
            scalable = base_minutes > 0
            with np.errstate(divide="ignore", invalid="ignore"):
                km_factor[p[scalable], k] = self.km[rows][scalable] / base_km[scalable]
                time_factor[p[scalable], k] = self.minutes[rows][scalable] / base_minutes[scalable]
        return km_factor, time_factor


# --------------------------------------------------------------------------- use


def candidate_pool(k: int, n_stations: int) -> int:
    """How many stations nearest by great circle a call's candidates are ranked from."""
    return min(n_stations, max(4 * k, k + 16))


def rank_candidates(
    matrix: TravelMatrix,
    nearest: NearestFn,
    travel: TravelModel,
    lat: np.ndarray,
    lon: np.ndarray,
    area: np.ndarray,
    t_call_h: np.ndarray,
    k: int,
    point: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each call's k candidate stations, fastest first, and their great-circle km.

    Ranked from the :func:`candidate_pool` nearest by great circle, by the drive without
    noise starting at the call's hour, with the matrix's time factor (of the call's
    demand point ``point``, where it has one); ties keep the great circle's order.
    """
    n = len(lat)
    pool, pool_km = nearest(lat, lon, candidate_pool(k, matrix.n_stations))
    k = min(k, pool.shape[1])
    if n == 0:
        return pool[:, :k], pool_km[:, :k]
    hour = np.floor(np.asarray(t_call_h, dtype=float)).astype(np.int64) % HOURS
    hourly = np.asarray(travel.hourly_speed_factor, dtype=float)[hour][:, None]
    road = travel.road_km_array(np.where(np.isfinite(pool_km), pool_km, 0.0))
    drive_h = road / (travel.speed_kmh_array(road) * hourly)
    station = np.where(pool < matrix.n_stations, pool, 0)  # past the last: no station
    _, time = matrix.factors_array(
        station,
        np.asarray(area)[:, None],
        np.asarray(t_call_h)[:, None],
        None if point is None else np.asarray(point)[:, None],
    )
    key = np.where(np.isfinite(pool_km), drive_h * time, np.inf)
    order = np.argsort(key, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(pool, order, 1), np.take_along_axis(pool_km, order, 1)


class StationLegs:
    """Drives between stations and one run's calls, with a matrix (module doc).

    The per-trip forms take Python numbers and look the factors up in lists: they run
    once per trip of a run with a matrix (a run without one never makes this object).
    ``call_point``: each call's demand point (-1: none; None: no call has one).
    """

    def __init__(
        self,
        matrix: TravelMatrix,
        travel: TravelModel,
        network: StationSet,
        call_area: np.ndarray,
        call_point: np.ndarray | None = None,
    ) -> None:
        self.matrix = matrix
        self.travel = travel
        self._n_areas = matrix.n_areas
        self._n_bands = len(matrix.bands)
        self._pair_of: list[int] = matrix.pair_of.tolist()
        self._band_of_hour: list[int] = matrix.band_of_hour.tolist()
        self._km_factor: list[float] = matrix.km_factor.reshape(-1).tolist()
        self._time_factor: list[float] = matrix.time_factor.reshape(-1).tolist()
        self._station_lat: list[float] = network.station_lat.tolist()
        self._station_lon: list[float] = network.station_lon.tolist()
        self._station_lat_array = network.station_lat
        self._station_lon_array = network.station_lon
        self.call_area = np.asarray(call_area, dtype=np.int64)
        self._call_area: list[int] = self.call_area.tolist()
        self.call_point = call_point
        points = matrix.points
        self._call_point: list[int] = []
        if points is not None and call_point is not None:
            # The factors of the pairs of the run's own points only: a national CSV's
            # matrix holds millions.
            self._call_point = np.asarray(call_point, dtype=np.int64).tolist()
            own = np.flatnonzero(np.isin(points.keys % points.n_points, call_point))
            self._n_points = points.n_points
            self._point_row = dict(zip(points.keys[own].tolist(), range(len(own)), strict=True))
            self._point_km: list[float] = points.km_factor[own].reshape(-1).tolist()
            self._point_time: list[float] = points.time_factor[own].reshape(-1).tolist()

    def _factors(self, station: int, call: int, start_h: float) -> tuple[float, float]:
        band = self._band_of_hour[int(start_h) % HOURS]
        if self._call_point and self._call_point[call] >= 0 and band >= 0:
            row = self._point_row.get(station * self._n_points + self._call_point[call], -1)
            if row >= 0:
                cell = row * self._n_bands + band
                return self._point_km[cell], self._point_time[cell]
        pair = self._pair_of[station * self._n_areas + self._call_area[call]]
        if pair < 0 or band < 0:
            return 1.0, 1.0
        cell = pair * self._n_bands + band
        return self._km_factor[cell], self._time_factor[cell]

    def time_factor(self, station: int, call: int, start_h: float) -> float:
        """How much longer than the travel model's a drive between the two takes (1.0: as long)."""
        return self._factors(station, call, start_h)[1]

    def _model_road_km(self, station: int, lat: float, lon: float) -> float:
        return self.travel.road_km(
            great_circle_km(self._station_lat[station], self._station_lon[station], lat, lon)
        )

    def road_km(self, station: int, call: int, lat: float, lon: float, start_h: float) -> float:
        """Road km between ``station`` and call ``call`` at (lat, lon), leaving at ``start_h``."""
        km_factor, _ = self._factors(station, call, start_h)
        return self._model_road_km(station, lat, lon) * km_factor

    def trip(
        self,
        station: int,
        call: int,
        lat: float,
        lon: float,
        start_h: float,
        noise: float,
        speed_factor: float = 1.0,
    ) -> tuple[float, float]:
        """Road km and driving hours between ``station`` and a call, either way."""
        km_factor, time_factor = self._factors(station, call, start_h)
        road = self._model_road_km(station, lat, lon)
        drive = self.travel.drive_h(road, start_h, noise, speed_factor) * time_factor
        return road * km_factor, drive

    def road_km_array(
        self, stations: np.ndarray, lat: np.ndarray, lon: np.ndarray, start_h: np.ndarray
    ) -> np.ndarray:
        """:meth:`road_km` for every call of the run (the same bits)."""
        gc = great_circle_km_array(
            self._station_lat_array[stations], self._station_lon_array[stations], lat, lon
        )
        km_factor, _ = self.matrix.factors_array(stations, self.call_area, start_h, self.call_point)
        km: np.ndarray = self.travel.road_km_array(gc) * km_factor
        return km


# --------------------------------------------------------------------------- writing


def implied_matrix(network: StationSet, travel: TravelModel, per_area: int) -> pd.DataFrame:
    """The matrix the travel model implies: the ``per_area`` nearest stations of each area.

    Hour bands are the runs of equal hourly speed factor; km are float64 and minutes are
    :func:`band_minutes`, so that the matrix read back gives factors of exactly 1.0.
    """
    import pandas as pd

    areas = network.areas
    seat_lat = areas["lat"].to_numpy(float)
    seat_lon = areas["lon"].to_numpy(float)
    k = min(per_area, network.n_stations)
    station, _ = network.nearest_stations(seat_lat, seat_lon, k)
    area = np.repeat(np.arange(len(areas)), k)
    station = station.reshape(-1)
    road = travel.road_km_array(
        great_circle_km_array(
            network.station_lat[station],
            network.station_lon[station],
            seat_lat[area],
            seat_lon[area],
        )
    )
    parts = []
    for a, b in equal_factor_bands(travel.hourly_speed_factor):
        parts.append(
            pd.DataFrame(
                {
                    "origin": network.station_name[station].astype(str),
                    "destination": areas["adcode"].astype(str).to_numpy()[area],
                    "from_hour": np.full(len(station), a, dtype=np.int64),
                    "to_hour": np.full(len(station), b, dtype=np.int64),
                    "road_km": road,
                    "minutes": band_minutes(travel, road, a, b),
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True)
    return frame.sort_values(
        ["destination", "origin", "from_hour"], kind="stable", ignore_index=True
    )


__all__ = [
    "COLUMNS",
    "POINT_PREFIX",
    "PointFactors",
    "StationLegs",
    "TravelMatrix",
    "band_minutes",
    "candidate_pool",
    "equal_factor_bands",
    "implied_matrix",
    "load_travel_matrix",
    "rank_candidates",
]
