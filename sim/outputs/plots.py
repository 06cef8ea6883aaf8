"""Figures planners look at, drawn from the results of a run (never from a new simulation).

Every function takes result tables -- ``RunResult.calls`` / ``.units`` / ``.summary``, the
``(calls, units, summary)`` that :func:`sim.outputs.run_folder.read_run` returns, or
``Comparison.table()`` -- and returns a :class:`matplotlib.figure.Figure`. Figures are
built with the object-oriented API (``Figure()`` and ``fig.subplots()``), never pyplot's
global state, so they work headless (Agg) and in worker processes; save one with
``fig.savefig(path)`` or show it in a notebook by leaving it as a cell's value.

Labels are plain ASCII (adcodes and pinyin province names), so the figures render with
the fonts every machine has; Chinese names are left to the HTML report. docs/plots.md
describes each figure and how to read it.

The China map is *schematic*: built from the shipped prefecture seats
(seeds/prefectures.csv), each prefecture drawn as its Voronoi cell cut to a disc, and
the province boundaries as the cell edges between seats of different provinces. No
package of province polygons with a clean redistribution licence was found (see
docs/plots.md); pass ``outlines=`` a GeoJSON of province polygons that you are licensed
to use and the map draws those instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection, PatchCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Polygon, Rectangle

from sim.analysis.kpis import KPI_DEFINITIONS, agents_by_hour_of_day, van_busy_hours
from sim.model.reference import areas, data_dir
from sim.model.scenario import Surge

HEADLINE_KPIS = ("on_time_arrival_rate", "on_time_repair_rate", "complaint_closure_rate")
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
DEFAULT_COMPARISON_KPIS = (
    *HEADLINE_KPIS,
    "response_p90_h",
    "abandonment_rate",
    "van_utilisation",
)

# Province names in pinyin by the first two digits of the adcode (GB/T 2260).
PROVINCE_PINYIN: dict[str, str] = {
    "11": "Beijing", "12": "Tianjin", "13": "Hebei", "14": "Shanxi", "15": "Inner Mongolia",
    "21": "Liaoning", "22": "Jilin", "23": "Heilongjiang", "31": "Shanghai", "32": "Jiangsu",
    "33": "Zhejiang", "34": "Anhui", "35": "Fujian", "36": "Jiangxi", "37": "Shandong",
    "41": "Henan", "42": "Hubei", "43": "Hunan", "44": "Guangdong", "45": "Guangxi",
    "46": "Hainan", "50": "Chongqing", "51": "Sichuan", "52": "Guizhou", "53": "Yunnan",
    "54": "Tibet", "61": "Shaanxi", "62": "Gansu", "63": "Qinghai", "64": "Ningxia",
    "65": "Xinjiang", "71": "Taiwan", "81": "Hong Kong", "82": "Macao",
}  # fmt: skip

TARGET_COLOUR = "#c0392b"
SURGE_COLOUR = "#e67e22"
PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


# --------------------------------------------------------------------------- inputs


def province_label(adcode: str | int) -> str:
    """``410100 Henan``: an adcode with its province in pinyin (renders in any font)."""
    code = str(adcode)
    return f"{code} {PROVINCE_PINYIN.get(code[:2], '')}".strip()


def is_rate(kpi: str) -> bool:
    """KPIs that are shares, shown in percent."""
    return kpi.endswith(("_rate", "_utilisation")) or kpi == "service_level"


def kpi_frame(summary: pd.DataFrame | Mapping[str, Any]) -> pd.DataFrame:
    """KPIs as a frame indexed by name with columns mean, low, high, n.

    Accepts ``RunResult.summary`` (index kpi; mean, low, high, n), a long frame with a
    ``kpi`` column, the dict of summary.json, or its ``"kpis"`` mapping.
    """
    if isinstance(summary, pd.DataFrame):
        frame = summary.set_index("kpi") if "kpi" in summary.columns else summary
        frame = frame.rename(columns={"ci95_low": "low", "ci95_high": "high", "replications": "n"})
        out = frame.reindex(columns=["mean", "low", "high", "n"])
        return out.astype(float)
    kpis = summary.get("kpis", summary)
    rows = {
        name: {
            "mean": _num(v.get("mean")),
            "low": _num(v.get("ci95_low", v.get("low"))),
            "high": _num(v.get("ci95_high", v.get("high"))),
            "n": _num(v.get("replications", v.get("n"))),
        }
        for name, v in kpis.items()
        if isinstance(v, Mapping)
    }
    return pd.DataFrame.from_dict(rows, orient="index", columns=["mean", "low", "high", "n"])


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def published_targets() -> dict[str, float]:
    """The published 93% rates of the Dongfeng network (seeds/published_figures.yaml)."""
    return dict(_published_targets())


@cache
def _published_targets() -> tuple[tuple[str, float], ...]:
    from ruamel.yaml import YAML

    text = (data_dir("seeds") / "published_figures.yaml").read_text(encoding="utf-8")
    figures = YAML(typ="safe").load(text)["dongfeng_light_truck"]
    return tuple((kpi, float(figures[kpi])) for kpi in HEADLINE_KPIS if kpi in figures)


def _surges(surges: Any) -> list[Surge]:
    """Surge objects from a Scenario, its ``surges``, a resolved scenario dict or dicts."""
    if surges is None:
        return []
    if hasattr(surges, "surges"):
        surges = surges.surges
    elif isinstance(surges, Mapping):
        surges = surges.get("surges", ())
    return [s if isinstance(s, Surge) else Surge.model_validate(s) for s in surges]


def surge_windows(surges: Any) -> list[tuple[str, float, float]]:
    """(name, start_h, end_h) of each surge (any input :func:`_surges` accepts)."""
    return [(s.name, s.start_h, s.end_h) for s in _surges(surges)]


def _surge_regions(surges: Any) -> list[tuple[str, float, float, float]]:
    """(name, centre lat, centre lon, radius km) of each surge, from the same inputs."""
    return [
        (s.name, s.region.center_lat, s.region.center_lon, s.region.radius_km)
        for s in _surges(surges)
    ]


def _after_warmup(calls: pd.DataFrame, warmup_h: float) -> pd.DataFrame:
    return calls[calls["t_call_h"].to_numpy() >= warmup_h]


def _replications(frame: pd.DataFrame) -> int:
    if "replication" not in frame.columns or len(frame) == 0:
        return 1
    return max(1, int(frame["replication"].nunique()))


def arrival_outcomes(
    calls: pd.DataFrame, horizon_h: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(known, on_time) masks of the on-time arrival KPI, censored as in sim.analysis.kpis.

    A dispatched call counts once its van has arrived or its promise expired before the
    horizon. Without ``horizon_h`` the latest call time stands in for the horizon.
    """
    t_call = calls["t_call_h"].to_numpy(float)
    arrived = calls["arrived_h"].to_numpy(float)
    dispatched = ~np.isnan(calls["dispatched_h"].to_numpy(float))
    deadline = t_call + calls["arrival_promise_h"].to_numpy(float)
    end = float(np.nanmax(t_call)) if horizon_h is None and len(t_call) else (horizon_h or 0.0)
    has_arrived = ~np.isnan(arrived)
    known = dispatched & (has_arrived | (deadline <= end))
    on_time = has_arrived & (arrived <= deadline)
    return known, on_time & known


