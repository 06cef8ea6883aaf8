"""The network map: stations and on-time arrival by prefecture on a map of China.

The map is *schematic*: built from the shipped prefecture seats (seeds/prefectures.csv),
each prefecture drawn as its Voronoi cell cut to a disc, and the province boundaries as
the cell edges between seats of different provinces. No package of province polygons
with a clean redistribution licence was found (see docs/plots.md); pass ``outlines=`` a
GeoJSON of province polygons that you are licensed to use and the map draws those
instead. Kept in a module of its own so that a map on real outlines can replace it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection, PatchCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Polygon, Rectangle

from sim.analysis.tables import prefecture_on_time, surge_regions
from sim.model.reference import areas
from sim.outputs.plots._style import SURGE_COLOUR, new_figure

# Plot coordinates: longitude squeezed by the cosine of China's middle latitude, so that
# the map keeps distances roughly true (an equirectangular projection).
_MAP_LAT0 = 35.0
_MAP_KX = math.cos(math.radians(_MAP_LAT0))
KM_PER_DEGREE = 111.2


def _project(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return np.column_stack((np.asarray(lon, float) * _MAP_KX, np.asarray(lat, float)))


@cache
def schematic_provinces(
    min_km: float = 120.0, max_km: float = 700.0
) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
    """A schematic map of China's provinces built from the prefecture seats, in lon/lat.

    Each seat gets its Voronoi cell, cut to a disc whose radius follows how dense the
    seats are around it (the distance to its third-nearest seat, within
    ``min_km``..``max_km``): together the cells approximate the land, and the edges
    between cells of different provinces approximate the province boundaries.

    Returns ``(cells, boundaries, seats)``: one (k, 2) polygon per seat, an (n, 2, 2)
    array of boundary segments, and the (m, 2) seats.
    """
    from scipy.spatial import Voronoi, cKDTree

    table = areas()
    lonlat = table[["lon", "lat"]].to_numpy(float)
    points = _project(lonlat[:, 0], lonlat[:, 1])
    province = table["adcode"].str[:2].to_numpy()
    n = len(points)
    nearest, _ = cKDTree(points).query(points, k=4)
    reach = np.clip(nearest[:, 3], min_km / KM_PER_DEGREE, max_km / KM_PER_DEGREE)
    # Far "ghost" seats all round make every real cell bounded.
    centre = points.mean(axis=0)
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    ghosts = centre + 200.0 * np.column_stack((np.cos(angles), np.sin(angles)))
    vor = Voronoi(np.vstack((points, ghosts)))
    circle = np.column_stack(
        (
            np.cos(np.linspace(0, 2 * np.pi, 48, endpoint=False)),
            np.sin(np.linspace(0, 2 * np.pi, 48, endpoint=False)),
        )
    )
    cells = []
    for i in range(n):
        region = vor.regions[vor.point_region[i]]
        polygon = vor.vertices[region]
        disc = points[i] + reach[i] * circle
        cells.append(_clip_convex(polygon, disc))
    segments = []
    for (p, q), ridge in zip(vor.ridge_points, vor.ridge_vertices, strict=True):
        if p >= n or q >= n or province[p] == province[q] or -1 in ridge:
            continue
        a, b = vor.vertices[ridge[0]], vor.vertices[ridge[1]]
        clipped = _clip_to_disc(a, b, points[p], float(min(reach[p], reach[q])))
        if clipped is not None:
            segments.append(clipped)
    seg = np.array(segments, dtype=float).reshape(-1, 2, 2)
    seg[..., 0] /= _MAP_KX
    out_cells = []
    for cell in cells:
        c = cell.copy()
        c[:, 0] /= _MAP_KX
        out_cells.append(c)
    return tuple(out_cells), seg, lonlat


def _clip_convex(subject: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: the part of polygon ``subject`` inside convex polygon ``clip``."""

    def orient(poly: np.ndarray) -> np.ndarray:
        x, y = poly[:, 0], poly[:, 1]
        area = np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))
        return poly if area >= 0 else poly[::-1]

    output = list(orient(subject))
    clip = orient(clip)
    for k in range(len(clip)):
        a, b = clip[k], clip[(k + 1) % len(clip)]
        edge = b - a

        def inside(pt: np.ndarray, a: np.ndarray = a, edge: np.ndarray = edge) -> bool:
            return bool(edge[0] * (pt[1] - a[1]) - edge[1] * (pt[0] - a[0]) >= 0)

        points, output = output, []
        if not points:
            break
        prev = points[-1]
        for cur in points:
            if inside(cur):
                if not inside(prev):
                    output.append(prev + _param(prev, cur - prev, a, edge) * (cur - prev))
                output.append(cur)
            elif inside(prev):
                output.append(prev + _param(prev, cur - prev, a, edge) * (cur - prev))
            prev = cur
    return np.array(output, dtype=float).reshape(-1, 2)


