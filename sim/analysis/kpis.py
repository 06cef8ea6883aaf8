"""KPIs: pure functions of the call and unit tables, and intervals over replications.

Every rate counts calls made after the warm-up. A call whose promise had not yet
expired at the horizon, and which had not yet met it, is censored: it is left out of
both numerator and denominator rather than counted late. docs/kpis.md gives each
definition in words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

# The Student-t quantile straight from scipy.special (which scipy.spatial, the network's
# index, loads too): scipy.stats.t.ppf returns this same value, and importing scipy.stats
# costs about a second of CPU in every process that computes an interval.
from scipy.special import stdtrit

from sim.model.dispatch.base import IDLE

SECONDS_PER_H = 3600.0

# What each KPI means, in the order of the KPI table.
KPI_DEFINITIONS: dict[str, str] = {
    "on_time_arrival_rate": (
        "arrived within the arrival promise / dispatched calls whose promise was met or expired"
    ),
    "on_time_repair_rate": (
        "repaired by the repair deadline / roadside jobs repaired or past their deadline"
    ),
    "complaint_closure_rate": (
        "complaints closed within the deadline / complaints closed or past their deadline"
    ),
    "contact_on_time_rate": "customer called back within the contact promise / dispatched calls",
    "service_level": (
        "calls answered within the service-level threshold / calls answered or abandoned"
    ),
    "abandonment_rate": "calls whose caller gave up on every attempt / calls answered or abandoned",
    "avg_speed_of_answer_s": "mean wait of the answered attempt, seconds",
    "response_p50_h": "median hours from call to arrival on site, arrived calls",
    "response_p90_h": "90th percentile of hours from call to arrival",
    "response_p95_h": "95th percentile of hours from call to arrival",
    "remote_fix_rate": "solved by remote diagnosis / calls answered",
    "fixed_on_site_rate": "repaired on site / jobs whose on-site outcome is known",
    "tow_rate": "towed to a workshop / jobs whose on-site outcome is known",
    "complaints_per_1000_calls": "complaints raised per 1000 calls",
    "van_utilisation": "share of van time not idle (driving, on site, returning)",
    "agent_utilisation": "agent time handling calls / agent time on duty",
    "contractor_rate": "jobs given to local third-party shops / dispatched calls",
    "contractor_cost_cny_per_day": (
        "contractor jobs x scenario cost per job, per day after the warm-up"
    ),
    "calls_per_day": "calls made per day after the warm-up",
}


# Which way is better, for verdicts and regression checks; None: neither (a volume).
KPI_HIGHER_IS_BETTER: dict[str, bool | None] = {
    "on_time_arrival_rate": True,
    "on_time_repair_rate": True,
    "complaint_closure_rate": True,
    "contact_on_time_rate": True,
    "service_level": True,
    "abandonment_rate": False,
    "avg_speed_of_answer_s": False,
    "response_p50_h": False,
    "response_p90_h": False,
    "response_p95_h": False,
    "remote_fix_rate": True,
    "fixed_on_site_rate": True,
    "tow_rate": False,
    "complaints_per_1000_calls": False,
    "van_utilisation": None,
    "agent_utilisation": None,
    "contractor_rate": None,
    "contractor_cost_cny_per_day": False,
    "calls_per_day": None,
}


def _rate(numerator: np.ndarray, denominator: np.ndarray) -> float:
    d = int(denominator.sum())
    return float((numerator & denominator).sum() / d) if d else float("nan")


# The promises, each as (column of the call table it is judged by, KPI it feeds).
PROMISES = (
    ("arrival_promise_met", "on_time_arrival_rate"),
    ("repair_promise_met", "on_time_repair_rate"),
    ("complaint_closed_in_time", "complaint_closure_rate"),
    ("contact_promise_met", "contact_on_time_rate"),
)


def _promise_arrays(
    calls: pd.DataFrame, horizon_h: float, contact_promise_h: float
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For each promise: (known, met). Unknown: not applicable, or censored at the horizon.

    A promise is known once it was met, or once its deadline passed before the horizon;
    one still open at the horizon is censored rather than counted as broken.
    """
    t_call = calls["t_call_h"].to_numpy()
    dispatched = ~np.isnan(calls["dispatched_h"].to_numpy())

    arrived = calls["arrived_h"].to_numpy()
    deadline = t_call + calls["arrival_promise_h"].to_numpy()
    arrival_met = arrived <= deadline  # False for NaN: not (yet) arrived
    arrival_known = dispatched & (arrival_met | (deadline <= horizon_h))

    repaired = calls["repaired_h"].to_numpy()
    due = calls["repair_due_h"].to_numpy()
    repair_met = repaired <= due
    repair_known = dispatched & (repair_met | (due <= horizon_h))

    contact_due = calls["dispatched_h"].to_numpy() + contact_promise_h
    contact_met = calls["contacted_h"].to_numpy() <= contact_due
    contact_known = dispatched & (contact_met | (contact_due <= horizon_h))

    closed = calls["complaint_closed_h"].to_numpy()
    complaint_due = calls["complaint_deadline_h"].to_numpy()
    closure_met = closed <= complaint_due
    closure_known = ~np.isnan(calls["complaint_raised_h"].to_numpy()) & (
        closure_met | (complaint_due <= horizon_h)
    )
    return {
        "arrival_promise_met": (arrival_known, arrival_met),
        "repair_promise_met": (repair_known, repair_met),
        "contact_promise_met": (contact_known, contact_met),
        "complaint_closed_in_time": (closure_known, closure_met),
    }


