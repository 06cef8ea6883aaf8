"""Maps of China drawn on real province outlines (seeds/province_outlines.geojson).

Four maps, each a :class:`matplotlib.figure.Figure` built with the object-oriented API
(headless, worker-safe, like every figure of :mod:`sim.outputs.plots`):

* :func:`network_map`: stations sized by their vans;
* :func:`on_time_map`: on-time arrival by prefecture, each prefecture drawn as its cell
  (the Voronoi region of its seat within its province, cut to the province outline);
* :func:`province_choropleth`: any KPI by province
  (:func:`sim.analysis.tables.province_kpis` computes them from a run's calls with the
  KPI functions of :mod:`sim.analysis.kpis`);
* :func:`network_difference_map`: two networks or station tables, e.g. a network before
  and after a design change: stations opened and closed, van counts changed
  (:func:`sim.analysis.tables.network_changes` gives the same as a table).

Every map carries :data:`~sim.outputs.outlines.OUTLINE_CAPTION` under it: where the
outlines come from, and that they are approximate, not a surveyed standard map. The
axes are degrees of longitude and latitude, with the aspect that keeps distances true
at the middle latitude of the view. Labels are Latin letters, as in the other figures;
places are named where they fit (:mod:`.labels`).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.colorbar import Colorbar
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from sim.analysis.kpi_catalogue import CATALOGUE
from sim.analysis.tables import (
    network_changes,
    prefecture_on_time,
    station_frame,
    station_table,
    surge_regions,
)
from sim.model.reference import PROVINCE_PINYIN
from sim.outputs.outlines import OUTLINE_CAPTION, Outlines, Region, read_outlines, region_path
from sim.outputs.place_names import label_point, latin_name
from sim.outputs.plots._style import SURGE_COLOUR, kpi_scale
from sim.outputs.plots.labels import Label, name_places, place_labels

KM_PER_DEGREE = 111.2
# The whole country, Sansha's seat (16.8 N) and the Heilongjiang bend (53.6 N) included.
CHINA_EXTENT = (73.0, 15.5, 135.5, 54.0)  # lon_min, lat_min, lon_max, lat_max
# A view wider than this (degrees of longitude) is drawn as the whole country.
NATIONAL_SPAN_DEG = 25.0
LAND = "#f6f5f0"
OUTSIDE_MODEL = "#e4e4e4"  # Taiwan, Hong Kong, Macao: drawn, never simulated
NO_DATA = "#dcdcdc"
BORDER = "#444444"
OPENED, CLOSED = "#1a9850", "#d73027"
# The width a map's figure gives its colour scale, its ticks and its label (inches).
COLOUR_BAR_ROOM_IN = 1.4

OutlinesLike = Outlines | str | Path | None


def _stations(network: Any, stations: Any) -> pd.DataFrame | None:
    return station_table(network) if network is not None else station_frame(stations)


# --------------------------------------------------------------------------- drawing


def _outlines(outlines: OutlinesLike) -> Outlines:
    return outlines if isinstance(outlines, Outlines) else read_outlines(outlines)


def _extent(lon: np.ndarray, lat: np.ndarray) -> tuple[float, float, float, float]:
    """A padded view around the points; the whole country when they span it."""
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        return CHINA_EXTENT
    x0, x1 = float(lon[ok].min()), float(lon[ok].max())
    y0, y1 = float(lat[ok].min()), float(lat[ok].max())
    if x1 - x0 > NATIONAL_SPAN_DEG:
        return CHINA_EXTENT
    pad_x = max((x1 - x0) * 0.08, 0.6)
    pad_y = max((y1 - y0) * 0.08, 0.6)
    return x0 - pad_x, y0 - pad_y, x1 + pad_x, y1 + pad_y


def _map_axes(extent: tuple[float, float, float, float], *, colorbar: bool) -> tuple[Figure, Axes]:
    """A figure sized to the view, with degree ticks and the outline caption under it.

    The axes sit at fixed margins (inches), no layout engine: the room the degree
    labels, the title and the caption take is known, and the constrained layout would
    measure every text of the map again at each save. ``colorbar``: room on the right
    for :func:`_colour_bar`.
    """
    x0, y0, x1, y1 = extent
    stretch = 1.0 / math.cos(math.radians((y0 + y1) / 2.0))
    ratio = (x1 - x0) / ((y1 - y0) * stretch)
    height = 7.5
    width = float(np.clip(height * ratio, 5.5, 12.0)) + (COLOUR_BAR_ROOM_IN if colorbar else 0.0)
    fig = Figure(figsize=(width, height + 0.4))
    # About 17 characters of 7-point text per inch: wrap so a narrow map keeps it whole.
    caption = textwrap.fill(OUTLINE_CAPTION, width=int(width * 17))
    fig.supxlabel(caption, fontsize=7, color="#555555")
    left, top = 0.48, 0.32  # the latitudes; the title
    # The longitudes, then the caption's lines (7 points each, with their spacing).
    bottom = 0.3 + 0.12 * (caption.count("\n") + 1)
    right = 0.1 + (COLOUR_BAR_ROOM_IN if colorbar else 0.0)
    fig.subplots_adjust(
        left=left / width,
        right=1.0 - right / width,
        bottom=bottom / fig.get_figheight(),
        top=1.0 - top / fig.get_figheight(),
    )
    ax = fig.subplots()
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect(stretch)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}°E"))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}°N"))
    ax.tick_params(labelsize=8)
    ax.set_facecolor("#eef3f7")  # the sea, and land outside China
    return fig, ax


def _colour_bar(fig: Figure, ax: Axes, mappable: Any) -> Colorbar:
    """The colour scale beside the map, 70% of its height, in the room :func:`_map_axes`
    left on the right of the axes."""
    box = ax.get_position(original=True)
    width = fig.get_figwidth()
    bar_h = box.height * 0.7
    cax = fig.add_axes((box.x1 + 0.3 / width, box.y0 + 0.15 * box.height, 0.22 / width, bar_h))
    return fig.colorbar(mappable, cax=cax)


def _region_paths(regions: Sequence[Region], **style: Any) -> PathCollection:
    """The regions' outlines as one collection of their (cached) paths, drawn in
    ``style`` (PathCollection's). No patch per region: a patch costs more to make than
    its path costs to draw."""
    return PathCollection([region_path(r) for r in regions], **style)


def _draw_provinces(ax: Axes, outlines: Outlines, *, fill: bool = True) -> None:
    """Province fills under everything (fill=True) or their borders over everything."""
    regions = outlines.provinces
    if fill:
        ax.add_collection(
            _region_paths(
                regions,
                facecolors=[LAND if r.in_model else OUTSIDE_MODEL for r in regions],
                edgecolors="none",
                zorder=0,
            )
        )
    ax.add_collection(
        _region_paths(
            regions,
            facecolors="none",
            edgecolors=BORDER,
            linewidths=0.7,
            zorder=2.5,
            gid="province_borders",
        )
    )


def _draw_cells(ax: Axes, outlines: Outlines) -> None:
    ax.add_collection(
        _region_paths(
            outlines.cells,
            facecolors="none",
            edgecolors="#c8c8c8",
            linewidths=0.3,
            zorder=0.5,
            gid="prefecture_cells",
        )
    )


def _draw_surges(ax: Axes, surges: Any) -> None:
    for k, (name, lat0, lon0, radius_km) in enumerate(surge_regions(surges)):
        angle = np.linspace(0, 2 * np.pi, 181)
        lat = lat0 + radius_km / KM_PER_DEGREE * np.sin(angle)
        lon = lon0 + radius_km / KM_PER_DEGREE * np.cos(angle) / math.cos(math.radians(lat0))
        ax.plot(
            lon,
            lat,
            color=SURGE_COLOUR,
            linestyle="--",
            linewidth=1.5,
            zorder=4,
            label="surge region" if k == 0 else None,
        )
        ax.annotate(name, (lon[45], lat[45]), fontsize=8, color=SURGE_COLOUR)


def _van_sizes(vans: np.ndarray, national: bool) -> tuple[np.ndarray, float, float]:
    """Marker areas for van counts, and (a, b) of area = a + b * vans."""
    a, b = (2.0, 3.0) if national else (14.0, 16.0)
    return a + b * np.asarray(vans, float), a, b


def _is_national(extent: tuple[float, float, float, float]) -> bool:
    return extent[2] - extent[0] > NATIONAL_SPAN_DEG


def _station_map(
    stations: pd.DataFrame, outlines: OutlinesLike
) -> tuple[Figure, Axes, bool, Outlines]:
    """Axes framing the stations on province fills and prefecture cells; True: a national
    view (name the places with :func:`name_places` once everything else is drawn)."""
    shapes = _outlines(outlines)
    extent = _extent(stations["lon"].to_numpy(), stations["lat"].to_numpy())
    fig, ax = _map_axes(extent, colorbar=False)
    _draw_provinces(ax, shapes)
    _draw_cells(ax, shapes)
    return fig, ax, _is_national(extent), shapes


# --------------------------------------------------------------------------- maps


def network_map(
    network: Any = None,
    *,
    stations: Any = None,
    surges: Any = None,
    title: str | None = None,
    outlines: OutlinesLike = None,
) -> Figure:
    """Stations sized by their vans, on the province outlines and prefecture cells.

    ``network``: a :class:`sim.model.network.Network`, or give ``stations``: a frame with
    lat, lon, vans (a station table) or a ``(lat, lon, vans)`` tuple. The view is the
    stations' extent (a province scenario shows its province, a national one the
    country). ``surges``: a Scenario or its surges, drawn as dashed circles.
    """
    table = _stations(network, stations)
    if table is None:
        raise ValueError("network_map needs a network or a station table")
    fig, ax, national, shapes = _station_map(table, outlines)
    vans = table["vans"].to_numpy(float)
    sizes, a, b = _van_sizes(vans, national)
    ax.scatter(
        table["lon"],
        table["lat"],
        s=sizes,
        facecolors="#1f77b4",
        edgecolors="#0b2e4f",
        linewidths=0.3 if national else 0.7,
        alpha=0.55 if national else 0.8,
        zorder=3,
        label=f"stations ({len(table)}; {int(vans.sum())} vans)",
    )
    _draw_surges(ax, surges)
    shown: np.ndarray = (
        np.unique(np.round(np.quantile(vans, [0.0, 0.5, 0.9, 1.0]))) if len(vans) else np.zeros(0)
    )
    handles = [
        Line2D([], [], marker="o", linestyle="", markersize=math.sqrt(a + b * v),
               markerfacecolor="#1f77b4", markeredgecolor="#0b2e4f", alpha=0.7)
        for v in shown
    ]  # fmt: skip
    size_legend = ax.legend(
        handles, [f"{int(v)} van{'s' if v != 1 else ''}" for v in shown], loc="upper left",
        fontsize=8, title="vans per station", title_fontsize=8, framealpha=0.9,
    )  # fmt: skip
    ax.add_artist(size_legend)
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    ax.set_title(title or "Stations and vans")
    name_places(ax, shapes, national=national)
    return fig


def on_time_map(
    calls: pd.DataFrame,
    network: Any = None,
    *,
    stations: Any = None,
    warmup_h: float = 0.0,
    horizon_h: float | None = None,
    surges: Any = None,
    title: str | None = None,
    outlines: OutlinesLike = None,
) -> Figure:
    """On-time arrival by prefecture: each prefecture's cell coloured by its rate.

    Rates are counted as the KPI counts them (:func:`prefecture_on_time`); a prefecture
    without a counted call stays grey. Stations, when given, are small dots.
    """
    shapes = _outlines(outlines)
    table = prefecture_on_time(calls, warmup_h=warmup_h, horizon_h=horizon_h)
    station_data = _stations(network, stations)
    if station_data is not None and len(station_data):
        extent = _extent(station_data["lon"].to_numpy(), station_data["lat"].to_numpy())
    else:
        extent = _extent(table["lon"].to_numpy(), table["lat"].to_numpy())
    fig, ax = _map_axes(extent, colorbar=True)
    _draw_provinces(ax, shapes)
    rate = dict(zip(table["adcode"], table["on_time_rate"].astype(float), strict=True))
    with_data = [c for c in shapes.cells if c.adcode in rate]
    without = [c for c in shapes.cells if c.adcode not in rate]
    ax.add_collection(
        _region_paths(
            without,
            facecolors=NO_DATA,
            edgecolors="#ffffff",
            linewidths=0.3,
            zorder=0.5,
        )
    )
    rates = np.array([rate[c.adcode] for c in with_data], dtype=float)
    low = min(0.7, float(np.nanmin(rates))) if len(rates) else 0.7
    coloured = _region_paths(
        with_data,
        cmap="RdYlGn",
        norm=Normalize(vmin=low, vmax=1.0),
        edgecolors="#ffffff",
        linewidths=0.3,
        zorder=1,
        gid="on_time_cells",
    )
    coloured.set_array(rates)
    ax.add_collection(coloured)
    bar = _colour_bar(fig, ax, coloured)
    bar.set_label("on-time arrival rate (dispatched calls)")
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0%}"))
    handles: list[Any] = [
        Patch(facecolor=coloured.cmap(0.85), edgecolor="white",
              label=f"prefectures with calls ({len(with_data)})"),
        Patch(facecolor=NO_DATA, edgecolor="white", label="no counted call"),
    ]  # fmt: skip
    if station_data is not None:
        ax.scatter(
            station_data["lon"], station_data["lat"], s=2 if _is_national(extent) else 8,
            color="#1a1a1a", zorder=3,
        )  # fmt: skip
        handles.append(
            Line2D([], [], marker="o", linestyle="", markersize=3, color="#1a1a1a",
                   label=f"stations ({len(station_data)})")
        )  # fmt: skip
    _draw_surges(ax, surges)
    if surges is not None and surge_regions(surges):
        handles.append(Line2D([], [], color=SURGE_COLOUR, linestyle="--", label="surge region"))
    ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.9)
    ax.set_title(title or "On-time arrival by prefecture")
    name_places(ax, shapes, national=_is_national(extent))
    return fig


def _province_region(key: Any, shapes: Outlines) -> Region | None:
    text = str(key)
    if text.isdigit():
        try:
            return shapes.province(text)
        except KeyError:
            return None
    for region in shapes.provinces:
        if region.name == text or PROVINCE_PINYIN.get(region.adcode[:2]) == text:
            return region
    return None


def province_choropleth(
    values: Mapping[str, float] | pd.Series,
    *,
    kpi: str | None = None,
    title: str | None = None,
    label: str | None = None,
    outlines: OutlinesLike = None,
) -> Figure:
    """Provinces coloured by a value: any KPI, e.g. a column of :func:`province_kpis`.

    ``values`` are keyed by adcode (``410000``, or any adcode of the province), by the
    Chinese province name (``河南省``) or by its pinyin (``Henan``). ``kpi`` names the
    KPI: rates are shown in percent, and the colours run red (worse) to green (better)
    by :data:`sim.analysis.kpis.KPI_HIGHER_IS_BETTER`; a KPI with no better direction,
    or none given, uses a neutral scale. Provinces without a value stay grey.
    """
    shapes = _outlines(outlines)
    series = pd.Series(values, dtype=float).dropna()
    by_region: dict[str, float] = {}
    for key, value in series.items():
        region = _province_region(key, shapes)
        if region is None:
            raise KeyError(f"no province outline for {key!r}")
        by_region[region.adcode] = float(value)
    regions = [r for r in shapes.provinces if r.adcode in by_region]
    if regions:
        x0 = min(r.bounds[0] for r in regions)
        y0 = min(r.bounds[1] for r in regions)
        x1 = max(r.bounds[2] for r in regions)
        y1 = max(r.bounds[3] for r in regions)
        extent = _extent(np.array([x0, x1]), np.array([y0, y1]))
    else:
        extent = CHINA_EXTENT
    fig, ax = _map_axes(extent, colorbar=True)
    _draw_provinces(ax, shapes)
    entry = CATALOGUE.get(kpi) if kpi else None
    better = entry.higher_is_better if entry is not None else None
    cmap = {True: "RdYlGn", False: "RdYlGn_r", None: "viridis"}[better]
    scale = kpi_scale(kpi) if kpi is not None else 1.0
    data = np.array([by_region[r.adcode] for r in regions], dtype=float) * scale
    finite = data[np.isfinite(data)]
    low, high = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    if high <= low:  # one value (or all equal): a band around it, not a degenerate scale
        low, high = low - max(abs(low) * 0.05, 1e-9), high + max(abs(high) * 0.05, 1e-9)
    norm = Normalize(vmin=low, vmax=high)
    coloured = _region_paths(
        regions,
        cmap=cmap,
        norm=norm,
        edgecolors="none",
        zorder=1,
        gid="province_values",
    )
    coloured.set_array(data)
    ax.add_collection(coloured)
    missing = [r for r in shapes.provinces if r.in_model and r.adcode not in by_region]
    ax.add_collection(
        _region_paths(
            missing,
            facecolors=NO_DATA,
            edgecolors="none",
            zorder=1,
        )
    )
    unit = "%" if scale == 100.0 else ""
    name = label or (kpi.replace("_", " ") if kpi else "value")
    bar = _colour_bar(fig, ax, coloured)
    bar.set_label(f"{name}{' (percent)' if unit else ''}")
    handles = [Patch(facecolor=NO_DATA, label="no value")] if missing else []
    if handles:
        ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.9)
    ax.set_title(title or f"{name} by province")
    # Each province's name and value, largest provinces first; those that would overlap
    # another (the small eastern ones, on a national map) are left out.
    labels = []
    for region, value in zip(regions, data, strict=True):
        if np.isfinite(value):
            text = f"{value:.1f}{unit}" if abs(value) < 1000 else f"{value:,.0f}"
            x, y = label_point(region)
            x0, y0, x1, y1 = region.bounds
            labels.append(Label(x, y, f"{latin_name(region)}\n{text}", (x1 - x0) * (y1 - y0)))
    place_labels(
        ax, labels, fontsize=7, linespacing=1.0, zorder=5,
        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.6},
    )  # fmt: skip
    return fig


# --------------------------------------------------------------------------- two networks


def network_difference_map(
    before: Any,
    after: Any,
    *,
    labels: Sequence[str] = ("before", "after"),
    title: str | None = None,
    outlines: OutlinesLike = None,
) -> Figure:
    """Where two networks differ: stations opened and closed, van counts changed.

    ``before``, ``after``: Networks or station tables (see :func:`network_changes`), e.g.
    a network design's starting network and a candidate. Opened stations are green
    triangles and closed ones red crosses, both sized by their vans; stations whose
    van count changed are circles sized by the change (green more, red fewer); the
    rest are small grey dots.
    """
    changes = network_changes(before, after)
    fig, ax, national, shapes = _station_map(changes, outlines)
    counts = changes["change"].value_counts()
    delta = (changes["vans_after"] - changes["vans_before"]).to_numpy()
    k = 0.6 if national else 1.0
    styles: dict[str, dict[str, Any]] = {
        "unchanged": {"marker": "o", "color": "#9a9a9a", "s": 3 * k, "zorder": 2},
        "more vans": {"marker": "o", "facecolors": "none", "edgecolors": OPENED, "zorder": 3},
        "fewer vans": {"marker": "o", "facecolors": "none", "edgecolors": CLOSED, "zorder": 3},
        "opened": {"marker": "^", "color": OPENED, "edgecolors": "#0b3d1f", "zorder": 4},
        "closed": {"marker": "X", "color": CLOSED, "edgecolors": "#5c0f0b", "zorder": 4},
    }
    for change, style in styles.items():
        rows = (changes["change"] == change).to_numpy()
        if not rows.any():
            continue
        if change in ("opened", "closed"):
            vans = np.maximum(changes["vans_after"].to_numpy(), changes["vans_before"].to_numpy())[
                rows
            ]
            size = (20 + 10 * vans) * k
        elif change != "unchanged":
            size = (20 + 20 * np.abs(delta[rows])) * k
        else:
            size = style.pop("s")
        word = {"opened": "stations opened", "closed": "stations closed",
                "more vans": "more vans", "fewer vans": "fewer vans",
                "unchanged": "unchanged"}[change]  # fmt: skip
        extra = f", {int(delta[rows].sum()):+d} vans" if change != "unchanged" else ""
        ax.scatter(
            changes["lon"].to_numpy()[rows], changes["lat"].to_numpy()[rows], s=size,
            linewidths=0.9, label=f"{word} ({int(counts.get(change, 0))}{extra})",
            gid=f"change_{change.replace(' ', '_')}", **style,
        )  # fmt: skip
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9, markerscale=0.8)
    total_before = int(changes["vans_before"].sum())
    total_after = int(changes["vans_after"].sum())
    n_before = int((changes["change"] != "opened").sum())
    n_after = int((changes["change"] != "closed").sum())
    ax.set_title(
        title
        or (
            f"{labels[1]} against {labels[0]}\n"
            f"stations {n_before} -> {n_after}, vans {total_before} -> {total_after}"
        )
    )
    name_places(ax, shapes, national=national)
    return fig


__all__ = [
    "network_difference_map",
    "network_map",
    "on_time_map",
    "province_choropleth",
]