def _new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _errorbar_x(values: pd.DataFrame, scale: float, clip: tuple[float, float] | None) -> np.ndarray:
    """Asymmetric x errors from mean/low/high; zero where there is no interval."""
    mean = values["mean"].to_numpy(float) * scale
    low = values["low"].to_numpy(float) * scale
    high = values["high"].to_numpy(float) * scale
    if clip is not None:
        low, high = np.clip(low, *clip), np.clip(high, *clip)
    err = np.vstack((mean - low, high - mean))
    return np.where(np.isfinite(err), np.maximum(err, 0.0), 0.0)


# --------------------------------------------------------------------------- KPI dashboard


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
    fig = _new_figure(12, 7.5)
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
        xerr = _errorbar_x(rows, scale, clip)
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
    for kpi, fmt in (
        ("calls_per_day", "{:,.0f} calls/day"),
        ("complaints_per_1000_calls", "{:.1f} complaints per 1000 calls"),
    ):
        if kpi in table.index and np.isfinite(table.loc[kpi, "mean"]):
            volume.append(fmt.format(table.loc[kpi, "mean"]))
    n = table["n"].max() if "n" in table and len(table) else math.nan
    reps = f"{int(n)} replication(s)" if np.isfinite(n) else ""
    fig.suptitle(" | ".join(p for p in (title or "KPI dashboard", reps, *volume) if p))
    return fig