def promise_outcomes(
    calls: pd.DataFrame, *, horizon_h: float, contact_promise_h: float
) -> pd.DataFrame:
    """Whether each call's promises were met: True, False, or <NA> (none, or censored)."""
    outcomes = _promise_arrays(calls, horizon_h, contact_promise_h)
    return pd.DataFrame(
        {name: pd.arrays.BooleanArray(met, ~known) for name, (known, met) in outcomes.items()},
        index=calls.index,
    )


def call_kpis(
    calls: pd.DataFrame,
    *,
    warmup_h: float,
    horizon_h: float,
    contact_promise_h: float,
    service_level_s: float,
    contractor_cost_cny: float = 0.0,
) -> dict[str, float]:
    """Call-based KPIs of one replication."""
    c = calls[calls["t_call_h"] >= warmup_h]
    t_call = c["t_call_h"].to_numpy()
    arrived = c["arrived_h"].to_numpy()
    has_arrived = ~np.isnan(arrived)
    dispatched = ~np.isnan(c["dispatched_h"].to_numpy())
    promises = _promise_arrays(c, horizon_h, contact_promise_h)

    answered = ~np.isnan(c["answered_h"].to_numpy())
    abandoned = ~np.isnan(c["abandoned_h"].to_numpy())
    offered = answered | abandoned
    wait_s = c["hotline_wait_h"].to_numpy() * SECONDS_PER_H
    remote = (c["final_state"] == "remote").to_numpy()

    released = ~np.isnan(c["van_released_h"].to_numpy())
    towed = c["towed"].to_numpy(bool)
    fixed = c["fixed_on_site"].to_numpy(bool)

    has_complaint = ~np.isnan(c["complaint_raised_h"].to_numpy())

    response = (arrived - t_call)[has_arrived]
    days = (horizon_h - warmup_h) / 24.0
    n = len(c)
    return {
        **{kpi: _rate(promises[column][1], promises[column][0]) for column, kpi in PROMISES},
        "service_level": _rate(answered & (wait_s <= service_level_s), offered),
        "abandonment_rate": _rate(abandoned, offered),
        "avg_speed_of_answer_s": float(np.mean(wait_s[answered])) if answered.any() else math.nan,
        "response_p50_h": _quantile(response, 0.50),
        "response_p90_h": _quantile(response, 0.90),
        "response_p95_h": _quantile(response, 0.95),
        "remote_fix_rate": _rate(remote, answered),
        "fixed_on_site_rate": _rate(fixed, released),
        "tow_rate": _rate(towed, released),
        "complaints_per_1000_calls": 1000.0 * has_complaint.sum() / n if n else math.nan,
        "contractor_rate": _rate(c["contractor"].to_numpy(bool), dispatched),
        "contractor_cost_cny_per_day": (
            int(c["contractor"].sum()) * contractor_cost_cny / days if days > 0 else math.nan
        ),
        "calls_per_day": n / days if days > 0 else math.nan,
    }


