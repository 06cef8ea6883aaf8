"""One panel per KPI: policies compared, and KPIs against a swept parameter."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.analysis.kpi_catalogue import HEADLINE_KPIS, published_targets
from sim.outputs.plots._style import (
    PALETTE,
    axis_label,
    errorbar_x,
    kpi_scale,
    new_figure,
    target_line,
)

DEFAULT_COMPARISON_KPIS = (
    *HEADLINE_KPIS,
    "response_p90_h",
    "abandonment_rate",
    "van_utilisation",
)


def _kpis_to_plot(kpis: Sequence[str] | None, table: pd.DataFrame) -> list[str]:
    """The KPIs asked for, or those of the default set that ``table`` (a kpi column) has."""
    names = (
        list(kpis)
        if kpis is not None
        else [k for k in DEFAULT_COMPARISON_KPIS if k in set(table["kpi"])]
    )
    if not names:
        raise ValueError("no KPI to plot")
    return names


def _kpi_panels(count: int, ncols: int, title_h: float, row_h: float) -> tuple[Figure, np.ndarray]:
    """A figure with one panel per KPI, ``ncols`` to a row; the panels as a flat array."""
    ncols = max(1, min(ncols, count))
    nrows = math.ceil(count / ncols)
    fig = new_figure(4.6 * ncols, title_h + row_h * nrows)
    return fig, np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()


def policy_comparison(
    table: pd.DataFrame,
    kpis: Sequence[str] | None = None,
    *,
    targets: Mapping[str, float] | None = None,
    ncols: int = 3,
) -> Figure:
    """Each KPI by policy with its 95% interval; the paired difference to the reference.

    ``table``: ``Comparison.table()`` (or comparison.csv read back). The first policy is
    the reference; each other policy is labelled with its paired difference and verdict.
    """
    targets = dict(published_targets() if targets is None else targets)
    names = _kpis_to_plot(kpis, table)
    policies = list(pd.unique(table["policy"]))
    fig, axes = _kpi_panels(len(names), ncols, 0.9, 0.75 + 0.45 * len(policies))
    for ax, kpi in zip(axes, names, strict=False):
        rows = table[table["kpi"] == kpi].set_index("policy").reindex(policies)
        scale = kpi_scale(kpi)
        y = np.arange(len(policies))[::-1]
        xerr = errorbar_x(rows, scale, (0.0, 100.0) if scale == 100.0 else None)
        colours = [PALETTE[k % len(PALETTE)] for k in range(len(policies))]
        for yi, (policy, row), err, colour in zip(y, rows.iterrows(), xerr.T, colours, strict=True):
            ax.errorbar(
                [row["mean"] * scale],
                [yi],
                xerr=err.reshape(2, 1),
                fmt="o",
                color=colour,
                capsize=4,
            )
            if policy != policies[0] and np.isfinite(row.get("diff", np.nan)):
                unit = " pp" if scale == 100.0 else ""
                verdict = row.get("verdict") or ("n.s." if not row.get("significant") else "")
                text = f"{row['diff'] * scale:+.2f}{unit} {verdict}".strip()
                ax.annotate(
                    text,
                    (row["mean"] * scale, yi),
                    xytext=(0, 8),
                    textcoords="offset points",
                    ha="center",
                    fontsize=7,
                    color="#444444",
                )
        if kpi in targets:
            target_line(ax.axvline, targets[kpi] * scale)
            ax.legend(loc="lower left", fontsize=7)
        ax.set_yticks(y, [str(p) for p in policies], fontsize=8)
        ax.set_ylim(-0.6, len(policies) - 0.3)
        ax.set_title(kpi.replace("_", " "), fontsize=10)
        ax.set_xlabel(axis_label(kpi), fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    fig.suptitle(f"Policies compared on common random numbers (reference: {policies[0]})")
    return fig


# --------------------------------------------------------------------------- sweep


def sweep_parameters(summary: pd.DataFrame) -> list[str]:
    """The swept paths of a sweep summary: its columns between ``point`` and ``kpi``."""
    columns = list(summary.columns)
    if "point" not in columns or "kpi" not in columns:
        raise ValueError("not a sweep summary: it needs 'point' and 'kpi' columns")
    return columns[columns.index("point") + 1 : columns.index("kpi")]


def sweep_plot(
    summary: pd.DataFrame,
    x: str | None = None,
    kpis: Sequence[str] | None = None,
    *,
    targets: Mapping[str, float] | None = None,
    ncols: int = 3,
) -> Figure:
    """Each KPI against a swept parameter, with its 95% interval at every point.

    ``summary``: ``SweepResult.summary`` (or sweep_summary.csv read back). ``x``: the
    swept path on the horizontal axis (default: the first); with more than one swept
    path, each combination of the others is a line of its own. Numbers are placed by
    value, anything else (policy names) one after the other.
    """
    targets = dict(published_targets() if targets is None else targets)
    parameters = sweep_parameters(summary)
    x = parameters[0] if x is None else x
    if x not in parameters:
        raise ValueError(f"{x!r} is not swept; swept: {', '.join(parameters)}")
    names = _kpis_to_plot(kpis, summary)
    others = [p for p in parameters if p != x]
    values = list(pd.unique(summary[x]))
    column = summary[x]
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    position = {v: (float(v) if numeric else float(k)) for k, v in enumerate(values)}
    lines = [((), summary)] if not others else list(summary.groupby(others, sort=False))
    fig, axes = _kpi_panels(len(names), ncols, 0.6, 3.4)
    for ax, kpi in zip(axes, names, strict=False):
        scale = kpi_scale(kpi)
        for k, (key, group) in enumerate(lines):
            rows = group[group["kpi"] == kpi]
            rows = rows.assign(_x=rows[x].map(position)).sort_values("_x")
            err = errorbar_x(rows, scale, (0.0, 100.0) if scale == 100.0 else None)
            keys = key if isinstance(key, tuple) else (key,)
            label = ", ".join(f"{p}={v}" for p, v in zip(others, keys, strict=True)) or None
            ax.errorbar(
                rows["_x"].to_numpy(float),
                rows["mean"].to_numpy(float) * scale,
                yerr=err,
                fmt="o-" if numeric else "o",  # no line between policies, say
                capsize=4,
                color=PALETTE[k % len(PALETTE)],
                label=label,
            )
        if kpi in targets:
            target_line(ax.axhline, targets[kpi] * scale)
        if not numeric:
            ax.set_xticks([position[v] for v in values], [str(v) for v in values], fontsize=8)
        if others or kpi in targets:
            ax.legend(fontsize=7)
        ax.set_title(kpi.replace("_", " "), fontsize=10)
        ax.set_xlabel(x, fontsize=8)
        ax.set_ylabel(axis_label(kpi), fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    fig.suptitle(f"KPIs against {x}: mean and 95% interval over replications")
    return fig
