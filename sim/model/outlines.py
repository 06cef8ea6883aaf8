"""China's province outlines and prefecture cells, from seeds/province_outlines.geojson.

The file is built once by seeds/build_province_outlines.py from DCW-GMT 2.1.1 (the
Digital Chart of the World for GMT, LGPL-3+; see seeds/ATTRIBUTION.md). This module
reads it with ``json`` and answers point-in-polygon queries with numpy alone: network
generation keeps its stations inside their province with it, and the demand keeps each
drawn call inside the cell of the prefecture it was drawn for (:mod:`sim.model.demand`),
so it must cost a replication neither shapely nor matplotlib (the maps of
:mod:`sim.outputs.outlines` draw the same rings as matplotlib paths).

Two levels of region: the 34 provincial-level divisions (Taiwan, Hong Kong and Macao are
read but ``in_model`` is false: the model has no prefectures there), and one cell per
prefecture-level division of prefectures.csv, the Voronoi region of its seat among the
seats of its province, cut to the province outline. Cells approximate prefectures; the
outlines themselves are simplified to a few km.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sim.model.reference import data_dir

OUTLINES_FILE = "province_outlines.geojson"
# Points tested against one ring at a time: bounds the (points x edges) work arrays.
_POINTS_PER_BLOCK = 2048


def ring_contains(ring: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """True for each point strictly inside a closed ring of (lon, lat) rows.

    The even-odd crossing rule: a ray from the point towards +lon crosses the ring an
    odd number of times when the point is inside. An edge counts when it straddles the
    point's latitude (one end above, the other at or below), so a vertex on the ray is
    counted once.
    """
    x0, y0 = ring[:-1, 0], ring[:-1, 1]
    x1, y1 = ring[1:, 0], ring[1:, 1]
    inside = np.zeros(len(lon), dtype=bool)
    for start in range(0, len(lon), _POINTS_PER_BLOCK):
        x = lon[start : start + _POINTS_PER_BLOCK, None]
        y = lat[start : start + _POINTS_PER_BLOCK, None]
        straddles = (y0 > y) != (y1 > y)
        # Where the edge meets the point's latitude; edges that do not straddle are
        # masked out, and they are the only ones that can be horizontal (no division by 0).
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        crossings = np.count_nonzero(straddles & (x < x_cross), axis=1)
        inside[start : start + _POINTS_PER_BLOCK] = crossings % 2 == 1
    return inside


def _ring_boxes(rings: Sequence[np.ndarray]) -> np.ndarray:
    """(lon_min, lat_min, lon_max, lat_max) of each ring, one row per ring."""
    boxes = [(*ring.min(axis=0), *ring.max(axis=0)) for ring in rings]
    return np.array(boxes, dtype=float).reshape(-1, 4)


@dataclass(frozen=True, eq=False)
class Region:
    """A province outline or a prefecture cell, in degrees.

    ``exteriors`` and ``holes`` are closed rings, arrays of (lon, lat) rows whose last
    row repeats the first. Regions compare and hash by identity (their rings are arrays).
    """

    adcode: str
    name: str
    province: str  # the province's Chinese name; a province's own name for a province
    in_model: bool
    exteriors: tuple[np.ndarray, ...]
    holes: tuple[np.ndarray, ...]

    def contains(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> np.ndarray:
        """True for each point inside the region (in an exterior ring, in no hole)."""
        lat_arr = np.ravel(np.asarray(lat, dtype=float))
        lon_arr = np.ravel(np.asarray(lon, dtype=float))
        inside = np.zeros(len(lat_arr), dtype=bool)
        for rings, box, is_hole in (
            (self.exteriors, self._exterior_boxes, False),
            (self.holes, self._hole_boxes, True),
        ):
            # A ring is tested only on the points within its bounding box: a coast of
            # many islands costs no more than its mainland for a point inland.
            near_any = (
                (lon_arr[:, None] >= box[:, 0])
                & (lat_arr[:, None] >= box[:, 1])
                & (lon_arr[:, None] <= box[:, 2])
                & (lat_arr[:, None] <= box[:, 3])
            )
            for r in np.flatnonzero(near_any.any(axis=0)):
                near = np.flatnonzero(near_any[:, r])
                hit = near[ring_contains(rings[r], lon_arr[near], lat_arr[near])]
                inside[hit] = not is_hole
        return inside

    def radii_around(self, lat: float, lon: float) -> tuple[float, float]:
        """Two radii around a point, in degrees of the (lon, lat) plane the rings live in.

        Inside the first (0 when the point is not inside the region) every point is
        inside the region: it reaches no edge. Beyond the second every point is outside:
        it is the farthest vertex. They let a caller skip :meth:`contains` for points
        near the centre or far from the region.
        """
        rings = (*self.exteriors, *self.holes)
        tail = np.vstack([ring[:-1] for ring in rings])
        edge = np.vstack([ring[1:] for ring in rings]) - tail
        to_point = np.array([lon, lat]) - tail
        length2 = np.einsum("ij,ij->i", edge, edge)
        with np.errstate(divide="ignore", invalid="ignore"):
            along = np.clip(np.einsum("ij,ij->i", to_point, edge) / length2, 0.0, 1.0)
        along = np.where(length2 > 0, along, 0.0)
        nearest = np.hypot(*(to_point - along[:, None] * edge).T).min()
        farthest = np.hypot(*to_point.T).max()
        inner = float(nearest) if self.contains(lat, lon)[0] else 0.0
        return inner, float(farthest)

    @cached_property
    def _exterior_boxes(self) -> np.ndarray:
        return _ring_boxes(self.exteriors)

    @cached_property
    def _hole_boxes(self) -> np.ndarray:
        return _ring_boxes(self.holes)

    @cached_property
    def bounds(self) -> tuple[float, float, float, float]:
        """(lon_min, lat_min, lon_max, lat_max)."""
        box = self._exterior_boxes
        return (
            float(box[:, 0].min()),
            float(box[:, 1].min()),
            float(box[:, 2].max()),
            float(box[:, 3].max()),
        )


def _polygons(geometry: Mapping[str, Any]) -> list[list[np.ndarray]]:
    kind = geometry.get("type")
    if kind == "Polygon":
        polygons = [geometry["coordinates"]]
    elif kind == "MultiPolygon":
        polygons = list(geometry["coordinates"])
    else:
        raise ValueError(f"expected a Polygon or MultiPolygon, got {kind!r}")
    out = []
    for rings in polygons:
        closed = []
        for ring in rings:
            xy = np.asarray(ring, dtype=float)[:, :2]
            if len(xy) and not np.array_equal(xy[0], xy[-1]):
                xy = np.vstack((xy, xy[:1]))
            closed.append(xy)
        out.append(closed)
    return out


def geometry_region(
    geometry: Mapping[str, Any],
    *,
    adcode: str = "",
    name: str = "",
    province: str = "",
    in_model: bool = True,
) -> Region:
    """A :class:`Region` from a GeoJSON Polygon or MultiPolygon geometry."""
    exteriors: list[np.ndarray] = []
    holes: list[np.ndarray] = []
    for polygon in _polygons(geometry):
        exteriors.append(polygon[0])
        holes.extend(polygon[1:])
    return Region(adcode, name, province, in_model, tuple(exteriors), tuple(holes))


@dataclass(frozen=True)
class Outlines:
    """Province outlines (34, ordered by adcode) and prefecture cells (ordered by adcode)."""

    provinces: tuple[Region, ...]
    cells: tuple[Region, ...]

    def province(self, adcode: str) -> Region:
        """The outline of the province an adcode belongs to (``410100`` -> Henan)."""
        prefix = str(adcode)[:2]
        for region in self.provinces:
            if region.adcode[:2] == prefix:
                return region
        raise KeyError(f"no province outline for adcode {adcode}")

    def cell(self, adcode: str) -> Region:
        """The cell of one prefecture-level division."""
        region = self.cells_by_adcode.get(str(adcode))
        if region is None:
            raise KeyError(f"no prefecture cell for adcode {adcode}")
        return region

    @cached_property
    def cells_by_adcode(self) -> dict[str, Region]:
        """The prefecture cells by adcode."""
        return {region.adcode: region for region in self.cells}

    def locate_cells(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> np.ndarray:
        """adcode of the prefecture cell holding each point; '' outside every cell.

        :meth:`locate` at the prefecture level, province first: a point is tested only
        against the cells of the province that holds it, and a point outside every
        province against every cell (Sansha's disc lies outside Hainan's outline).
        """
        lat_arr = np.ravel(np.asarray(lat, dtype=float))
        lon_arr = np.ravel(np.asarray(lon, dtype=float))
        province = self.locate(lat_arr, lon_arr)
        prefix = np.array([code[:2] for code in province.tolist()], dtype=object)
        nowhere = province == ""
        found = np.full(len(lat_arr), "", dtype=object)
        for region in self.cells:
            rows = np.flatnonzero(((prefix == region.adcode[:2]) | nowhere) & (found == ""))
            if len(rows) == 0:
                continue
            hit = region.contains(lat_arr[rows], lon_arr[rows])
            found[rows[hit]] = region.adcode
        return found.astype(str)

    def locate(self, lat: npt.ArrayLike, lon: npt.ArrayLike, level: str = "province") -> np.ndarray:
        """adcode of the province (or prefecture cell) holding each point; '' outside all."""
        regions: Sequence[Region] = self.provinces if level == "province" else self.cells
        lat_arr = np.ravel(np.asarray(lat, dtype=float))
        lon_arr = np.ravel(np.asarray(lon, dtype=float))
        found = np.full(len(lat_arr), "", dtype=object)
        for region in regions:
            open_points = np.flatnonzero(found == "")
            if len(open_points) == 0:
                break
            hit = region.contains(lat_arr[open_points], lon_arr[open_points])
            found[open_points[hit]] = region.adcode
        return found.astype(str)


def read_outlines(path: Path | str | None = None) -> Outlines:
    """Read a province-outline GeoJSON (default: the shipped one, read once per process)."""
    if path is None:
        return _shipped()
    return _read(Path(path))


@cache
def _shipped() -> Outlines:
    return _read(data_dir("seeds") / OUTLINES_FILE)


def _read(path: Path) -> Outlines:
    data = json.loads(path.read_text(encoding="utf-8"))
    provinces: list[Region] = []
    cells: list[Region] = []
    for feature in data["features"]:
        p = feature["properties"]
        level = p.get("level", "province")
        region = geometry_region(
            feature["geometry"],
            adcode=str(p.get("adcode", "")),
            name=str(p.get("name", "")),
            province=str(p.get("province", p.get("name", ""))),
            in_model=bool(p.get("in_model", True)),
        )
        (cells if level == "prefecture" else provinces).append(region)
    key = attrgetter("adcode")
    return Outlines(tuple(sorted(provinces, key=key)), tuple(sorted(cells, key=key)))
