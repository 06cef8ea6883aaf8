"""The KPI dashboard: every KPI with its interval, the headline rates against the target."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.analysis.kpi_catalogue import HEADLINE_KPIS, published_targets
from sim.analysis.tables import kpi_frame
from sim.outputs.plots._style import TARGET_COLOUR, Margins, errorbar_x, fixed_figure

# The dashboard's panels besides the headline rates.
SERVICE_KPIS = (
    "contact_on_time_rate",
    "service_level",
    "fixed_on_site_rate",
    "remote_fix_rate",
    "abandonment_rate",
    "tow_rate",
)
RESPONSE_KPIS = ("response_p50_h", "response_p90_h", "response_p95_h")
LOAD_KPIS = ("van_utilisation", "agent_utilisation")

# The panels' tick labels are the KPIs' names: the room they take is known.
DASHBOARD_MARGINS = Margins(1.75, 0.15, 0.5, 0.55, gap_x=1.7, gap_y=0.75, ncols=2, nrows=2)


def kpi_dashboard(
    summary: pd.DataFrame | Mapping[str, Any],
    *,
    targets: Mapping[str, float] | None = None,
    title: str | None = None,
) -> Figure:
    """The KPIs with their 95% intervals, the three headline rates against the published target.

    ``summary``: ``RunResult.summary`` or summary.json (see :func:`kpi_frame`).
    ``targets``: KPI -> target share; default the published 93% rates.
    """
    table = kpi_frame(summary)
    targets = dict(published_targets() if targets is None else targets)
    fig = fixed_figure(12, 7.5, DASHBOARD_MARGINS)
    axes = fig.subplots(2, 2)
    panels = (
        (axes[0, 0], HEADLINE_KPIS, "Headline rates vs published target", 100.0),
        (axes[0, 1], SERVICE_KPIS, "Hotline and service rates", 100.0),
        (axes[1, 0], RESPONSE_KPIS, "Response time, call to arrival", 1.0),
        (axes[1, 1], LOAD_KPIS, "Utilisation", 100.0),
    )
    for ax, names, panel_title, scale in panels:
        present = [k for k in names if k in table.index]
        rows = table.loc[present]
        y = np.arange(len(present))[::-1]
        clip = (0.0, 100.0) if scale == 100.0 else None
        xerr = errorbar_x(rows, scale, clip)
        ax.errorbar(
            rows["mean"].to_numpy(float) * scale,
            y,
            xerr=xerr,
            fmt="o",
            color="#1f77b4",
            ecolor="#1f77b4",
            capsize=4,
            label="mean, 95% interval",
        )
        for yi, (kpi, row) in zip(y, rows.iterrows(), strict=True):
            value = row["mean"] * scale
            text = (
                "n/a"
                if not np.isfinite(value)
                else (f"{value:.1f}%" if scale == 100.0 else f"{value:.2f} h")
            )
            ax.annotate(
                text,
                (value if np.isfinite(value) else 0, yi),
                xytext=(0, 7),
                textcoords="offset points",
                ha="center",
                fontsize=8,
            )
            target = targets.get(str(kpi))
            if target is not None:
                ax.vlines(
                    target * scale,
                    yi - 0.35,
                    yi + 0.35,
                    colors=TARGET_COLOUR,
                    linestyles="--",
                    linewidth=2,
                    label=f"published target {target * scale:.0f}%" if yi == y[0] else None,
                    gid="target",
                )
        ax.set_yticks(y, [k.replace("_", " ") for k in present])
        ax.set_ylim(-0.7, len(present) - 0.3)
        ax.set_title(panel_title)
        ax.set_xlabel("percent" if scale == 100.0 else "hours")
        ax.grid(axis="x", alpha=0.3)
        if scale == 100.0:
            lows = [rows["low"].min() * scale, rows["mean"].min() * scale]
            lows += [targets[k] * scale for k in present if k in targets]
            finite = [v for v in lows if np.isfinite(v)]
            left = max(0.0, min(finite) - 5.0) if finite else 0.0
            ax.set_xlim(left if names == HEADLINE_KPIS else 0.0, 101.0)
        if any(k in targets for k in present):
            ax.legend(loc="lower left", fontsize=8)
    volume = []
    means = table["mean"]
    for kpi, fmt in (
        ("calls_per_day", "{:,.0f} calls/day"),
        ("complaints_per_1000_calls", "{:.1f} complaints per 1000 calls"),
    ):
        value = float(means[kpi]) if kpi in means.index else math.nan
        if np.isfinite(value):
            volume.append(fmt.format(value))
    n = table["n"].max() if "n" in table and len(table) else math.nan
    reps = f"{int(n)} replication(s)" if np.isfinite(n) else ""
    fig.suptitle(" | ".join(p for p in (title or "KPI dashboard", reps, *volume) if p))
    return fig
