"""Flat records: one row per call, one row per van state change.

Columns are preallocated numpy arrays that the model fills in place (NaN or -1 until a
moment happens); :func:`CallRecords.to_frame` turns them into the table that every KPI
is computed from.
"""

from __future__ import annotations

from array import array

import numpy as np
import pandas as pd

UNFINISHED, REPAIRED, REMOTE, ABANDONED = 0, 1, 2, 3
FINAL_STATES = ("unfinished", "repaired", "remote", "abandoned")

# Van states: the codes the unit log stores, and their names in the units table. They
# live with the records (not with dispatch) because the records and the KPIs read them;
# the dispatch interface imports them from here.
IDLE, TO_SITE, ON_SITE, RETURNING = 0, 1, 2, 3
VAN_STATES = ("idle", "to_site", "on_site", "returning")

TIME_COLUMNS = (
    "answered_h",
    "abandoned_h",
    "dispatched_h",
    "contacted_h",
    "assigned_h",
    "departed_h",
    "arrived_h",
    "van_released_h",
    "tow_arrived_h",
    "workshop_start_h",
    "repaired_h",
    "repair_due_h",
)
FLOAT_COLUMNS = (
    "hotline_wait_h",
    "hotline_wait_total_h",
    "handling_h",
    "road_km",
    "promise_km",
    "arrival_promise_h",
    "tow_km",
)
INT_COLUMNS = ("attempts", "station", "van", "final_state")
BOOL_COLUMNS = ("fixed_on_site", "towed", "part_missing", "contractor")


class CallRecords:
    """Per-call columns for n calls, written by the model."""

    def __init__(self, n: int) -> None:
        self.n = n
        for name in TIME_COLUMNS + FLOAT_COLUMNS:
            setattr(self, name, np.full(n, np.nan))
        for name in INT_COLUMNS:
            setattr(self, name, np.full(n, -1, dtype=np.int64))
        self.final_state[:] = UNFINISHED
        self.attempts[:] = 0
        for name in BOOL_COLUMNS:
            setattr(self, name, np.zeros(n, dtype=bool))

    # Declared for type checkers; created in __init__.
    answered_h: np.ndarray
    abandoned_h: np.ndarray
    dispatched_h: np.ndarray
    contacted_h: np.ndarray
    assigned_h: np.ndarray
    departed_h: np.ndarray
    arrived_h: np.ndarray
    van_released_h: np.ndarray
    tow_arrived_h: np.ndarray
    workshop_start_h: np.ndarray
    repaired_h: np.ndarray
    repair_due_h: np.ndarray
    hotline_wait_h: np.ndarray
    hotline_wait_total_h: np.ndarray
    handling_h: np.ndarray
    road_km: np.ndarray
    promise_km: np.ndarray
    arrival_promise_h: np.ndarray
    tow_km: np.ndarray
    attempts: np.ndarray
    station: np.ndarray
    van: np.ndarray
    final_state: np.ndarray
    fixed_on_site: np.ndarray
    towed: np.ndarray
    part_missing: np.ndarray
    contractor: np.ndarray

    def columns(self) -> dict[str, np.ndarray]:
        names = TIME_COLUMNS + FLOAT_COLUMNS + INT_COLUMNS + BOOL_COLUMNS
        return {name: getattr(self, name) for name in names}


class UnitLog:
    """Van state changes: (time, van, new state, call) appended as they happen."""

    def __init__(self) -> None:
        self.t_h = array("d")
        self.van = array("l")
        self.state = array("b")
        self.call = array("l")

    def log(self, t_h: float, van: int, state: int, call: int) -> None:
        self.t_h.append(t_h)
        self.van.append(van)
        self.state.append(state)
        self.call.append(call)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "t_h": np.frombuffer(self.t_h, dtype=np.float64).copy(),
                "van": np.frombuffer(self.van, dtype=np.int64).copy()
                if self.van.itemsize == 8
                else np.asarray(self.van, dtype=np.int64),
                "state": pd.Categorical.from_codes(
                    np.asarray(self.state, dtype=np.int8), pd.Index(VAN_STATES)
                ),
                "call_id": np.asarray(self.call, dtype=np.int64),
            }
        )
