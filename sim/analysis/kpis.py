"""KPIs: pure functions of the call and unit tables, and intervals over replications.

Every rate counts calls made after the warm-up. A call whose promise had not yet
expired at the horizon, and which had not yet met it, is censored: it is left out of
both numerator and denominator rather than counted late (:func:`promise_outcome`, the
one place that rule is written). What each KPI is -- unit, share or not, which way is
better, headline, published target -- is in :mod:`sim.analysis.kpi_catalogue`;
docs/kpis.md gives each definition in words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sim.analysis.kpi_catalogue import is_share
from sim.model.records import IDLE, OFF_DUTY, RESTING_STATES, VAN_STATES

if TYPE_CHECKING:
    from sim.model.scenario import Scenario

SECONDS_PER_H = 3600.0


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


def promise_outcome(
    counted: np.ndarray, done_h: np.ndarray, due_h: np.ndarray, horizon_h: float
) -> tuple[np.ndarray, np.ndarray]:
    """(known, met) of one promise for each call: the censoring rule of every promise KPI.

    ``counted``: the calls the promise applies to; ``done_h``: when it was kept (NaN:
    not yet); ``due_h``: its deadline. A promise is met when kept by its deadline; it is
    known once met, or once its deadline passed before the horizon. One still open at
    the horizon is censored (not known) rather than counted as broken.
    """
    met = done_h <= due_h  # False for NaN: not (yet) kept
    return counted & (met | (due_h <= horizon_h)), met


def arrival_outcomes(calls: pd.DataFrame, horizon_h: float) -> tuple[np.ndarray, np.ndarray]:
    """(known, met) of each call's arrival promise, censored at ``horizon_h``."""
    dispatched = ~np.isnan(calls["dispatched_h"].to_numpy(float))
    deadline = calls["t_call_h"].to_numpy(float) + calls["arrival_promise_h"].to_numpy(float)
    return promise_outcome(dispatched, calls["arrived_h"].to_numpy(float), deadline, horizon_h)