def _param(p1: np.ndarray, d: np.ndarray, a: np.ndarray, edge: np.ndarray) -> float:
    """t where p1 + t d meets the line through a along edge."""
    denom = edge[0] * d[1] - edge[1] * d[0]
    if denom == 0:
        return 0.0
    return float((edge[1] * (p1[0] - a[0]) - edge[0] * (p1[1] - a[1])) / denom)


def _clip_to_disc(
    a: np.ndarray, b: np.ndarray, centre: np.ndarray, radius: float
) -> np.ndarray | None:
    """The part of segment a-b within ``radius`` of ``centre``, or None."""
    d = b - a
    f = a - centre
    qa, qb, qc = float(d @ d), 2 * float(f @ d), float(f @ f) - radius**2
    if qa == 0:
        return np.array([a, b]) if qc <= 0 else None
    disc = qb * qb - 4 * qa * qc
    if disc <= 0:
        return None
    root = math.sqrt(disc)
    t0, t1 = max(0.0, (-qb - root) / (2 * qa)), min(1.0, (-qb + root) / (2 * qa))
    if t0 >= t1:
        return None
    return np.array([a + t0 * d, a + t1 * d])


def schematic_province_boundaries() -> tuple[np.ndarray, np.ndarray]:
    """(boundary segments, seats) of :func:`schematic_provinces`."""
    _, segments, seats = schematic_provinces()
    return segments, seats


def _geojson_polygons(outlines: str | Path | Mapping[str, Any]) -> list[np.ndarray]:
    """Exterior rings (lon, lat arrays) of every Polygon/MultiPolygon in a GeoJSON."""
    data = (
        outlines if isinstance(outlines, Mapping) else json.loads(Path(outlines).read_text("utf-8"))
    )
    features: Iterable[Mapping[str, Any]] = data.get("features", [data])
    rings = []
    for feature in features:
        geometry = feature.get("geometry", feature)
        if not geometry:
            continue
        kind, coords = geometry.get("type"), geometry.get("coordinates", [])
        polygons = [coords] if kind == "Polygon" else coords if kind == "MultiPolygon" else []
        for polygon in polygons:
            if polygon:
                rings.append(np.asarray(polygon[0], dtype=float))
    return rings


