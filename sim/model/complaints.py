"""Complaints: raised after a call by cause, then worked by the complaint desk.

Complaints do not change anything upstream, so they are worked after the model has run,
on the finished call records: the desk is a multi-server FIFO queue whose staff work only
during desk hours, and a complaint is closed on time when the desk finishes it within the
closure deadline of its being raised. After the desk's work, a resolution delay passes
(calendar time, nobody busy) before the complaint is closed.
"""

from __future__ import annotations

import heapq
import math

import numpy as np
import pandas as pd

from sim.model.scenario import ComplaintDesk, Scenario

CAUSES = ("late_arrival", "late_repair", "late_contact", "abandoned", "served_on_time")


def complaint_causes(
    calls: pd.DataFrame, contact_promise_h: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cause code (index into CAUSES, -1 none) and the time each cause became known.

    The first cause in CAUSES order that applies is the one a customer complains about.
    """
    n = len(calls)
    cause = np.full(n, -1, dtype=np.int64)
    when = np.full(n, np.nan)
    arrived = calls["arrived_h"].to_numpy()
    repaired = calls["repaired_h"].to_numpy()
    late_arrival = arrived - calls["t_call_h"].to_numpy() > calls["arrival_promise_h"].to_numpy()
    late_repair = repaired > calls["repair_due_h"].to_numpy()
    contacted = calls["contacted_h"].to_numpy()
    late_contact = contacted - calls["dispatched_h"].to_numpy() > contact_promise_h
    abandoned = ~np.isnan(calls["abandoned_h"].to_numpy())
    served = ~np.isnan(repaired)
    candidates = (
        (late_arrival, arrived),
        (late_repair, repaired),
        (late_contact & served, repaired),
        (abandoned, calls["abandoned_h"].to_numpy()),
        (served, repaired),
    )
    for code, (applies, at) in enumerate(candidates):
        take = applies & (cause < 0)
        cause[take] = code
        when[take] = at[take]
    return cause, when


def _next_open(t_h: float, desk: ComplaintDesk) -> float:
    day = math.floor(t_h / 24.0) * 24.0
    hour = t_h - day
    if hour < desk.start_h:
        return day + desk.start_h
    if hour >= desk.end_h:
        return day + 24.0 + desk.start_h
    return t_h


# Beyond this many desk days of work, whole days are skipped in one step. Below it the
# day-by-day subtraction is kept: it gives every ordinary record its exact value as before.
_DAY_BY_DAY_LIMIT_DAYS = 1000
# Work that would end later than this (some 11,000 years) ends after any horizon; where hours
# are that large a float cannot count desk hours either.
_BEYOND_ANY_HORIZON_H = 1e8


def _finish(start_h: float, work_h: float, desk: ComplaintDesk) -> float:
    """When ``work_h`` of desk time, begun at ``start_h``, is done (desk hours only)."""
    if not start_h + work_h < _BEYOND_ANY_HORIZON_H:  # also NaN and inf
        return math.inf  # never done within any run: the complaint stays open
    t = _next_open(start_h, desk)
    open_h = desk.end_h - desk.start_h
    today_close = math.floor(t / 24.0) * 24.0 + desk.end_h
    # Whole days between today's close and the day the work ends (that day keeps > 0 h).
    whole_days = math.ceil((work_h - (today_close - t)) / open_h) - 1
    if whole_days > _DAY_BY_DAY_LIMIT_DAYS:
        # Work whose time is blown up (1e12 h) must not be counted out a day at a time.
        work_h -= (today_close - t) + whole_days * open_h
        t = _next_open(today_close, desk) + whole_days * 24.0
    while True:
        close = math.floor(t / 24.0) * 24.0 + desk.end_h
        if t + work_h <= close:
            return t + work_h
        work_h -= close - t
        t = _next_open(close, desk)


def work_complaints(
    raised_h: np.ndarray, work_h: np.ndarray, desk: ComplaintDesk, horizon_h: float
) -> np.ndarray:
    """Closing time of each complaint (NaN: still open at the horizon), FIFO by raising."""
    closed = np.full(len(raised_h), np.nan)
    free_at = [0.0] * desk.staff
    heapq.heapify(free_at)
    for k in np.argsort(raised_h, kind="stable"):
        start = max(float(raised_h[k]), heapq.heappop(free_at))
        done = _finish(start, float(work_h[k]), desk)
        heapq.heappush(free_at, done)
        if done <= horizon_h:
            closed[k] = done
    return closed


def add_complaints(
    calls: pd.DataFrame,
    scenario: Scenario,
    complaint_u: np.ndarray,
    work_h: np.ndarray,
    resolution_h: np.ndarray,
) -> pd.DataFrame:
    """Add complaint_cause, complaint_raised_h, complaint_closed_h to the call table (in place)."""
    cfg = scenario.complaints
    horizon_h = scenario.horizon.hours
    cause, when = complaint_causes(calls, scenario.promises.contact_min / 60.0)
    probability = np.array([getattr(cfg.probability, name) for name in CAUSES])
    raised = (cause >= 0) & (when <= horizon_h)
    raised[raised] = complaint_u[raised] < probability[cause[raised]]
    raised_h = np.where(raised, when, np.nan)
    closed_h = np.full(len(calls), np.nan)
    desk_done = work_complaints(raised_h[raised], work_h[raised], cfg.desk, math.inf)
    closed = desk_done + resolution_h[raised]
    closed_h[raised] = np.where(closed <= horizon_h, closed, np.nan)
    out = calls  # columns are added in place: a copy of a national year costs ~250 MB
    codes = np.where(raised, cause, -1)
    out["complaint_cause"] = pd.Categorical.from_codes(codes, pd.Index(CAUSES))
    out["complaint_raised_h"] = raised_h
    out["complaint_closed_h"] = closed_h
    out["complaint_deadline_h"] = np.where(raised, raised_h + cfg.closure_deadline_h, np.nan)
    return out