def _promise_arrays(
    calls: pd.DataFrame, horizon_h: float, contact_promise_h: float
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For each promise column: (known, met), by :func:`promise_outcome`."""
    dispatched = ~np.isnan(calls["dispatched_h"].to_numpy())
    contact_due = calls["dispatched_h"].to_numpy() + contact_promise_h
    complained = ~np.isnan(calls["complaint_raised_h"].to_numpy())
    return {
        "arrival_promise_met": arrival_outcomes(calls, horizon_h),
        "repair_promise_met": promise_outcome(
            dispatched, calls["repaired_h"].to_numpy(), calls["repair_due_h"].to_numpy(), horizon_h
        ),
        "contact_promise_met": promise_outcome(
            dispatched, calls["contacted_h"].to_numpy(), contact_due, horizon_h
        ),
        "complaint_closed_in_time": promise_outcome(
            complained,
            calls["complaint_closed_h"].to_numpy(),
            calls["complaint_deadline_h"].to_numpy(),
            horizon_h,
        ),
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


@dataclass(frozen=True)
class KpiSettings:
    """What the call KPIs depend on beside the calls: the window measured and the promises."""

    warmup_h: float
    horizon_h: float
    contact_promise_h: float = 0.5
    service_level_s: float = 20.0
    contractor_cost_cny: float = 0.0

    @classmethod
    def of(cls, scenario: Scenario, horizon_h: float | None = None) -> KpiSettings:
        """The scenario's settings (its warm-up, horizon and promises); ``horizon_h``
        where the run's horizon is not the scenario's (a run folder shortened by --days)."""
        return cls(
            warmup_h=scenario.horizon.warmup_h,
            horizon_h=scenario.horizon.hours if horizon_h is None else horizon_h,
            contact_promise_h=scenario.promises.contact_min / 60.0,
            service_level_s=scenario.hotline.service_level_s,
            contractor_cost_cny=scenario.contractors.cost_per_job_cny,
        )


def call_kpis(calls: pd.DataFrame, settings: KpiSettings) -> dict[str, float]:
    """Call-based KPIs of one replication."""
    warmup_h, horizon_h = settings.warmup_h, settings.horizon_h
    contact_promise_h = settings.contact_promise_h
    service_level_s = settings.service_level_s
    contractor_cost_cny = settings.contractor_cost_cny
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


def call_kpis_by(calls: pd.DataFrame, by: str, settings: KpiSettings) -> pd.DataFrame:
    """:func:`call_kpis` for each value of a column (segment, fault, prefecture...).

    One row per group.
    """
    rows = {
        key: call_kpis(group, settings)
        for key, group in calls.groupby(by, observed=True, sort=True)
    }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(by)


def _quantile(values: np.ndarray, q: float) -> float:
    return float(np.quantile(values, q)) if len(values) else math.nan


def unit_spells(
    units: pd.DataFrame, end_h: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The unit log as spells (start_h, end_h, van, state code), by van, then time.

    Each row's spell lasts until the next row of the same van; a van's last spell is
    closed at ``end_h``.
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
    next_t = np.append(t[1:], end_h)
    last_of_van = np.append(van[1:] != van[:-1], True)
    next_t[last_of_van] = end_h
    return t, next_t, van, state


def _hours_by_van(
    units: pd.DataFrame, start_h: float, end_h: float, counted: np.ndarray
) -> np.ndarray:
    """Hours each van spent within [start_h, end_h] in the states ``counted`` picks."""
    t, next_t, van, state = unit_spells(units, end_h)
    n_vans = int(van.max()) + 1 if len(van) else 0
    lo = np.clip(t, start_h, end_h)
    hi = np.clip(next_t, start_h, end_h)
    return np.bincount(van, weights=np.where(counted[state], hi - lo, 0.0), minlength=n_vans)


def _states(*codes: int) -> np.ndarray:
    """A lookup by state code: True for ``codes``."""
    table = np.zeros(len(VAN_STATES), dtype=bool)
    table[list(codes)] = True
    return table


# Working: not idle, not off duty, not on a break.
_WORKING = ~_states(IDLE, *RESTING_STATES)
_OFF_DUTY = _states(OFF_DUTY)


def van_busy_hours(units: pd.DataFrame, start_h: float, end_h: float) -> np.ndarray:
    """Hours each van spent working (not idle, off duty or on a break) within [start_h, end_h].

    Spells still open at ``end_h`` are closed there.
    """
    return _hours_by_van(units, start_h, end_h, _WORKING)


def van_off_duty_hours(units: pd.DataFrame, start_h: float, end_h: float) -> np.ndarray:
    """Hours each van spent off duty (a rostered van between shifts) within [start_h, end_h]."""
    return _hours_by_van(units, start_h, end_h, _OFF_DUTY)


def van_utilisation(units: pd.DataFrame, start_h: float, end_h: float) -> float:
    """Van time working / van time on duty (every van's whole window without a roster)."""
    busy = van_busy_hours(units, start_h, end_h)
    if not len(busy):
        return math.nan
    # Without a roster the off-duty hours are exactly 0.0: the same value as before rosters.
    off_duty_h = float(van_off_duty_hours(units, start_h, end_h).sum())
    on_duty_h = len(busy) * (end_h - start_h) - off_duty_h
    return float(busy.sum() / on_duty_h) if on_duty_h > 0 else math.nan


def relocation_kpis(relocations: pd.DataFrame, start_h: float, end_h: float) -> dict[str, float]:
    """Move-up drives started within [start_h, end_h): how many and their road km, per day.

    ``relocations`` is a relocation table (sim.model.records.RelocationLog): one row per
    van sent to a new base, with its start ``t_h`` and ``road_km``.
    """
    days = (end_h - start_h) / 24.0
    if days <= 0:
        return {"relocations_per_day": math.nan, "relocation_km_per_day": math.nan}
    t = relocations["t_h"].to_numpy(float)
    inside = (t >= start_h) & (t < end_h)
    return {
        "relocations_per_day": float(inside.sum()) / days,
        "relocation_km_per_day": float(relocations["road_km"].to_numpy(float)[inside].sum()) / days,
    }


def agent_hours(
    agents: pd.DataFrame, start_h: np.ndarray | float, end_h: np.ndarray | float
) -> np.ndarray:
    """Agent hours on duty between ``start_h`` and ``end_h`` (element-wise), of one run.

    ``agents`` is the record the hotline writes (``t_h``, ``agents_on_duty``: that many
    agents from ``t_h`` until the next row; the first row is at time 0, the last holds
    to the end), as :attr:`sim.experiments.runs.run.ReplicationResult.agents` gives it.
    """
    t = agents["t_h"].to_numpy(float)
    on_duty = agents["agents_on_duty"].to_numpy(float)
    # Agent hours from time 0 to each change, then to any time within a spell.
    at_change = np.concatenate(([0.0], np.cumsum(on_duty[:-1] * np.diff(t))))

    def since_start(x: np.ndarray) -> np.ndarray:
        spell = np.clip(np.searchsorted(t, x, side="right") - 1, 0, len(t) - 1)
        hours: np.ndarray = at_change[spell] + on_duty[spell] * (x - t[spell])
        return hours

    start = np.asarray(start_h, dtype=float)
    end = np.maximum(np.asarray(end_h, dtype=float), start)
    spent: np.ndarray = since_start(end) - since_start(start)
    return spent


def agents_by_hour_of_day(agents: pd.DataFrame, start_h: float, end_h: float) -> np.ndarray:
    """Mean agents on duty in each hour of the day (24 values) over [start_h, end_h].

    Time-weighted over the window's days, and over replications when ``agents`` has a
    ``replication`` column: what the hotline had, surges' extra agents included.
    """
    groups = (
        [group for _, group in agents.groupby("replication", sort=True)]
        if "replication" in agents
        else [agents]
    )
    hours = np.arange(math.floor(start_h), math.ceil(end_h))
    lo = np.maximum(hours, start_h).astype(float)
    hi = np.minimum(hours + 1, end_h).astype(float)
    covered = np.bincount(hours % 24, weights=np.clip(hi - lo, 0.0, None), minlength=24)
    on_duty = np.zeros(24)
    for group in groups:
        on_duty += np.bincount(hours % 24, weights=agent_hours(group, lo, hi), minlength=24)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean: np.ndarray = on_duty / (covered * len(groups))
    return mean


def agent_utilisation(
    calls: pd.DataFrame, agents: pd.DataFrame, start_h: float, end_h: float
) -> float:
    """Handling time inside the window over agent hours on duty in the window (one run).

    ``agents``: the hotline's record of agents on duty (see :func:`agent_hours`), so a
    surge's extra agents count.
    """
    begin = calls["answered_h"].to_numpy()
    end = begin + calls["handling_h"].to_numpy()
    ok = ~np.isnan(begin)
    handled = (np.clip(end[ok], start_h, end_h) - np.clip(begin[ok], start_h, end_h)).sum()
    on_duty = float(agent_hours(agents, start_h, end_h))
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
    # The Student-t quantile straight from scipy.special: scipy.stats.t.ppf returns this same
    # value, and importing scipy.stats costs about a second of CPU. Imported here, not at the
    # top: `plot` and `report` read intervals from summary.json and never need scipy.
    from scipy.special import stdtrit

    half = float(stdtrit(n - 1, (1 + level) / 2) * x.std(ddof=1) / math.sqrt(n))
    return Interval(mean, mean - half, mean + half, n)


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
        top = 1.0 if is_share(name) else np.inf
        low, high = float(np.clip(ci.low, 0.0, top)), float(np.clip(ci.high, 0.0, top))
        rows.append({"kpi": name, "mean": ci.mean, "low": low, "high": high, "n": ci.n})
    return pd.DataFrame(rows).set_index("kpi")
