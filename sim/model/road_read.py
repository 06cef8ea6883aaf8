"""Reading the drivable roads of an OpenStreetMap extract, inside a box only.

An extract (``.osm.pbf``, e.g. Geofabrik's China extract; docs/travel.md) is read in two
passes with pyosmium, and memory grows with what lies in the scenario's box, not with
the file:

1. the nodes: the ids and locations of those inside the box (16 bytes each) are kept,
   every other node is dropped as it is read;
2. the ways of the drivable classes (``highway=motorway`` to ``tertiary`` by default,
   their ``_link`` ramps counted with them; a C++ tag filter, so that buildings, rivers
   and footpaths never reach Python), as pairs of consecutive node ids, sorted against
   the box's nodes a batch of segments at a time: a segment with an end outside the box
   is dropped with its batch.

A national extract read for a province holds the province's nodes (all of them: the
roads' nodes are not known before the ways are read) and its road segments.
"""

from __future__ import annotations

import math
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from sim.model.geo import EARTH_RADIUS_KM, great_circle_km_array
from sim.model.road_classes import DEFAULT_CLASSES, ROAD_CLASSES

# The box read around the scenario's places: routes leave the box of their ends.
BOX_MARGIN_KM = 50.0
# Seconds between two progress lines while an extract is read.
PROGRESS_INTERVAL_S = 5.0
# Road segments read before they are sorted against the box's nodes (18 bytes each).
SEGMENT_BATCH = 1 << 20
KM_PER_DEGREE = math.radians(EARTH_RADIUS_KM)  # km along a meridian per degree
_FIXED_PER_DEGREE = 10_000_000  # OSM stores degrees as integers of 1e-7
_ONEWAY_FORWARD = {"yes", "true", "1"}

Progress = Callable[[str], None]
Points = tuple[np.ndarray, np.ndarray]  # latitudes, longitudes


class ExtractError(ValueError):
    """An extract that cannot be used: unreadable, or not covering the places asked for."""


