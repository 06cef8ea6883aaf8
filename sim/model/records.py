"""Flat records: one row per call, one row per van state change.

Columns are preallocated numpy arrays that the model fills in place (NaN or -1 until a
moment happens); :func:`CallRecords.to_frame` turns them into the table that every KPI
is computed from.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

UNFINISHED, REPAIRED, REMOTE, ABANDONED = 0, 1, 2, 3
FINAL_STATES = ("unfinished", "repaired", "remote", "abandoned")

# Van states: the codes the unit log stores, and their names in the units table. They
# live with the records (not with dispatch) because the records and the KPIs read them;
# the dispatch interface imports them from here.
IDLE, TO_SITE, ON_SITE, RETURNING = 0, 1, 2, 3
# New states are appended, so that the codes of the old ones never change. A van drives
# to a new base on a move-up order (sim.model.dispatch.moveup); a rostered van is off duty
# between shifts and on a rest break (sim.model.roster).
RELOCATING, OFF_DUTY, ON_BREAK = 4, 5, 6
VAN_STATES = ("idle", "to_site", "on_site", "returning", "relocating", "off_duty", "on_break")
# States in which a van is neither working nor available: no utilisation, no overtime.
RESTING_STATES = (OFF_DUTY, ON_BREAK)

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


# One unit-log row as bytes: time (float64), van (int64), new state (int8), call (int64),
# little-endian, no padding; UNIT_ROW reads the same layout back with numpy.
_UNIT_ROW = struct.Struct("<dqbq")
UNIT_ROW = np.dtype([("t_h", "<f8"), ("van", "<i8"), ("state", "i1"), ("call", "<i8")])
assert UNIT_ROW.itemsize == _UNIT_ROW.size


class UnitLog:
    """Van state changes: (time, van, new state, call) appended as they happen.

    A change is one packed row added to one ``bytearray``: ``write(pack(t_h, van, state,
    call))``, two calls into C where an append to each of four arrays took four (the
    model logs about 3.5 changes per call). :attr:`pack` and :attr:`write` are public so
    that the model can bind them once.
    """

    def __init__(self) -> None:
        self.rows = bytearray()
        self.pack = _UNIT_ROW.pack
        self.write = self.rows.extend

    def log(self, t_h: float, van: int, state: int, call: int) -> None:
        """Append one change."""
        self.write(self.pack(t_h, van, state, call))

    def __len__(self) -> int:
        return len(self.rows) // _UNIT_ROW.size

    def to_frame(self) -> pd.DataFrame:
        """The changes in the order logged: t_h, van, state (categorical), call_id."""
        import pandas as pd

        rows = np.frombuffer(self.rows, dtype=UNIT_ROW)
        # astype copies each field into a contiguous native array, so the frame holds no
        # view of the bytearray (which could not grow again while one exists).
        return pd.DataFrame(
            {
                "t_h": rows["t_h"].astype(np.float64),
                "van": rows["van"].astype(np.int64),
                "state": pd.Categorical.from_codes(
                    rows["state"].astype(np.int8), pd.Index(VAN_STATES)
                ),
                "call_id": rows["call"].astype(np.int64),
            }
        )


RELOCATION_COLUMNS = ("t_h", "van", "from_station", "to_station", "road_km", "after_call")


class RelocationLog:
    """Move-up drives: one row per van sent to a new base.

    ``after_call`` is the call whose job the van had just finished (-1 for a move of an
    idle van at a review). Rows are few (only policies with move-up make them), so they
    are kept as plain tuples.
    """

    def __init__(self) -> None:
        self.rows: list[tuple[float, int, int, int, float, int]] = []

    def log(
        self, t_h: float, van: int, from_station: int, to_station: int, road_km: float, call: int
    ) -> None:
        """Append one move."""
        self.rows.append((t_h, van, from_station, to_station, road_km, call))

    def __len__(self) -> int:
        return len(self.rows)

    def to_frame(self) -> pd.DataFrame:
        """The moves in the order made (columns :data:`RELOCATION_COLUMNS`)."""
        import pandas as pd

        columns = list(zip(*self.rows, strict=True)) if self.rows else [()] * 6
        dtypes = (np.float64, np.int64, np.int64, np.int64, np.float64, np.int64)
        return pd.DataFrame(
            {
                name: np.asarray(values, dtype=dtype)
                for name, values, dtype in zip(RELOCATION_COLUMNS, columns, dtypes, strict=True)
            }
        )
