"""The hourly profile: calls by hour of the day against agents on duty, and the wait."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.analysis.kpis import agents_by_hour_of_day
from sim.analysis.tables import after_warmup, replications_in
from sim.outputs.plots._style import Margins, fixed_figure

# Room for 6-digit tick labels on either side (an axis of its own on the right).
HOURLY_MARGINS = Margins(0.75, 0.65, 0.5, 0.3, gap_y=0.42, nrows=2)


def _horizon_h(calls: pd.DataFrame, warmup_h: float, horizon_h: float | None) -> float:
    if horizon_h is None:
        last = float(calls["t_call_h"].max()) if len(calls) else warmup_h + 24.0
        horizon_h = math.ceil(last / 24.0) * 24.0
    return horizon_h


def _observed_days(calls: pd.DataFrame, warmup_h: float, horizon_h: float | None) -> float:
    return max((_horizon_h(calls, warmup_h, horizon_h) - warmup_h) / 24.0, 1e-9)


def hourly_profile(
    calls: pd.DataFrame,
    agents: pd.DataFrame | Sequence[int],
    *,
    warmup_h: float = 0.0,
    horizon_h: float | None = None,
) -> Figure:
    """Calls per hour of the day beside agents on duty, and the hotline wait by hour.

    ``agents``: the run's record of agents on duty (``RunResult.agents``: a surge's extra
    agents included), drawn as the mean over the window's days; or 24 numbers, e.g. the
    shift plan ``scenario.hotline.agents_by_hour``.
    """
    if isinstance(agents, pd.DataFrame):
        window_end_h = _horizon_h(calls, warmup_h, horizon_h)
        on_duty = agents_by_hour_of_day(agents, warmup_h, window_end_h)
        title = "Demand by hour of day against agents on duty"
    else:
        on_duty = np.asarray(agents, dtype=float)
        title = "Demand by hour of day against the shift plan"
    if on_duty.shape != (24,):
        raise ValueError("agents by hour needs 24 values")
    c = after_warmup(calls, warmup_h)
    days = _observed_days(calls, warmup_h, horizon_h) * replications_in(calls)
    hour = (np.floor(c["t_call_h"].to_numpy(float)) % 24).astype(int)
    per_hour = np.bincount(hour, minlength=24) / days
    fig = fixed_figure(11, 7, HOURLY_MARGINS)
    ax_calls, ax_wait = fig.subplots(2, 1, sharex=True)
    hours = np.arange(24)
    ax_calls.bar(
        hours, per_hour, color="#9ecae1", edgecolor="#3182bd", label="calls per hour (mean day)"
    )
    ax_calls.set_ylabel("calls per hour")
    ax_agents = ax_calls.twinx()
    ax_agents.step(
        np.append(hours, 24) - 0.5,
        np.append(on_duty, on_duty[-1]),
        where="post",
        color="#d62728",
        linewidth=2,
        label="agents on duty",
    )
    ax_agents.set_ylabel("agents on duty")
    ax_agents.set_ylim(0, max(np.nanmax(on_duty), 1) * 1.25)
    handles = ax_calls.get_legend_handles_labels()
    more = ax_agents.get_legend_handles_labels()
    ax_calls.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left", fontsize=8)
    ax_calls.set_title(title)

    wait_s = c["hotline_wait_h"].to_numpy(float) * 3600.0
    answered = ~np.isnan(c["answered_h"].to_numpy(float))
    mean_wait = np.full(24, np.nan)
    p90_wait = np.full(24, np.nan)
    abandoned = np.zeros(24)
    offered = np.zeros(24)
    gave_up = ~np.isnan(c["abandoned_h"].to_numpy(float))
    for h in range(24):
        mask = (hour == h) & answered
        if mask.any():
            mean_wait[h] = wait_s[mask].mean()
            p90_wait[h] = np.quantile(wait_s[mask], 0.9)
        abandoned[h] = ((hour == h) & gave_up).sum()
        offered[h] = ((hour == h) & (answered | gave_up)).sum()
    ax_wait.plot(hours, mean_wait, "o-", color="#1f77b4", label="mean wait (answered calls)")
    ax_wait.plot(hours, p90_wait, "s--", color="#6baed6", label="90th percentile wait")
    ax_wait.set_ylabel("seconds to answer")
    ax_ab = ax_wait.twinx()
    share = np.divide(abandoned, offered, out=np.full(24, np.nan), where=offered > 0) * 100
    ax_ab.bar(hours, share, width=0.3, color="#fdae6b", alpha=0.8, label="abandoned (%)")
    ax_ab.set_ylabel("abandoned, % of calls")
    ax_ab.set_ylim(0, max(np.nanmax(share) if np.isfinite(share).any() else 0, 1) * 1.3)
    h1, l1 = ax_wait.get_legend_handles_labels()
    h2, l2 = ax_ab.get_legend_handles_labels()
    ax_wait.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
    ax_wait.set_title("Hotline wait by hour of call")
    ax_wait.set_xlabel("hour of day")
    ax_wait.set_xticks(hours)
    ax_wait.set_xlim(-0.6, 23.6)
    for ax in (ax_calls, ax_wait):
        ax.grid(axis="y", alpha=0.3)
    return fig