@dataclass(frozen=True)
class Box:
    """A latitude-longitude box, degrees."""

    south: float
    west: float
    north: float
    east: float

    @staticmethod
    def around(lat: np.ndarray, lon: np.ndarray, margin_km: float = BOX_MARGIN_KM) -> Box:
        """The box of the places, grown by ``margin_km`` on every side."""
        dlat = margin_km / KM_PER_DEGREE
        north, south = float(np.max(lat)) + dlat, float(np.min(lat)) - dlat
        dlon = dlat / max(0.1, math.cos(math.radians(max(abs(north), abs(south)))))
        return Box(south, float(np.min(lon)) - dlon, north, float(np.max(lon)) + dlon)

    def contains(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """True for each place inside the box."""
        inside: np.ndarray = (
            (lat >= self.south) & (lat <= self.north) & (lon >= self.west) & (lon <= self.east)
        )
        return inside


def extract_box(path: Path) -> Box | None:
    """The box the extract's header declares (None if none); ExtractError if unreadable.

    Reading the header opens the file and decodes its first block: a missing file, or one
    that is no OSM file, fails here, before any long read.
    """
    import osmium

    if not Path(path).is_file():
        raise ExtractError("no such file")
    try:
        reader = osmium.io.Reader(str(path), osmium.osm.NOTHING)
        try:
            box = reader.header().box()
        finally:
            reader.close()
    except (RuntimeError, ValueError, OSError) as exc:
        raise ExtractError(f"not a readable OpenStreetMap file: {_one_line(exc)}") from None
    if not box.valid():
        return None
    low, high = box.bottom_left, box.top_right
    return Box(low.lat, low.lon, high.lat, high.lon)


def check_covers(path: Path, lat: np.ndarray, lon: np.ndarray, what: str) -> None:
    """ExtractError unless the extract's declared box holds every place (none declared: ok).

    Geofabrik's extracts declare their box, so a province's extract given for another
    province is refused before the file is read.
    """
    box = extract_box(path)
    if box is None:
        return
    refuse(
        ~box.contains(np.asarray(lat), np.asarray(lon)),
        lambda n, k: (
            f"the extract covers lat {box.south:.3f} to {box.north:.3f}, lon {box.west:.3f} to "
            f"{box.east:.3f}; {n} {what} lie outside (the first at "
            f"{float(lat[k]):.4f}, {float(lon[k]):.4f})"
        ),
    )


def refuse(bad: np.ndarray, message: Callable[[int, int], str]) -> None:
    """ExtractError worded by ``message(count, first)`` when any of ``bad`` holds."""
    where = np.flatnonzero(bad)
    if len(where):
        raise ExtractError(message(len(where), int(where[0])))


@dataclass(frozen=True)
class RoadGraph:
    """Road segments read from an extract: nodes (degrees) and directed edges.

    ``edge_class`` indexes :data:`ROAD_CLASSES`. A two-way road is two edges.
    """

    node_lat: np.ndarray
    node_lon: np.ndarray
    edge_from: np.ndarray
    edge_to: np.ndarray
    edge_km: np.ndarray
    edge_class: np.ndarray

    @property
    def n_nodes(self) -> int:
        return len(self.node_lat)

    @property
    def n_edges(self) -> int:
        return len(self.edge_from)


class Ticker:
    """Calls ``progress`` at most every PROGRESS_INTERVAL_S seconds."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.next_s = time.monotonic() + PROGRESS_INTERVAL_S

    def due(self) -> bool:
        """True when a line is due (then the next one is PROGRESS_INTERVAL_S away)."""
        if self.progress is None or time.monotonic() < self.next_s:
            return False
        self.next_s = time.monotonic() + PROGRESS_INTERVAL_S
        return True

    def say(self, text: str) -> None:
        if self.progress is not None:
            self.progress(text)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _direction(tags: Any, highway: str) -> int:
    """1: along the way only, -1: against it only, 0: both ways."""
    oneway = tags.get("oneway", "")
    if oneway == "-1":
        return -1
    if oneway in _ONEWAY_FORWARD:
        return 1
    if oneway == "no":
        return 0
    implied = highway == "motorway" or tags.get("junction", "") in ("roundabout", "circular")
    return 1 if implied else 0


class _BoxNodes:
    """The nodes inside a box, by id: ids sorted, locations in OSM's fixed point."""

    def __init__(self, node_id: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
        if len(node_id) > 1 and not bool(np.all(node_id[1:] > node_id[:-1])):
            order = np.argsort(node_id, kind="stable")  # extracts are sorted; a merge may not be
            node_id, x, y = node_id[order], x[order], y[order]
        self.node_id, self.x, self.y = node_id, x, y

    def index(self, ids: np.ndarray) -> np.ndarray:
        """Each id's position among the nodes, -1 for an id outside the box."""
        at = np.searchsorted(self.node_id, ids)
        inside = at < len(self.node_id)
        inside[inside] = self.node_id[at[inside]] == ids[inside]
        found: np.ndarray = np.where(inside, at, -1)
        return found


def _read_nodes(path: Path, box: Box, tick: Ticker) -> _BoxNodes:
    """Pass 1 (module doc): the nodes inside ``box``."""
    import osmium

    kept, xs, ys = array("q"), array("i"), array("i")
    south, north = (
        math.floor(box.south * _FIXED_PER_DEGREE),
        math.ceil(box.north * _FIXED_PER_DEGREE),
    )
    west, east = math.floor(box.west * _FIXED_PER_DEGREE), math.ceil(box.east * _FIXED_PER_DEGREE)
    for seen, entity in enumerate(osmium.FileProcessor(str(path), osmium.osm.NODE), 1):
        location = cast("osmium.osm.Node", entity).location
        x, y = location.x, location.y
        if west <= x <= east and south <= y <= north:
            kept.append(entity.id)
            xs.append(x)
            ys.append(y)
        if tick.due():
            tick.say(f"read {seen:,} nodes ({len(kept):,} inside the box)")
    return _BoxNodes(
        np.frombuffer(kept, dtype=np.int64),
        np.frombuffer(xs, dtype=np.int32),
        np.frombuffer(ys, dtype=np.int32),
    )


class _Segments:
    """Road segments gathered a batch at a time; only those inside the box are kept."""

    def __init__(self, nodes: _BoxNodes) -> None:
        self.nodes = nodes
        self.kept: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.n_kept = 0
        self._start()

    def _start(self) -> None:
        self.a, self.b = array("q"), array("q")
        self.cls, self.way_dir = array("b"), array("b")

    def add(self, refs: list[int], cls: int, way_dir: int) -> None:
        """The segments of one way: its consecutive nodes, of class ``cls``."""
        n = len(refs) - 1
        self.a.extend(refs[:-1])
        self.b.extend(refs[1:])
        self.cls.extend([cls] * n)
        self.way_dir.extend([way_dir] * n)
        if len(self.a) >= SEGMENT_BATCH:
            self.flush()

    def flush(self) -> None:
        """Keep the batch's segments with both ends in the box, as node positions."""
        ia = self.nodes.index(np.array(self.a, dtype=np.int64))
        ib = self.nodes.index(np.array(self.b, dtype=np.int64))
        inside = (ia >= 0) & (ib >= 0)
        cls = np.array(self.cls, dtype=np.int8)[inside]
        way_dir = np.array(self.way_dir, dtype=np.int8)[inside]
        self.kept.append((ia[inside], ib[inside], cls, way_dir))
        self.n_kept += int(inside.sum())
        self._start()

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """From, to (node positions), class and direction of every segment kept."""
        self.flush()
        ia, ib, cls, way_dir = (np.concatenate(part) for part in zip(*self.kept, strict=True))
        self.kept = []
        return ia, ib, cls, way_dir


def _read_ways(path: Path, classes: Sequence[str], segments: _Segments, tick: Ticker) -> None:
    """Pass 2 (module doc): the segments of the ways of ``classes`` into ``segments``."""
    import osmium

    code = {c: k for k, c in enumerate(ROAD_CLASSES)}
    tags = [("highway", c) for c in classes] + [("highway", c + "_link") for c in classes]
    processor = osmium.FileProcessor(str(path), osmium.osm.WAY).with_filter(
        osmium.filter.TagFilter(*tags)
    )
    for ways, entity in enumerate(processor, 1):
        way = cast("osmium.osm.Way", entity)
        highway = str(way.tags.get("highway", ""))
        refs = [n.ref for n in way.nodes]
        if len(refs) >= 2:
            segments.add(refs, code[highway.removesuffix("_link")], _direction(way.tags, highway))
        if tick.due():
            tick.say(f"read {ways:,} roads ({segments.n_kept:,} segments inside the box so far)")


def read_roads(
    path: Path,
    box: Box,
    classes: Sequence[str] = DEFAULT_CLASSES,
    progress: Progress | None = None,
) -> RoadGraph:
    """The road segments of ``classes`` inside ``box`` (module doc: two passes).

    ExtractError for a file pyosmium cannot read (also one that breaks off midway).
    """
    tick = Ticker(progress)
    try:
        segments = _Segments(_read_nodes(path, box, tick))
        _read_ways(path, classes, segments, tick)
    except (RuntimeError, ValueError, OSError) as exc:
        raise ExtractError(f"not a readable OpenStreetMap file: {_one_line(exc)}") from None
    ia, ib, cls, way_dir = segments.arrays()
    if len(ia) == 0:
        raise ExtractError(
            f"the extract has no road of the classes {', '.join(classes)} inside lat "
            f"{box.south:.3f} to {box.north:.3f}, lon {box.west:.3f} to {box.east:.3f}: it does "
            "not cover the scenario"
        )
    # Only the nodes some kept segment uses, numbered 0.. in id order.
    used, inverse = np.unique(np.concatenate([ia, ib]), return_inverse=True)
    ia, ib = inverse[: len(ia)], inverse[len(ia) :]
    nodes = segments.nodes
    lat = nodes.y[used] / _FIXED_PER_DEGREE
    lon = nodes.x[used] / _FIXED_PER_DEGREE
    del segments, nodes
    km = great_circle_km_array(lat[ia], lon[ia], lat[ib], lon[ib])
    forward, backward = way_dir >= 0, way_dir <= 0
    return RoadGraph(
        node_lat=lat,
        node_lon=lon,
        edge_from=np.concatenate([ia[forward], ib[backward]]).astype(np.int64),
        edge_to=np.concatenate([ib[forward], ia[backward]]).astype(np.int64),
        edge_km=np.concatenate([km[forward], km[backward]]),
        edge_class=np.concatenate([cls[forward], cls[backward]]),
    )