# --------------------------------------------------------------------------- response times


def _ecdf(ax: Any, values: np.ndarray, **kwargs: Any) -> Any:
    x = np.sort(values)
    y = np.arange(1, len(x) + 1) / len(x)
    (line,) = ax.step(x, y, where="post", **kwargs)
    return line


def response_time_cdf(calls: pd.DataFrame, *, warmup_h: float = 0.0) -> Figure:
    """Empirical CDF of hours from call to arrival, by arrival-promise band and by segment.

    Each promise band (``arrival_promise_h``) has its own curve and a dashed line at its
    promise; the share left of the line is that band's on-time arrival.
    """
    c = _after_warmup(calls, warmup_h)
    c = c[~np.isnan(c["arrived_h"].to_numpy(float))]
    response = (c["arrived_h"] - c["t_call_h"]).to_numpy(float)
    promise = c["arrival_promise_h"].to_numpy(float)
    fig = _new_figure(12, 4.8)
    ax_band, ax_seg = fig.subplots(1, 2, sharey=True)
    bands = np.unique(promise[np.isfinite(promise)])
    for k, hours in enumerate(bands):
        colour = PALETTE[k % len(PALETTE)]
        values = response[promise == hours]
        share = float(np.mean(values <= hours))
        _ecdf(
            ax_band,
            values,
            color=colour,
            label=f"{hours:g} h promise: n={len(values)}, {share:.1%} on time",
        )
        ax_band.axvline(hours, color=colour, linestyle="--", linewidth=1.2)
    ax_band.set_title("By distance band (promise dashed)")
    segments = [str(s) for s in pd.unique(c["segment"].astype(str))] if len(c) else []
    for k, name in enumerate(sorted(segments)):
        mask = (c["segment"].astype(str) == name).to_numpy()
        values = response[mask]
        on_time = float(np.mean(values <= promise[mask]))
        _ecdf(
            ax_seg,
            values,
            color=PALETTE[k % len(PALETTE)],
            label=f"{name}: n={len(values)}, {on_time:.1%} within promise",
        )
    for hours in bands:
        ax_seg.axvline(hours, color="grey", linestyle=":", linewidth=1)
    ax_seg.set_title("By customer segment (promises dotted)")
    upper = max(
        float(np.quantile(response, 0.995)) if len(response) else 1.0,
        float(bands.max()) if len(bands) else 1.0,
    )
    for ax in (ax_band, ax_seg):
        ax.set_xlim(0, upper * 1.05)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("hours from call to arrival on site")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right", fontsize=8)
    ax_band.set_ylabel("share of arrived calls")
    fig.suptitle(f"Response-time distribution ({len(response):,} arrivals)")
    return fig


# --------------------------------------------------------------------------- hourly profile


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
    c = _after_warmup(calls, warmup_h)
    days = _observed_days(calls, warmup_h, horizon_h) * _replications(calls)
    hour = (np.floor(c["t_call_h"].to_numpy(float)) % 24).astype(int)
    per_hour = np.bincount(hour, minlength=24) / days
    fig = _new_figure(11, 7)
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


# --------------------------------------------------------------------------- vans


def van_station_from_calls(calls: pd.DataFrame) -> dict[int, int]:
    """Each van's most frequent owning station among the calls it served (when no network)."""
    served = calls[(calls["van"].to_numpy() >= 0) & (calls["station"].to_numpy() >= 0)]
    if served.empty:
        return {}
    counts = served.groupby(["van", "station"]).size().reset_index(name="n")
    counts = counts.sort_values(["van", "n", "station"], ascending=[True, False, True])
    first = counts.drop_duplicates("van")
    return dict(zip(first["van"].astype(int), first["station"].astype(int), strict=True))


