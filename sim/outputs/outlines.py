"""China's province outlines and prefecture cells, from seeds/province_outlines.geojson.

The file is built once by seeds/build_province_outlines.py from DCW-GMT 2.1.1 (the
Digital Chart of the World for GMT, LGPL-3+; see seeds/ATTRIBUTION.md). Reading it needs
only ``json`` and matplotlib's :class:`~matplotlib.path.Path`, which draws the shapes and
answers point-in-polygon queries, so shapely is a build-time dependency only.

Two levels of region: the 34 provincial-level divisions (Taiwan, Hong Kong and Macao are
drawn but ``in_model`` is false: the model has no prefectures there), and one cell per
prefecture-level division of prefectures.csv, the Voronoi region of its seat among the
seats of its province, cut to the province outline. Cells approximate prefectures; the
outlines themselves are simplified to a few km. Every map drawn on them carries
:data:`OUTLINE_CAPTION`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from operator import attrgetter
from pathlib import Path as FilePath
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.path import Path

from sim.model.reference import data_dir

OUTLINES_FILE = "province_outlines.geojson"
OUTLINE_CAPTION = (
    "Outlines: DCW-GMT 2.1.1 (Digital Chart of the World), LGPL-3+, simplified; prefecture "
    "cells are Voronoi regions of the seats. Approximate: not a surveyed standard map."
)


@dataclass(frozen=True)
class Region:
    """A province outline or a prefecture cell, in degrees (x = lon, y = lat).

    ``path`` is one compound path for drawing (holes wound against their polygon, so
    matplotlib's nonzero fill leaves them empty); ``exteriors`` and ``holes`` are the rings
    one by one, for :meth:`contains`.
    """

    adcode: str
    name: str
    province: str  # the province's Chinese name; a province's own name for a province
    in_model: bool
    path: Path
    exteriors: tuple[Path, ...]
    holes: tuple[Path, ...]

    def contains(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> np.ndarray:
        """True for each point inside the region (in an exterior ring, in no hole)."""
        points = np.column_stack((np.ravel(lon), np.ravel(lat))).astype(float)
        inside = np.zeros(len(points), dtype=bool)
        for ring in self.exteriors:
            inside |= ring.contains_points(points)
        for ring in self.holes:
            inside &= ~ring.contains_points(points)
        return inside

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(lon_min, lat_min, lon_max, lat_max)."""
        v = np.asarray(self.path.vertices, dtype=float)
        return (
            float(v[:, 0].min()),
            float(v[:, 1].min()),
            float(v[:, 0].max()),
            float(v[:, 1].max()),
        )


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _ring_path(ring: np.ndarray) -> Path:
    codes = np.full(len(ring), Path.LINETO, dtype=Path.code_type)
    codes[0], codes[-1] = Path.MOVETO, Path.CLOSEPOLY
    return Path(ring, codes)


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
    exteriors: list[Path] = []
    holes: list[Path] = []
    pieces: list[np.ndarray] = []
    for polygon in _polygons(geometry):
        outer, inner = polygon[0], polygon[1:]
        exteriors.append(_ring_path(outer))
        holes.extend(_ring_path(ring) for ring in inner)
        # Nonzero fill: wind the exterior counter-clockwise and every hole clockwise.
        pieces.append(outer if _signed_area(outer) >= 0 else outer[::-1])
        pieces.extend(ring if _signed_area(ring) < 0 else ring[::-1] for ring in inner)
    path = Path.make_compound_path(*(_ring_path(p) for p in pieces))
    return Region(adcode, name, province, in_model, path, tuple(exteriors), tuple(holes))


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
        for region in self.cells:
            if region.adcode == str(adcode):
                return region
        raise KeyError(f"no prefecture cell for adcode {adcode}")

    def locate(self, lat: npt.ArrayLike, lon: npt.ArrayLike, level: str = "province") -> np.ndarray:
        """adcode of the province (or prefecture cell) holding each point; '' outside all."""
        regions: Sequence[Region] = self.provinces if level == "province" else self.cells
        lat_arr = np.ravel(np.asarray(lat, dtype=float))
        lon_arr = np.ravel(np.asarray(lon, dtype=float))
        found = np.full(len(lat_arr), "", dtype=object)
        for region in regions:
            x0, y0, x1, y1 = region.bounds
            near = (lon_arr >= x0) & (lon_arr <= x1) & (lat_arr >= y0) & (lat_arr <= y1)
            near &= found == ""
            if near.any():
                hit = np.flatnonzero(near)[region.contains(lat_arr[near], lon_arr[near])]
                found[hit] = region.adcode
        return found.astype(str)


def read_outlines(path: FilePath | str | None = None) -> Outlines:
    """Read a province-outline GeoJSON (default: the shipped one; cached)."""
    if path is None:
        return _shipped()
    return _read(FilePath(path))


@cache
def _shipped() -> Outlines:
    return _read(data_dir("seeds") / OUTLINES_FILE)


def _read(path: FilePath) -> Outlines:
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
