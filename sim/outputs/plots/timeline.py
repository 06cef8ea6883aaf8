"""The surge timeline: calls, hotline load and late arrivals over the run, surges shaded."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.analysis.kpis import arrival_outcomes
from sim.analysis.tables import replications_in, surge_windows
from sim.outputs.plots._style import SURGE_COLOUR, TARGET_COLOUR, Margins, fixed_figure

# Room for 6-digit tick labels on either side (an axis of its own on the right).
TIMELINE_MARGINS = Margins(0.75, 0.65, 0.5, 0.6, gap_y=0.42, nrows=3)


def surge_timeline(
    calls: pd.DataFrame,
    surges: Any = None,
    *,
    horizon_h: float | None = None,
    warmup_h: float = 0.0,
    bin_h: float = 1.0,
) -> Figure:
    """Calls, hotline load and late arrivals per hour over the run, surge windows shaded.

    ``surges``: a Scenario, its surges, or the resolved scenario dict of summary.json.
    Hotline queue proxy: the hours callers spent waiting, summed over the calls made in
    each hour (Little's law: the mean number of callers waiting). Late arrivals are
    counted by the hour of the call.
    """
    windows = surge_windows(surges)
    if horizon_h is None:
        horizon_h = math.ceil(float(calls["t_call_h"].max()) / 24.0) * 24.0 if len(calls) else 24.0
    reps = replications_in(calls)
    edges = np.arange(0.0, horizon_h + bin_h * 0.5, bin_h)
    x = (edges[:-1] + edges[1:]) / 2 / 24.0
    t = calls["t_call_h"].to_numpy(float)

    def per_bin(mask: np.ndarray | None = None, weights: np.ndarray | None = None) -> np.ndarray:
        sel = np.ones(len(t), bool) if mask is None else mask
        w = None if weights is None else weights[sel]
        return np.histogram(t[sel], bins=edges, weights=w)[0] / reps / bin_h

    surge_ids = calls["surge"].to_numpy() if "surge" in calls else np.full(len(t), -1)
    known, on_time = arrival_outcomes(calls, horizon_h)
    late = known & ~on_time
    wait = np.nan_to_num(calls["hotline_wait_total_h"].to_numpy(float))
    abandoned = ~np.isnan(calls["abandoned_h"].to_numpy(float))

    fig = fixed_figure(12, 8.5, TIMELINE_MARGINS)
    ax_calls, ax_hot, ax_late = fig.subplots(3, 1, sharex=True)
    ax_calls.plot(x, per_bin(), color="#08519c", linewidth=1.2, label="all calls")
    if (surge_ids >= 0).any():
        ax_calls.fill_between(
            x,
            0,
            per_bin(surge_ids >= 0),
            color=SURGE_COLOUR,
            alpha=0.5,
            label="extra calls from the surge",
        )
    ax_calls.set_ylabel(f"calls per {bin_h:g} h")
    ax_calls.set_title("Calls")

    ax_hot.plot(
        x,
        per_bin(weights=wait),
        color="#6a51a3",
        linewidth=1.2,
        label="callers waiting (Little's-law proxy)",
    )
    ax_hot.plot(
        x,
        per_bin(abandoned),
        color="#d94801",
        linewidth=1.0,
        linestyle="--",
        label=f"abandoned calls per {bin_h:g} h",
    )
    ax_hot.set_ylabel("callers")
    ax_hot.set_title("Hotline")

    ax_late.plot(
        x,
        per_bin(late),
        color=TARGET_COLOUR,
        linewidth=1.2,
        label=f"late arrivals per {bin_h:g} h (by call time)",
    )
    ax_late.set_ylabel(f"late per {bin_h:g} h")
    ax_rate = ax_late.twinx()
    day_edges = np.arange(0.0, horizon_h + 12.0, 24.0 / 4)
    counted = np.histogram(t[known], bins=day_edges)[0]
    good = np.histogram(t[on_time], bins=day_edges)[0]
    share = np.divide(good, counted, out=np.full(len(counted), np.nan), where=counted > 0) * 100
    ax_rate.step(
        day_edges[:-1] / 24.0,
        share,
        where="post",
        color="#238b45",
        linewidth=1.2,
        label="on-time arrival, 6-h windows (%)",
    )
    ax_rate.set_ylabel("on time (%)")
    ax_rate.set_ylim(0, 105)
    ax_late.set_title("Arrivals against the promise")
    ax_late.set_xlabel("day of the run")

    for ax in (ax_calls, ax_hot, ax_late):
        for name, start, end in windows:
            ax.axvspan(
                start / 24.0,
                end / 24.0,
                color=SURGE_COLOUR,
                alpha=0.15,
                label=f"surge window: {name}" if ax is ax_calls else None,
            )
        if warmup_h > 0:
            ax.axvspan(
                0,
                warmup_h / 24.0,
                color="grey",
                alpha=0.12,
                label="warm-up" if ax is ax_calls else None,
            )
        ax.grid(alpha=0.3)
        ax.set_xlim(0, horizon_h / 24.0)
    handles, labels = ax_late.get_legend_handles_labels()
    more = ax_rate.get_legend_handles_labels()
    ax_late.legend(
        handles + more[0], labels + more[1], loc="center right", fontsize=8, framealpha=0.9
    )
    ax_calls.legend(loc="upper left", fontsize=8)
    ax_hot.legend(loc="upper left", fontsize=8)
    fig.suptitle("Timeline" + (" with " + ", ".join(w[0] for w in windows) if windows else ""))
    return fig
