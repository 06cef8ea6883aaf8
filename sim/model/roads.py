"""Roads from an OpenStreetMap extract: drive times between places, and places on roads.

The extract is read by :mod:`sim.model.road_read` (only what the scenario's box needs).
The graph is directed (``oneway``, motorways and roundabouts one way), each edge driven
at its class's free-flow speed (:data:`SPEED_KMH`). Places are snapped to the nearest
node of the largest strongly connected part of the graph (a fragment cut by the box's
edge never captures a station) that some road other than a motorway reaches (a van gets
on a motorway at a junction), with a straight access leg at :data:`ACCESS_SPEED_KMH`.
Routes are the fastest by free-flow time (``scipy.sparse.csgraph.dijkstra`` from each
origin, a few origins at a time to bound memory); the hour's congestion factor of the
scenario's travel model divides every speed alike, so the fastest route is the same in
every hour band and its minutes are the free-flow minutes over the band's factor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.model.geo import great_circle_km_array
from sim.model.road_classes import (
    DEFAULT_CLASSES,
    ROAD_CLASSES,
    TRUCK_WEIGHT,
    RoadDemand,
    check_classes,
)
from sim.model.road_read import (
    Box,
    ExtractError,
    Points,
    Progress,
    RoadGraph,
    Ticker,
    check_covers,
    extract_box,
    read_roads,
    refuse,
)

if TYPE_CHECKING:
    import pandas as pd
    from scipy.sparse import csr_matrix

    from sim.model.travel import TravelModel
    from sim.model.travel_matrix import StationSet

# Free-flow speeds of a rescue van by class (km/h): the limits for vans on China's roads
# (motorways 100-120, national roads 70-80), less for the traffic and the towns on the way.
SPEED_KMH: Mapping[str, float] = {
    "motorway": 90.0,
    "trunk": 70.0,
    "primary": 60.0,
    "secondary": 50.0,
    "tertiary": 40.0,
    "unclassified": 30.0,
    "residential": 20.0,
    "service": 15.0,
}
MAX_SPEED_KMH = 200.0
# The leg between a place and its snapped node: straight, slowly.
ACCESS_SPEED_KMH = 20.0
# A station or seat farther than this from every road: the extract does not cover it.
MAX_SNAP_KM = 10.0
# A route's km over its ends' great-circle km that a station's search reaches without a
# second, unlimited search (a pair past it is searched again in full: same result).
ROUTE_DETOUR_BOUND = 2.0
# Bytes of the arrays of one Dijkstra batch: distances, predecessors, km and ancestors
# (about 80 bytes per origin and node, with the index arrays of the km sums).
ROUTING_BATCH_BYTES = 64 * 1024 * 1024
_BYTES_PER_CELL = 80
MIN_PER_H = 60.0


def parse_speeds(text: str) -> dict[str, float]:
    """``motorway=80,trunk=60``: :data:`SPEED_KMH` with those classes' speeds (km/h)
    replaced; ValueError naming a bad item."""
    speeds = dict(SPEED_KMH)
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        check_classes([name])
        try:
            kmh = float(value)
        except ValueError:
            kmh = math.nan
        if not 0 < kmh <= MAX_SPEED_KMH:
            raise ValueError(
                f"{item!r}: give CLASS=KMH with a speed above 0 and at most {MAX_SPEED_KMH:g}"
            )
        speeds[name.strip()] = kmh
    return speeds


# --------------------------------------------------------------------------- routing


def _unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    phi, lam = np.radians(lat), np.radians(lon)
    return np.column_stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])


class Router:
    """Fastest routes on a :class:`RoadGraph` at free-flow speeds by class."""

    def __init__(self, graph: RoadGraph, speed_kmh: Mapping[str, float] = SPEED_KMH) -> None:
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import connected_components
        from scipy.spatial import cKDTree

        self.graph = graph
        speeds = np.array([speed_kmh.get(c, np.nan) for c in ROAD_CLASSES])
        minutes = graph.edge_km / speeds[graph.edge_class] * MIN_PER_H
        # The speeds of the classes the graph holds.
        self.speeds_kmh = speeds[np.unique(graph.edge_class)] if graph.n_edges else speeds
        # Parallel edges: the fastest stands (and its km with it); a zero-length edge is
        # kept at a tiny positive time (csgraph reads an explicit 0 as no edge).
        order = np.lexsort((minutes, graph.edge_to, graph.edge_from))
        u, v = graph.edge_from[order], graph.edge_to[order]
        first = np.ones(len(u), dtype=bool)
        first[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
        keep = order[first]
        n = graph.n_nodes
        self._minutes = np.maximum(minutes[keep], 1e-12)
        self._km = graph.edge_km[keep]
        self._u, self._v = graph.edge_from[keep], graph.edge_to[keep]
        # CSR rows in (u, v) order: the edge (u, v) is at the searchsorted position of u*n+v.
        self._key = self._u * n + self._v
        self.matrix: csr_matrix = csr_matrix((self._minutes, (self._u, self._v)), shape=(n, n))
        _, label = connected_components(self.matrix, directed=True, connection="strong")
        biggest = np.bincount(label).argmax() if n else 0
        # No place is snapped onto a motorway (nor its ramps): one gets on at a junction.
        off_motorway = np.zeros(n, dtype=bool)
        local = graph.edge_class != ROAD_CLASSES.index("motorway")
        off_motorway[graph.edge_from[local]] = True
        off_motorway[graph.edge_to[local]] = True
        self.snappable = np.flatnonzero((label == biggest) & off_motorway)
        self._tree = cKDTree(
            _unit_vectors(graph.node_lat[self.snappable], graph.node_lon[self.snappable])
        )

    def snap(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each place's nearest node of the largest strongly connected part, and its km."""
        lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
        if len(self.snappable) == 0:
            return np.zeros(len(lat), dtype=np.int64), np.full(len(lat), np.inf)
        _, k = self._tree.query(_unit_vectors(lat, lon))
        node = self.snappable[np.asarray(k, dtype=np.int64)]
        km = great_circle_km_array(lat, lon, self.graph.node_lat[node], self.graph.node_lon[node])
        return node, km

    def _edge_km(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        km: np.ndarray = self._km[np.searchsorted(self._key, u * self.graph.n_nodes + v)]
        return km

    def _path_km(
        self, predecessors: np.ndarray, targets: np.ndarray, toward: bool = False
    ) -> np.ndarray:
        """Km along each row's shortest-path tree from its source to ``targets`` (0 where
        not reached); ``toward``: a tree of the reversed graph, from ``targets`` to it.

        Pointer jumping over the reached nodes only: every node adds its ancestor's sum
        and jumps to the ancestor's ancestor, so a path of L edges takes log2(L) steps.
        """
        row, col = np.nonzero(predecessors >= 0)
        if len(row) == 0:
            return np.zeros((len(predecessors), len(targets)))
        position = np.full(predecessors.shape, -1, dtype=np.int64)
        position[row, col] = np.arange(len(row))
        parent = predecessors[row, col].astype(np.int64)
        km = self._edge_km(col, parent) if toward else self._edge_km(parent, col)
        ancestor = position[row, parent]  # -1: the parent is the source
        del row, col, parent
        live = np.flatnonzero(ancestor >= 0)
        while len(live):
            up = ancestor[live]
            km[live] += km[up]  # km[up] is read whole before any is written: one step
            ancestor[live] = ancestor[up]
            live = live[ancestor[live] >= 0]
        at = position[:, targets]
        result: np.ndarray = np.where(at >= 0, km[np.maximum(at, 0)], 0.0)
        return result

    def between(
        self,
        origins: np.ndarray,
        targets: np.ndarray,
        progress: Progress | None = None,
        limit_min: np.ndarray | None = None,
        toward: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Free-flow minutes and km of the fastest route from each origin node to each
        target node (inf where none), origins a batch at a time; ``toward``: of the route
        from each target to each origin (the same shape).

        ``limit_min``: per origin, the search stops past that many minutes (a target
        farther is inf, exactly as if unreachable; the caller asks again without a limit
        for the pairs it needs). Origins are searched in order of their limit, so that a
        batch shares one.
        """
        from scipy.sparse.csgraph import dijkstra

        origins = np.asarray(origins, dtype=np.int64)
        targets = np.asarray(targets, dtype=np.int64)
        limits = np.full(len(origins), np.inf) if limit_min is None else np.asarray(limit_min)
        order = np.argsort(limits, kind="stable")
        batch = max(1, ROUTING_BATCH_BYTES // (_BYTES_PER_CELL * max(1, self.graph.n_nodes)))
        minutes = np.full((len(origins), len(targets)), np.inf)
        km = np.full((len(origins), len(targets)), np.inf)
        tick = Ticker(progress)
        # toward: the routes from each target to each origin, searched back from the
        # origins on the reversed graph (fewer searches when the origins are fewer).
        graph = self.matrix.T.tocsr() if toward else self.matrix
        for start in range(0, len(origins), batch):
            rows = order[start : start + batch]
            dist, pred = dijkstra(
                graph,
                directed=True,
                indices=origins[rows],
                return_predecessors=True,
                limit=float(limits[rows].max()),
            )
            minutes[rows] = dist[:, targets]
            km[rows] = np.where(
                np.isfinite(minutes[rows]), self._path_km(pred, targets, toward), np.inf
            )
            if tick.due():
                done = min(start + batch, len(origins))
                tick.say(f"routed {done:,} of {len(origins):,} origins")
        return minutes, km

    def route(self, origin: int, target: int) -> list[int]:
        """The nodes of the fastest route from ``origin`` to ``target`` ([] if none)."""
        from scipy.sparse.csgraph import dijkstra

        _, pred = dijkstra(self.matrix, directed=True, indices=origin, return_predecessors=True)
        if origin != target and pred[target] < 0:
            return []
        nodes = [int(target)]
        while nodes[-1] != origin:
            nodes.append(int(pred[nodes[-1]]))
        return nodes[::-1]


# --------------------------------------------------------------------------- the matrix


def scenario_places(network: StationSet, points: Points | None = None) -> Points:
    """Latitudes and longitudes of every station and seat of a network (and demand point)."""
    seats = network.areas["lat"].to_numpy(float), network.areas["lon"].to_numpy(float)
    parts = [
        (network.station_lat, network.station_lon),
        seats,
        *([] if points is None else [points]),
    ]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _snapped(
    router: Router, lat: np.ndarray, lon: np.ndarray, names: np.ndarray, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and access km of the places; ExtractError if one lies off the extract's roads."""
    node, km = router.snap(lat, lon)
    refuse(
        ~(km <= MAX_SNAP_KM),
        lambda n, k: (
            f"the extract does not cover the scenario: {n} {what} lie more than "
            f"{MAX_SNAP_KM:g} km from a road of the classes read (the first: {names[k]}, "
            f"{km[k]:.1f} km)"
        ),
    )
    return node, km


def road_matrix(
    network: StationSet,
    travel: TravelModel,
    router: Router,
    per_area: int,
    progress: Progress | None = None,
    points: Points | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The travel matrix of the roads: the ``per_area`` nearest stations of each area
    (and of each demand point of ``points``, latitudes and longitudes in the demand CSV's
    order: destination ``point:N``, docs/travel.md).

    Rows as :func:`sim.model.travel_matrix.implied_matrix` writes them (the same hour
    bands); road km and free-flow minutes of the fastest route, access legs included,
    the minutes divided by each band's hourly speed factor. The second table lists the
    pairs with no route (origin, destination): they are left out of the matrix.
    """
    import pandas as pd

    from sim.model.travel_matrix import POINT_PREFIX, equal_factor_bands

    areas = network.areas
    # The destinations: the seats, then the points.
    seat_lat, seat_lon = (x[network.n_stations :] for x in scenario_places(network, points))
    codes = areas["adcode"].astype(str).to_numpy()
    what = "prefecture seats"
    if points is not None:  # a destination as any seat: to each point, its nearest stations
        point_codes = [f"{POINT_PREFIX}{i}" for i in range(len(points[0]))]
        codes = np.concatenate([codes, np.array(point_codes, dtype=object)]).astype(str)
        what = "prefecture seats and demand points"
    k = min(per_area, network.n_stations)
    station, _ = network.nearest_stations(seat_lat, seat_lon, k)
    area = np.repeat(np.arange(len(codes)), k)
    station = station.reshape(-1)
    names = network.station_name.astype(str)
    station_node, station_km = _snapped(
        router, network.station_lat, network.station_lon, names, "stations"
    )
    seat_node, seat_km = _snapped(router, seat_lat, seat_lon, codes, what)
    origins = np.unique(station)
    row = np.searchsorted(origins, station)
    # Searched from the fewer: each station, or back from each seat on the reversed graph.
    toward = len(codes) < len(origins)
    src, dst = (seat_node, station_node[origins]) if toward else (station_node[origins], seat_node)
    src_of, dst_of = (area, row) if toward else (row, area)
    # Each search stops past what its farthest pair could take by the slowest road on a
    # generous detour: a national network is searched near each place only.
    gc_km = great_circle_km_array(
        network.station_lat[station], network.station_lon[station], seat_lat[area], seat_lon[area]
    )
    reach_km = np.zeros(len(src))
    np.maximum.at(reach_km, src_of, ROUTE_DETOUR_BOUND * gc_km + 2 * MAX_SNAP_KM)
    limit_min = reach_km / float(router.speeds_kmh.min()) * MIN_PER_H
    minutes, km = router.between(src, dst, progress, limit_min, toward)
    missed = ~np.isfinite(minutes[src_of, dst_of])
    if missed.any():  # past the limit, or no route at all: search those in full
        again = np.unique(src_of[missed])
        minutes[again], km[again] = router.between(src[again], dst, toward=toward)
    free_min = minutes[src_of, dst_of]
    road_km = km[src_of, dst_of]
    access_km = station_km[station] + seat_km[area]
    road_km = road_km + access_km
    free_min = free_min + access_km / ACCESS_SPEED_KMH * MIN_PER_H
    reached = np.isfinite(free_min)
    unreachable = pd.DataFrame(
        {"origin": names[station[~reached]], "destination": codes[area[~reached]]}
    )
    parts = []
    for a, b in equal_factor_bands(travel.hourly_speed_factor):
        parts.append(
            pd.DataFrame(
                {
                    "origin": names[station[reached]],
                    "destination": codes[area[reached]],
                    "from_hour": np.full(int(reached.sum()), a, dtype=np.int64),
                    "to_hour": np.full(int(reached.sum()), b, dtype=np.int64),
                    "road_km": road_km[reached],
                    "minutes": free_min[reached] / travel.hourly_speed_factor[a],
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True).sort_values(
        ["destination", "origin", "from_hour"], kind="stable", ignore_index=True
    )
    return frame, unreachable


# --------------------------------------------------------------------------- places on roads


@dataclass(frozen=True)
class RoadPlaces:
    """The road segments each demand area can hold a call on, and their chances.

    A segment belongs to an area when both its ends lie in the area's prefecture cell;
    its weight is its km times its class's weight. ``start[a]:start[a + 1]`` are area
    ``a``'s segments, ``cumulative`` their running weight (ending at 1 in each area).
    """

    lat0: np.ndarray
    lon0: np.ndarray
    lat1: np.ndarray
    lon1: np.ndarray
    edge_class: np.ndarray
    start: np.ndarray
    cumulative: np.ndarray

    def draw(
        self, rng: np.random.Generator, area: np.ndarray, inside: Callable[..., np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """A place on a road of each call's area, from ``rng`` (two uniforms per call).

        ``inside(area, lat, lon)`` says which places lie in their area's cell: a place
        drawn on a segment whose middle leaves the cell (a bend of the border between
        its ends) moves to the segment's nearer end, which is inside.
        """
        area = np.asarray(area, dtype=np.int64)
        u = rng.random((2, len(area)))
        edge = np.empty(len(area), dtype=np.int64)
        for a in np.unique(area).tolist():
            calls = np.flatnonzero(area == a)
            own = self.cumulative[self.start[a] : self.start[a + 1]]
            pick = np.searchsorted(own, u[0][calls], side="right")
            edge[calls] = self.start[a] + np.minimum(pick, len(own) - 1)
        t = u[1]
        lat = self.lat0[edge] + t * (self.lat1[edge] - self.lat0[edge])
        lon = self.lon0[edge] + t * (self.lon1[edge] - self.lon0[edge])
        out = np.flatnonzero(~inside(area, lat, lon))
        near_start = t[out] < 0.5
        lat[out] = np.where(near_start, self.lat0[edge[out]], self.lat1[edge[out]])
        lon[out] = np.where(near_start, self.lon0[edge[out]], self.lon1[edge[out]])
        return lat, lon


def road_places(
    graph: RoadGraph,
    class_weight: Mapping[str, float],
    node_area: np.ndarray,
    area_names: Sequence[str],
) -> RoadPlaces:
    """The :class:`RoadPlaces` of a graph whose node ``i`` lies in area ``node_area[i]``
    (-1: in none), areas named ``area_names``. An area without a road of a weighted
    class is an ExtractError."""
    n_areas = len(area_names)
    weight = np.array([class_weight.get(c, 0.0) for c in ROAD_CLASSES])
    u, v = graph.edge_from, graph.edge_to
    # A two-way road is two edges: each segment once, its ends in a fixed order.
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    _, first = np.unique(lo * graph.n_nodes + hi, return_index=True)
    first = np.sort(first)
    lo, hi = lo[first], hi[first]
    cls, km = graph.edge_class[first], graph.edge_km[first]
    area = node_area[lo]
    keep = (area >= 0) & (area == node_area[hi]) & (weight[cls] > 0) & (km > 0)
    lo, hi, cls, km, area = lo[keep], hi[keep], cls[keep], km[keep], area[keep]
    order = np.argsort(area, kind="stable")
    lo, hi, cls, km, area = lo[order], hi[order], cls[order], km[order], area[order]
    start = np.searchsorted(area, np.arange(n_areas + 1))
    empty = np.flatnonzero(start[1:] == start[:-1])
    if len(empty):
        raise ExtractError(
            f"{len(empty)} prefectures have no road of the weighted classes in the extract "
            f"(the first: {area_names[int(empty[0])]})"
        )
    w = km * weight[cls]
    cumulative = np.empty(len(w))
    for a in range(n_areas):
        part = np.cumsum(w[start[a] : start[a + 1]])
        cumulative[start[a] : start[a + 1]] = part / part[-1]
    lat, lon = graph.node_lat, graph.node_lon
    return RoadPlaces(lat[lo], lon[lo], lat[hi], lon[hi], cls, start, cumulative)


def load_road_places(roads: RoadDemand, adcodes: Sequence[str]) -> RoadPlaces:
    """The :class:`RoadPlaces` of ``demand.spatial.roads`` for the areas ``adcodes``:
    only the box of their prefecture cells is read. Read once per process and file; a
    bad extract is a ScenarioError naming the file and the field."""
    from sim.errors import ScenarioError

    stat = roads.osm.stat()
    weights = tuple(sorted(roads.class_weight.items()))
    try:
        return _road_places(str(roads.osm), stat.st_size, stat.st_mtime_ns, weights, tuple(adcodes))
    except ExtractError as exc:
        raise ScenarioError(str(exc), file=roads.osm, field="demand.spatial.roads.osm") from None


@lru_cache(maxsize=2)
def _road_places(
    path: str,
    size: int,
    mtime_ns: int,
    weights: tuple[tuple[str, float], ...],
    adcodes: tuple[str, ...],
) -> RoadPlaces:
    from sim.model.outlines import read_outlines

    del size, mtime_ns  # in the cache key only: a changed file is read again
    cells = read_outlines().cells_by_adcode
    bounds = np.array([cells[c].bounds for c in adcodes if c in cells]).reshape(-1, 4)
    lon = np.concatenate([bounds[:, 0], bounds[:, 2]])
    lat = np.concatenate([bounds[:, 1], bounds[:, 3]])
    class_weight = dict(weights)
    classes = check_classes(c for c, w in class_weight.items() if w > 0)
    graph = read_roads(Path(path), Box.around(lat, lon, margin_km=1.0), classes)
    located = read_outlines().locate_cells(graph.node_lat, graph.node_lon)
    index = {code: a for a, code in enumerate(adcodes)}
    node_area = np.array([index.get(code, -1) for code in located.tolist()], dtype=np.int64)
    return road_places(graph, class_weight, node_area, adcodes)


__all__ = [
    "DEFAULT_CLASSES",
    "ROAD_CLASSES",
    "SPEED_KMH",
    "TRUCK_WEIGHT",
    "Box",
    "ExtractError",
    "RoadDemand",
    "RoadGraph",
    "RoadPlaces",
    "Router",
    "check_classes",
    "check_covers",
    "extract_box",
    "load_road_places",
    "parse_speeds",
    "read_roads",
    "road_matrix",
    "road_places",
]
