"""Figures of a network design: the objective along the search, and a map of the changes.

Both take the flat tables the optimiser writes (history.csv, changes.csv and the
stations files) and return a :class:`matplotlib.figure.Figure`, like
:mod:`sim.outputs.plots`. The map draws the schematic province boundaries of
:func:`sim.outputs.plots.schematic_province_boundaries` (built from the prefecture seats)
under the stations: a plain scatter of what changed, not a surveyed map.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from sim.outputs import plots

_LAT0 = 35.0
_KX = math.cos(math.radians(_LAT0))  # the equirectangular squeeze plots.network_map uses
ACCEPTED = "#2ca02c"
REJECTED = "#9a9a9a"
ADDED = "#2ca02c"
REMOVED = "#c0392b"


def _label(objective: str) -> tuple[str, float]:
    """Axis label and scale: rates in percent."""
    if plots.is_rate(objective):
        return f"{objective} (%)", 100.0
    return objective, 1.0


def objective_history(history: pd.DataFrame, *, title: str | None = None) -> Figure:
    """The objective of every design run in the search, and the incumbent's, by evaluation.

    Each point is a design's mean with its 95% interval over replications (filled when
    the design was accepted as the new incumbent); the step line is the incumbent after
    each evaluation. A KPI with a published target gets its dashed line. Each
    requirement (the ``KPI_required`` columns) gets a panel of its own, with its
    threshold.
    """
    objective = str(history["objective"].iloc[0])
    required = [
        str(c).removesuffix("_required") for c in history.columns if str(c).endswith("_required")
    ]
    fig = Figure(figsize=(8.5, 4.6 + 3.0 * len(required)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1 + len(required), 1, sharex=True))
    _panel(axes[0], history, objective, "objective")
    for ax, kpi in zip(axes[1:], required, strict=True):
        _panel(ax, history, kpi, kpi)
    axes[0].set_title(title or f"{objective} along the search")
    axes[-1].set_xlabel("evaluation (one design run on every replication of the search streams)")
    return fig


def _panel(ax: Any, history: pd.DataFrame, kpi: str, column: str) -> None:
    """One quantity along the search: the objective (``column`` "objective") or a requirement."""
    label, scale = _label(kpi)
    x = history["evaluation"].to_numpy()
    mean = history[f"{column}_mean"].to_numpy(float) * scale
    low = history[f"{column}_low"].to_numpy(float) * scale
    high = history[f"{column}_high"].to_numpy(float) * scale
    accepted = history["accepted"].astype(bool).to_numpy()
    has_interval = ~np.isnan(low) & (high > low)
    for mask, colour, name in ((accepted, ACCEPTED, "accepted"), (~accepted, REJECTED, "rejected")):
        show = mask & has_interval
        ax.errorbar(
            x[show],
            mean[show],
            yerr=np.vstack([mean[show] - low[show], high[show] - mean[show]]),
            fmt="none",
            ecolor=colour,
            elinewidth=1.0,
            capsize=2,
        )
        ax.scatter(
            x[mask],
            mean[mask],
            s=36,
            facecolors=colour if name == "accepted" else "white",
            edgecolors=colour,
            zorder=3,
            label=f"{name} ({int(mask.sum())})",
        )
    incumbent = np.empty(len(x))
    best = mean[0]
    for k in range(len(x)):
        if accepted[k]:
            best = mean[k]
        incumbent[k] = best
    ax.step(x, incumbent, where="post", color="#1f77b4", linewidth=1.6, label="incumbent")
    ax.axhline(mean[0], color="#555555", linestyle=":", linewidth=1.0, label="current network")
    if column == "objective":
        target = plots.published_targets().get(kpi)
        line = None if target is None else (target * scale, f"published target {target * scale:g}")
    else:
        threshold = float(history[f"{kpi}_required"].iloc[0]) * scale
        line = (threshold, f"required {threshold:g}")
    if line is not None:
        ax.axhline(line[0], color=plots.TARGET_COLOUR, linestyle="--", linewidth=1.2, label=line[1])
    for _, row in history.iterrows():
        if row["kind"] in ("current", "seed"):
            ax.annotate(
                str(row["kind"]),
                (row["evaluation"], row[f"{column}_mean"] * scale),
                textcoords="offset points",
                xytext=(4, 6),
                fontsize=8,
            )
    ax.set_ylabel(label)
    if len(x) <= 30:
        ax.set_xticks(x)
    ax.legend(loc="best", fontsize=8)


def _xy(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return np.column_stack((np.asarray(lon, float) * _KX, np.asarray(lat, float)))


def changes_map(before: pd.DataFrame, after: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Stations before and after: opened, closed, vans added or removed, on province lines.

    ``before`` and ``after``: stations tables (id, lat, lon, vans), e.g. the current and
    optimised stations.csv files. Markers are sized by the number of vans that changed.
    """
    merged = before[["id", "lat", "lon", "vans"]].merge(
        after[["id", "lat", "lon", "vans"]], on="id", how="outer", suffixes=("_before", "_after")
    )
    merged["lat"] = merged["lat_after"].fillna(merged["lat_before"])
    merged["lon"] = merged["lon_after"].fillna(merged["lon_before"])
    v0 = merged["vans_before"].fillna(0).to_numpy(int)
    v1 = merged["vans_after"].fillna(0).to_numpy(int)
    xy = _xy(merged["lon"].to_numpy(float), merged["lat"].to_numpy(float))
    segments, seats = plots.schematic_province_boundaries()
    fig = Figure(figsize=(10.5, 7.5), layout="constrained")
    ax = fig.subplots()
    lines = [_xy(s[:, 0], s[:, 1]) for s in segments]
    ax.add_collection(
        LineCollection(
            lines,
            colors="#bbbbbb",
            linewidths=0.6,
            zorder=0,
            label="province boundaries (schematic)",
        )
    )
    unchanged = (v0 == v1) & (v1 > 0)
    ax.scatter(
        xy[unchanged, 0],
        xy[unchanged, 1],
        s=4,
        color="#c8c8c8",
        zorder=1,
        label=f"unchanged stations ({int(unchanged.sum())})",
    )
    groups = (
        ((v0 > 0) & (v1 > v0), "^", ADDED, "vans added"),
        ((v1 > 0) & (v0 > v1), "v", REMOVED, "vans removed"),
        ((v0 == 0) & (v1 > 0), "*", ADDED, "station opened"),
        ((v0 > 0) & (v1 == 0), "X", REMOVED, "station closed"),
    )
    for mask, marker, colour, name in groups:
        if not mask.any():
            continue
        size = 14 + 22 * np.abs(v1[mask] - v0[mask])
        ax.scatter(
            xy[mask, 0],
            xy[mask, 1],
            s=size,
            marker=marker,
            color=colour,
            alpha=0.75,
            edgecolors="#333333",
            linewidths=0.3,
            zorder=3,
            label=f"{name} ({int(mask.sum())}, {int(np.abs(v1[mask] - v0[mask]).sum())} vans)",
        )
    pts = xy if len(xy) else _xy(seats[:, 0], seats[:, 1])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = np.maximum((hi - lo) * 0.05, 0.5)
    ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
    ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    ax.set_aspect("equal")
    ticks = [t for t in ax.get_xticks() if lo[0] - pad[0] <= t <= hi[0] + pad[0]]
    ax.set_xticks(ticks, [f"{t / _KX:.0f}E" for t in ticks])
    ax.set_ylabel("latitude (N)")
    ax.set_xlabel("longitude; marker size = vans changed")
    ax.legend(loc="lower right", fontsize=8, markerscale=0.8, framealpha=0.9)
    moved = int(np.clip(v1 - v0, 0, None).sum())
    ax.set_title(title or f"Changes to the network: {moved} vans to new places")
    return fig


__all__ = ["changes_map", "objective_history"]