def busy_share_by_hour(units: pd.DataFrame, horizon_h: float, bin_h: float = 1.0) -> np.ndarray:
    """Share of vans not idle in each ``bin_h``-hour bin from 0 to the horizon (one replication)."""
    if units.empty:
        return np.zeros(0)
    t = units["t_h"].to_numpy(float)
    van = units["van"].to_numpy(np.int64)
    state = units["state"].astype(str).to_numpy()
    order = np.lexsort((np.arange(len(t)), t, van))
    t, van, state = t[order], van[order], state[order]
    end = np.append(t[1:], horizon_h)
    end[np.append(van[1:] != van[:-1], True)] = horizon_h
    busy = state != "idle"
    start, stop = np.clip(t[busy], 0, horizon_h), np.clip(end[busy], 0, horizon_h)
    edges = np.arange(0.0, horizon_h + bin_h * 0.5, bin_h)
    if edges[-1] < horizon_h:
        edges = np.append(edges, horizon_h)
    # Busy time up to x: sum over spells of clip(x - start, 0, stop - start).
    s_sorted, e_sorted = np.sort(start), np.sort(stop)
    cs, ce = (
        np.concatenate(([0.0], np.cumsum(s_sorted))),
        np.concatenate(([0.0], np.cumsum(e_sorted))),
    )
    ns, ne = np.searchsorted(s_sorted, edges), np.searchsorted(e_sorted, edges)
    cumulative = (edges * ns - cs[ns]) - (edges * ne - ce[ne])
    n_vans = int(van.max()) + 1
    share: np.ndarray = np.diff(cumulative) / (n_vans * np.diff(edges))
    return share


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
        from sim.model.dispatch.base import VAN_STATES

        units = units.assign(state=pd.Categorical(units["state"].astype(str), VAN_STATES))
    if horizon_h is None:
        horizon_h = float(max(units["t_h"].max() if len(units) else 0.0, calls["t_call_h"].max()))
        horizon_h = math.ceil(horizon_h / 24.0) * 24.0
    reps = sorted(units["replication"].unique()) if "replication" in units else [None]
    busy_per_van: list[np.ndarray] = []
    hourly: list[np.ndarray] = []
    for r in reps:
        u = units if r is None else units[units["replication"].to_numpy() == r]
        busy_per_van.append(van_busy_hours(u, warmup_h, horizon_h))
        hourly.append(busy_share_by_hour(u, horizon_h))
    n_vans = max(len(b) for b in busy_per_van)
    busy = np.mean([np.pad(b, (0, n_vans - len(b))) for b in busy_per_van], axis=0)
    if van_station is not None:
        home = np.asarray(van_station, dtype=np.int64)[:n_vans]
    else:
        mapping = van_station_from_calls(calls)
        home = np.array([mapping.get(v, -1) for v in range(n_vans)], dtype=np.int64)
    known = home >= 0
    n_stations = int(home[known].max()) + 1 if known.any() else 0
    station_busy = np.bincount(home[known], weights=busy[known], minlength=n_stations)
    station_vans = np.bincount(home[known], minlength=n_stations)
    window = max(horizon_h - warmup_h, 1e-9)
    share = np.divide(
        station_busy, station_vans * window, out=np.zeros(n_stations), where=station_vans > 0
    )

    fig = _new_figure(13, 5.5)
    ax_top, ax_time = fig.subplots(1, 2, width_ratios=(1, 1.4))
    order = np.argsort(-share, kind="stable")[: max(0, top_n)]
    labels = [
        f"#{s} "
        + (station_labels[s] if station_labels is not None else "")
        + f" ({station_vans[s]} vans)"
        for s in order
    ]
    y = np.arange(len(order))[::-1]
    ax_top.barh(y, share[order] * 100, color="#3182bd")
    ax_top.set_yticks(y, labels, fontsize=8)
    overall = float(busy.sum() / (n_vans * window)) * 100 if n_vans else math.nan
    ax_top.axvline(overall, color=TARGET_COLOUR, linestyle="--", label=f"all vans: {overall:.1f}%")
    ax_top.set_xlabel("share of van time not idle (%)")
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