def _station_arrays(
    network: Any, stations: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    if network is not None:
        return (
            np.asarray(network.station_lat, float),
            np.asarray(network.station_lon, float),
            np.asarray(network.vans_per_station, float),
        )
    if stations is None:
        return None
    if isinstance(stations, pd.DataFrame):
        return (
            stations["lat"].to_numpy(float),
            stations["lon"].to_numpy(float),
            stations["vans"].to_numpy(float),
        )
    lat, lon, vans = stations
    return np.asarray(lat, float), np.asarray(lon, float), np.asarray(vans, float)


def network_map(
    calls: pd.DataFrame | None = None,
    network: Any = None,
    *,
    stations: Any = None,
    warmup_h: float = 0.0,
    horizon_h: float | None = None,
    outlines: str | Path | Mapping[str, Any] | None = None,
    surges: Any = None,
    title: str | None = None,
) -> Figure:
    """Stations sized by vans, prefectures coloured by on-time arrival, on province outlines.

    ``network``: a :class:`sim.model.network.Network` (``build_network(scenario)``), or give
    ``stations`` as a DataFrame with lat, lon, vans or a ``(lat, lon, vans)`` tuple.
    ``outlines``: optional GeoJSON (path or dict) of province polygons to draw instead of
    the schematic boundaries. ``surges``: a Scenario or its surges, drawn as circles.
    """
    cells, segments, seats = schematic_provinces()
    seat_xy = _project(seats[:, 0], seats[:, 1])
    station_data = _station_arrays(network, stations)
    pref = (
        prefecture_on_time(calls, warmup_h=warmup_h, horizon_h=horizon_h)
        if calls is not None and len(calls)
        else None
    )
    focus = [seat_xy[:0]]
    if station_data is not None:
        focus.append(_project(station_data[1], station_data[0]))
    if pref is not None and len(pref):
        focus.append(_project(pref["lon"].to_numpy(), pref["lat"].to_numpy()))
    pts = np.vstack(focus)
    if not len(pts):
        pts = seat_xy
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = np.maximum((hi - lo) * 0.06, 0.6)
    lo, hi = lo - pad, hi + pad
    span = hi - lo
    national = span[0] > 25.0
    width = float(np.clip(7.5 * span[0] / span[1], 6.0, 11.0)) + 1.6
    fig = new_figure(width, 7.5)
    ax = fig.subplots()

    rate_by_adcode: dict[str, float] = {}
    if pref is not None and len(pref):
        rate_by_adcode = dict(zip(pref["adcode"], pref["on_time_rate"].astype(float), strict=True))
    rates = np.array(list(rate_by_adcode.values()), dtype=float)
    norm = Normalize(vmin=min(0.7, float(np.nanmin(rates))) if len(rates) else 0.7, vmax=1.0)
    cmap = "RdYlGn"
    mappable: Any = None
    if outlines is not None:
        rings = _geojson_polygons(outlines)
        patches = [Polygon(_project(r[:, 0], r[:, 1]), closed=True) for r in rings]
        ax.add_collection(
            PatchCollection(
                patches, facecolor="#f4f4f4", edgecolor="#888888", linewidth=0.6, zorder=0
            )
        )
        outline_label = "province outlines (GeoJSON)"
        if pref is not None and len(rates):
            xy = _project(pref["lon"].to_numpy(), pref["lat"].to_numpy())
            mappable = ax.scatter(
                xy[:, 0],
                xy[:, 1],
                c=rates,
                cmap=cmap,
                norm=norm,
                s=28 if national else 110,
                marker="o" if national else "s",
                edgecolors="#444444",
                linewidths=0.4,
                zorder=2,
                label=f"prefectures ({len(rates)}), colour = on-time arrival",
            )
    else:
        # The prefecture cells: coloured by on-time arrival where the run has calls.
        codes = areas()["adcode"].to_numpy()
        with_data = [
            k for k, code in enumerate(codes) if code in rate_by_adcode and len(cells[k]) >= 3
        ]
        without = [
            k for k, code in enumerate(codes) if code not in rate_by_adcode and len(cells[k]) >= 3
        ]
        ax.add_collection(
            PatchCollection(
                [Polygon(_project(cells[k][:, 0], cells[k][:, 1]), closed=True) for k in without],
                facecolor="#eeeeee",
                edgecolor="#e4e4e4",
                linewidth=0.4,
                zorder=0,
            )
        )
        if with_data:
            coloured = PatchCollection(
                [Polygon(_project(cells[k][:, 0], cells[k][:, 1]), closed=True) for k in with_data],
                cmap=cmap,
                norm=norm,
                edgecolor="#ffffff",
                linewidth=0.4,
                zorder=0.5,
            )
            coloured.set_array(np.array([rate_by_adcode[codes[k]] for k in with_data]))
            mappable = ax.add_collection(coloured)
            # A proxy: a PatchCollection shows in the legend in its default colour.
            ax.add_patch(
                Rectangle(
                    (0, 0),
                    0,
                    0,
                    facecolor=coloured.cmap(0.85),
                    edgecolor="white",
                    label=f"prefectures ({len(with_data)}), colour = on-time arrival",
                )
            )
        projected = [_project(s[:, 0], s[:, 1]) for s in segments]
        ax.add_collection(
            LineCollection(
                projected,
                colors="#555555",
                linewidths=0.9,
                zorder=1,
                label="province boundaries (schematic)",
            )
        )
        outline_label = "prefecture cells and province boundaries: schematic, from prefecture seats"
    ax.scatter(
        seat_xy[:, 0], seat_xy[:, 1], s=3, color="#9a9a9a", zorder=1, label="prefecture seats"
    )
    if mappable is not None:
        bar = fig.colorbar(mappable, ax=ax, shrink=0.7)
        bar.set_label("on-time arrival rate (dispatched calls)")
    if station_data is not None:
        lat, lon, vans = station_data
        xy = _project(lon, lat)
        sizes = (2 + 3 * vans) if national else (12 + 18 * vans)
        ax.scatter(
            xy[:, 0],
            xy[:, 1],
            s=sizes,
            facecolors="none",
            edgecolors="#1a1a1a",
            linewidths=0.4 if national else 0.9,
            alpha=0.7 if national else 1.0,
            zorder=3,
            label=f"stations ({len(lat)}, size = vans; {int(vans.sum())} vans)",
        )
    for k, (name, lat0, lon0, radius_km) in enumerate(surge_regions(surges)):
        angle = np.linspace(0, 2 * np.pi, 181)
        ring_lat = lat0 + radius_km / KM_PER_DEGREE * np.sin(angle)
        ring_lon = lon0 + radius_km / KM_PER_DEGREE * np.cos(angle) / math.cos(math.radians(lat0))
        ring = _project(ring_lon, ring_lat)
        ax.plot(
            ring[:, 0],
            ring[:, 1],
            color=SURGE_COLOUR,
            linestyle="--",
            linewidth=1.5,
            zorder=4,
            label="surge region" if k == 0 else None,
        )
        ax.annotate(name, (ring[45, 0], ring[45, 1]), fontsize=8, color=SURGE_COLOUR)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ticks = [t for t in ax.get_xticks() if lo[0] <= t <= hi[0]]
    ax.set_xticks(ticks, [f"{t / _MAP_KX:.0f}E" for t in ticks])
    ax.set_ylabel("latitude (N)")
    ax.set_xlabel(f"longitude; {outline_label}")
    ax.legend(loc="lower right", fontsize=8, markerscale=0.8, framealpha=0.9)
    ax.set_title(title or "Stations and on-time arrival by prefecture")
    return fig