def call_kpis_by(calls: pd.DataFrame, by: str, **settings: float) -> pd.DataFrame:
    """:func:`call_kpis` for each value of a column (segment, fault, prefecture...).

    ``settings`` are call_kpis' keyword arguments. One row per group.
    """
    rows = {
        key: call_kpis(group, **settings)
        for key, group in calls.groupby(by, observed=True, sort=True)
    }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(by)


def _quantile(values: np.ndarray, q: float) -> float:
    return float(np.quantile(values, q)) if len(values) else math.nan


def van_busy_hours(units: pd.DataFrame, start_h: float, end_h: float) -> np.ndarray:
    """Hours each van spent not idle within [start_h, end_h].

    Spells still open at ``end_h`` are closed there.
    """
    t = units["t_h"].to_numpy()
    van = units["van"].to_numpy()
    state = (
        units["state"].cat.codes.to_numpy()
        if hasattr(units["state"], "cat")
        else units["state"].to_numpy()
    )
    order = np.lexsort((np.arange(len(t)), t, van))
    t, van, state = t[order], van[order], state[order]
    n_vans = int(van.max()) + 1 if len(van) else 0
    # Each row's spell lasts until the next row of the same van, or the end of the window.
    next_t = np.append(t[1:], end_h)
    last_of_van = np.append(van[1:] != van[:-1], True)
    next_t[last_of_van] = end_h
    lo = np.clip(t, start_h, end_h)
    hi = np.clip(next_t, start_h, end_h)
    busy = np.where(state != IDLE, hi - lo, 0.0)
    return np.bincount(van, weights=busy, minlength=n_vans)


def van_utilisation(units: pd.DataFrame, start_h: float, end_h: float) -> float:
    busy = van_busy_hours(units, start_h, end_h)
    return float(busy.sum() / (len(busy) * (end_h - start_h))) if len(busy) else math.nan


def agent_utilisation(
    calls: pd.DataFrame, agents_by_hour: tuple[int, ...], start_h: float, end_h: float
) -> float:
    """Handling time inside the window over agent hours on duty in the window."""
    begin = calls["answered_h"].to_numpy()
    end = begin + calls["handling_h"].to_numpy()
    ok = ~np.isnan(begin)
    handled = (np.clip(end[ok], start_h, end_h) - np.clip(begin[ok], start_h, end_h)).sum()
    hours = np.arange(math.floor(start_h), math.ceil(end_h))
    weights = np.clip(np.minimum(hours + 1, end_h) - np.maximum(hours, start_h), 0, 1)
    on_duty = float((np.asarray(agents_by_hour)[hours % 24] * weights).sum())
    return float(handled / on_duty) if on_duty else math.nan


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def confidence_interval(values: np.ndarray | list[float], level: float = 0.95) -> Interval:
    """Student-t interval of the mean over replications (NaN bounds with one replication)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    half = float(stdtrit(n - 1, (1 + level) / 2) * x.std(ddof=1) / math.sqrt(n))
    return Interval(mean, mean - half, mean + half, n)


def is_proportion(kpi: str) -> bool:
    """Whether a KPI is a share of something, so that it lies between 0 and 1."""
    return kpi.endswith("_rate") or kpi in ("service_level", "van_utilisation")


def summarise(per_replication: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """One row per KPI: mean, interval bounds and replications, from a row-per-replication table.

    Every KPI is a count, a time, a cost or a share, none below zero, and a share is at
    most 1: the interval is cut to those bounds. With few replications, or values far
    from normal, the Student-t interval of a rate near 1 or of a skewed time can reach
    past them, to values no KPI can take.
    """
    rows = []
    for name in per_replication.columns:
        if name == "replication":
            continue
        ci = confidence_interval(per_replication[name].to_numpy(), level)
        # np.clip keeps a NaN bound (one replication) NaN; max and min would not.
        top = 1.0 if is_proportion(name) else np.inf
        low, high = float(np.clip(ci.low, 0.0, top)), float(np.clip(ci.high, 0.0, top))
        rows.append({"kpi": name, "mean": ci.mean, "low": low, "high": high, "n": ci.n})
    return pd.DataFrame(rows).set_index("kpi")