# --------------------------------------------------------------------------- map


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


def prefecture_on_time(
    calls: pd.DataFrame, *, warmup_h: float = 0.0, horizon_h: float | None = None
) -> pd.DataFrame:
    """On-time arrival by prefecture: adcode, lat, lon, calls (counted), on_time_rate."""
    c = _after_warmup(calls, warmup_h)
    known, on_time = arrival_outcomes(c, horizon_h)
    frame = pd.DataFrame(
        {"adcode": c["adcode"].astype(str).to_numpy(), "known": known, "on_time": on_time}
    )
    frame = frame[frame["known"]]
    grouped = frame.groupby("adcode").agg(calls=("on_time", "size"), on_time=("on_time", "sum"))
    grouped["on_time_rate"] = grouped["on_time"] / grouped["calls"]
    seats = areas().set_index("adcode")[["lat", "lon"]]
    out = grouped.join(seats, how="inner").reset_index()
    return out[["adcode", "lat", "lon", "calls", "on_time_rate"]]


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
    fig = _new_figure(width, 7.5)
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
    for k, (name, lat0, lon0, radius_km) in enumerate(_surge_regions(surges)):
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


# --------------------------------------------------------------------------- surge timeline


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
    reps = _replications(calls)
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

    fig = _new_figure(12, 8.5)
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


# --------------------------------------------------------------------------- policies


def _target_line(draw: Callable[..., Any], percent: float) -> None:
    """A published target across a panel: ``draw`` is the axes' axvline or axhline."""
    draw(
        percent, color=TARGET_COLOUR, linestyle="--", linewidth=1.5, label=f"target {percent:.0f}%"
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
    fig = _new_figure(4.6 * ncols, title_h + row_h * nrows)
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
        scale = 100.0 if is_rate(kpi) else 1.0
        y = np.arange(len(policies))[::-1]
        xerr = _errorbar_x(rows, scale, (0.0, 100.0) if scale == 100.0 else None)
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
            _target_line(ax.axvline, targets[kpi] * scale)
            ax.legend(loc="lower left", fontsize=7)
        ax.set_yticks(y, [str(p) for p in policies], fontsize=8)
        ax.set_ylim(-0.6, len(policies) - 0.3)
        ax.set_title(kpi.replace("_", " "), fontsize=10)
        ax.set_xlabel(
            "percent" if scale == 100.0 else ("hours" if kpi.endswith("_h") else "value"),
            fontsize=8,
        )
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
        scale = 100.0 if is_rate(kpi) else 1.0
        for k, (key, group) in enumerate(lines):
            rows = group[group["kpi"] == kpi]
            rows = rows.assign(_x=rows[x].map(position)).sort_values("_x")
            err = _errorbar_x(rows, scale, (0.0, 100.0) if scale == 100.0 else None)
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
            _target_line(ax.axhline, targets[kpi] * scale)
        if not numeric:
            ax.set_xticks([position[v] for v in values], [str(v) for v in values], fontsize=8)
        if others or kpi in targets:
            ax.legend(fontsize=7)
        ax.set_title(kpi.replace("_", " "), fontsize=10)
        ax.set_xlabel(x, fontsize=8)
        unit = {"_h": "hours", "_s": "seconds"}.get(kpi[-2:], "value")
        ax.set_ylabel("percent" if scale == 100.0 else unit, fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    fig.suptitle(f"KPIs against {x}: mean and 95% interval over replications")
    return fig


def kpi_description(kpi: str) -> str:
    """The one-line definition of a KPI (for tables beside the figures)."""
    return KPI_DEFINITIONS.get(kpi, "")


__all__ = [
    "HEADLINE_KPIS",
    "arrival_outcomes",
    "busy_share_by_hour",
    "hourly_profile",
    "kpi_dashboard",
    "kpi_frame",
    "network_map",
    "policy_comparison",
    "prefecture_on_time",
    "province_label",
    "published_targets",
    "response_time_cdf",
    "schematic_province_boundaries",
    "surge_timeline",
    "surge_windows",
    "sweep_parameters",
    "sweep_plot",
    "van_utilisation",
]
