"""Figures of a network design: the objective along the search, and a map of the changes.

Both take the flat tables the optimiser writes (history.csv, changes.csv and the
stations files) and return a :class:`matplotlib.figure.Figure`, like
:mod:`sim.outputs.plots`. The map of changes is the outlines map of two networks
(:func:`sim.outputs.plots.network_difference_map`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.analysis.kpi_catalogue import is_share, published_targets
from sim.outputs import plots
from sim.outputs.plots._style import TARGET_COLOUR

ACCEPTED = "#2ca02c"
REJECTED = "#9a9a9a"


def _label(objective: str) -> tuple[str, float]:
    """Axis label and scale: rates in percent."""
    if is_share(objective):
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
        target = published_targets().get(kpi)
        line = None if target is None else (target * scale, f"published target {target * scale:g}")
    else:
        threshold = float(history[f"{kpi}_required"].iloc[0]) * scale
        line = (threshold, f"required {threshold:g}")
    if line is not None:
        ax.axhline(line[0], color=TARGET_COLOUR, linestyle="--", linewidth=1.2, label=line[1])
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


def changes_map(before: pd.DataFrame, after: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Stations before and after (opened, closed, vans added or removed) on the province
    outlines: :func:`sim.outputs.plots.network_difference_map` of the two station tables
    (id, lat, lon, vans), e.g. the current and optimised stations.csv files."""
    return plots.network_difference_map(
        before,
        after,
        labels=("current", "optimised"),
        title=title or "Network design: what changes",
    )
