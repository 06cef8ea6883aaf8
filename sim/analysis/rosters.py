"""KPIs of a rostered run: overtime and breaks missed, pure functions of the unit table.

They read the unit table the run wrote and the plan the run was held to
(:func:`sim.model.roster.on_duty_intervals`); docs/kpis.md and docs/rosters.md give the
definitions in words.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sim.analysis.kpis import unit_spells, van_off_duty_hours
from sim.model.records import OFF_DUTY, ON_BREAK, RESTING_STATES
from sim.model.roster import rostered_hours

HOURS_PER_DAY = 24.0
# A break started within this of its due time is on time (the timer's sum of floats).
_ON_TIME_H = 1e-9


def overtime_hours(
    units: pd.DataFrame, intervals: Sequence[np.ndarray], start_h: float, end_h: float
) -> float:
    """Van-hours on duty outside the roster within [start_h, end_h].

    A van is off duty only outside its rostered spells, so its hours not off duty beyond
    the rostered hours are the time it worked past a shift's end (finishing a job and
    driving back).
    """
    n_vans = len(intervals)
    off_h = float(van_off_duty_hours(units, start_h, end_h).sum())
    not_off_h = n_vans * (end_h - start_h) - off_h
    return not_off_h - rostered_hours(intervals, start_h, end_h)


def break_outcomes(
    units: pd.DataFrame, max_working_h: float, end_h: float
) -> tuple[np.ndarray, np.ndarray]:
    """(due_h, missed) of every break that fell due before ``end_h``.

    A van's rest ends when it leaves the off-duty or on-break state (or at the start of
    the log, on duty); its break falls due ``max_working_h`` later, unless it rests
    before. The break is missed when it does not start at its due time: the van was at
    work then, and took it late, or went off duty first, or had not rested at ``end_h``.
    """
    t, _, van, state = unit_spells(units, end_h)
    resting = np.isin(state, RESTING_STATES)
    first = np.append(True, van[1:] != van[:-1])
    # A rest ends at the first row of a van on duty, and at each row after a rest.
    rest_ends = np.flatnonzero(~resting & (first | np.append(False, resting[:-1])))
    due: list[float] = []
    missed: list[bool] = []
    rest_rows = np.flatnonzero(resting)
    for row in rest_ends:
        due_h = t[row] + max_working_h
        if due_h >= end_h:
            continue
        # The van's next rest, if any.
        k = np.searchsorted(rest_rows, row)
        rest_row = rest_rows[k] if k < len(rest_rows) else -1
        if rest_row >= 0 and van[rest_row] == van[row]:
            if state[rest_row] == OFF_DUTY and t[rest_row] <= due_h + _ON_TIME_H:
                continue  # off duty before the break was due
            late = t[rest_row] > due_h + _ON_TIME_H
        else:
            late = True  # no rest at all until end_h
        due.append(due_h)
        missed.append(bool(late))
    return np.asarray(due, dtype=float), np.asarray(missed, dtype=bool)


def roster_kpis(
    units: pd.DataFrame,
    intervals: Sequence[np.ndarray],
    max_working_h: float | None,
    *,
    warmup_h: float,
    horizon_h: float,
) -> dict[str, float]:
    """The roster KPIs of one replication, after the warm-up (breaks only with a rest rule)."""
    days = (horizon_h - warmup_h) / HOURS_PER_DAY
    kpis = {"overtime_h_per_day": overtime_hours(units, intervals, warmup_h, horizon_h) / days}
    if max_working_h is not None:
        due_h, missed = break_outcomes(units, max_working_h, horizon_h)
        counted = due_h >= warmup_h
        n_due = int(counted.sum())
        kpis["breaks_missed_rate"] = float(missed[counted].sum() / n_due) if n_due else np.nan
        kpis["breaks_per_van_day"] = float(
            (units["state"].cat.codes.to_numpy() == ON_BREAK)[
                units["t_h"].to_numpy() >= warmup_h
            ].sum()
            / (len(intervals) * days)
        )
    return kpis
