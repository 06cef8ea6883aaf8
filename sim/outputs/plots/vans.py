"""Van utilisation: the busiest stations, and the share of vans busy hour by hour."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.analysis.kpis import van_busy_hours, van_off_duty_hours
from sim.analysis.tables import busy_share_by_hour, van_station_from_calls
from sim.model.records import VAN_STATES
from sim.outputs.plots._style import TARGET_COLOUR, Margins, fixed_figure, text_width_in


def van_utilisation(
    calls: pd.DataFrame,
    units: pd.DataFrame,
    *,
    van_station: np.ndarray | Sequence[int] | None = None,
    station_labels: Sequence[str] | None = None,
    warmup_h: float = 0.0,
    horizon_h: float | None = None,
    top_n: int = 15,
) -> Figure:
    """Busiest stations by van utilisation, and the share of vans busy hour by hour.

    ``van_station``: home station of each van (``network.van_station``); without it the
    station is read from the calls each van served, and vans that served none are left
    out. ``station_labels``: a label per station index, shown after ``#N``.
    """
    if not isinstance(units["state"].dtype, pd.CategoricalDtype):
        units = units.assign(state=pd.Categorical(units["state"].astype(str), VAN_STATES))
    if horizon_h is None:
        horizon_h = float(max(units["t_h"].max() if len(units) else 0.0, calls["t_call_h"].max()))
        horizon_h = math.ceil(horizon_h / 24.0) * 24.0
    reps = sorted(units["replication"].unique()) if "replication" in units else [None]
    busy_per_van: list[np.ndarray] = []
    off_per_van: list[np.ndarray] = []  # hours off duty (a rostered van): not in the share
    hourly: list[np.ndarray] = []
    for r in reps:
        u = units if r is None else units[units["replication"].to_numpy() == r]
        busy_per_van.append(van_busy_hours(u, warmup_h, horizon_h))
        off_per_van.append(van_off_duty_hours(u, warmup_h, horizon_h))
        hourly.append(busy_share_by_hour(u, horizon_h))
    n_vans = max(len(b) for b in busy_per_van)
    busy = np.mean([np.pad(b, (0, n_vans - len(b))) for b in busy_per_van], axis=0)
    off = np.mean([np.pad(b, (0, n_vans - len(b))) for b in off_per_van], axis=0)
    if van_station is not None:
        home = np.asarray(van_station, dtype=np.int64)[:n_vans]
    else:
        mapping = van_station_from_calls(calls)
        home = np.array([mapping.get(v, -1) for v in range(n_vans)], dtype=np.int64)
    known = home >= 0
    n_stations = int(home[known].max()) + 1 if known.any() else 0
    station_busy = np.bincount(home[known], weights=busy[known], minlength=n_stations)
    station_vans = np.bincount(home[known], minlength=n_stations)
    station_off = np.bincount(home[known], weights=off[known], minlength=n_stations)
    window = max(horizon_h - warmup_h, 1e-9)
    on_duty = station_vans * window - station_off
    share = np.divide(station_busy, on_duty, out=np.zeros(n_stations), where=on_duty > 0)

    order = np.argsort(-share, kind="stable")[: max(0, top_n)]
    labels = [
        f"#{s} "
        + (station_labels[s] if station_labels is not None else "")
        + f" ({station_vans[s]} vans)"
        for s in order
    ]
    # The stations' names take the room they need on the left (ticks and a pad besides).
    left_in = text_width_in(labels, 8) + 0.25
    fig = fixed_figure(13, 5.5, Margins(left_in, 0.3, 0.5, 0.6, gap_x=0.7, ncols=2))
    ax_top, ax_time = fig.subplots(1, 2, width_ratios=(1, 1.4))
    y = np.arange(len(order))[::-1]
    ax_top.barh(y, share[order] * 100, color="#3182bd")
    ax_top.set_yticks(y, labels, fontsize=8)
    overall = float(busy.sum() / (n_vans * window - off.sum())) * 100 if n_vans else math.nan
    ax_top.axvline(overall, color=TARGET_COLOUR, linestyle="--", label=f"all vans: {overall:.1f}%")
    ax_top.set_xlabel("share of van time on duty not idle (%)")
    ax_top.set_title(f"Top {len(order)} busiest stations")
    ax_top.legend(loc="lower right", fontsize=8)
    ax_top.grid(axis="x", alpha=0.3)

    length = max(len(h) for h in hourly)
    curves = np.array([np.pad(h, (0, length - len(h)), constant_values=np.nan) for h in hourly])
    x = (np.arange(length) + 0.5) / 24.0
    mean_curve = np.nanmean(curves, axis=0) * 100
    ax_time.plot(x, mean_curve, color="#08519c", linewidth=1.2, label="mean over replications")
    if len(curves) > 1:
        ax_time.fill_between(
            x,
            np.nanmin(curves, axis=0) * 100,
            np.nanmax(curves, axis=0) * 100,
            color="#9ecae1",
            alpha=0.5,
            label="range over replications",
        )
    if warmup_h > 0:
        ax_time.axvspan(0, warmup_h / 24.0, color="grey", alpha=0.15, label="warm-up")
    ax_time.set_xlim(0, horizon_h / 24.0)
    ax_time.set_ylim(
        0, max(5.0, float(np.nanmax(mean_curve)) * 1.2 if np.isfinite(mean_curve).any() else 5.0)
    )
    ax_time.set_xlabel("day of the run")
    ax_time.set_ylabel("vans busy (%)")
    ax_time.set_title("Share of vans busy, hour by hour")
    ax_time.legend(loc="upper right", fontsize=8)
    ax_time.grid(alpha=0.3)
    fig.suptitle(f"Van utilisation ({n_vans} vans, {n_stations} stations)")
    return fig
