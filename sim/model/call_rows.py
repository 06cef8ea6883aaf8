"""How the model reads its call stream fast: columns as memoryviews, rows packed by block.

The per-call path of :class:`~sim.model.simulation.Model` reads and writes one number at
a time; these views make each read or write cost a third of a numpy element access, and
what a call reads after its hotline part one C call instead of fifteen.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import numpy as np

from sim.model.demand import CallStream


class Columns:
    """Named columns as flat memoryviews; an element is read or written as a Python number.

    Indexing a numpy array boxes a numpy scalar (about 100 ns to read, 70 ns to write); a
    memoryview of the same memory takes about a third of that and copies nothing, so the
    numpy arrays stay the only copy of the data. Per-attempt columns (n, attempts) are
    flattened row by row: element ``[i, a]`` is ``[i * attempts + a]``.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], *, writable: bool = False) -> None:
        for name, array in arrays.items():
            if writable:
                # Written in place: must be the array itself, never a copy.
                view = array.data
            else:
                native = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
                view = native.reshape(-1).data
            setattr(self, name, view)


# What a call reads from the stream once its hotline part is over, in this order: one row
# per call, read with one struct.unpack_from instead of a memoryview read per column
# (each read boxes its number either way; one C call instead of fifteen).
ROW_FIELDS = (
    ("remote_u", "d"),
    ("segment", "q"),
    ("lat", "d"),
    ("lon", "d"),
    ("nearest", "q"),
    ("contact_delay_h", "d"),
    ("fault", "q"),
    ("drive_noise", "d"),
    ("turnout_day_h", "d"),
    ("turnout_night_h", "d"),
    ("return_noise", "d"),
    # Worked out for a block of calls at once (CallRows.load), the same values as the
    # per-call code they replace would give (comparisons and sums of the same float64s):
    ("fixable", "q"),  # fix_u < on-site fix probability of the fault, 0 or 1
    ("part_missing", "q"),  # fixable and part_u < part-missing probability, 0 or 1
    ("on_site_h", "d"),  # repair_h, plus part_delay_h when the part is missing
    ("nearest_km", "d"),  # DispatchView.arrival_promise from the nearest station:
    ("nearest_promise_h", "d"),  # its road km and hours (worked out in use_stream)
)


class CallRows:
    """The stream's :data:`ROW_FIELDS`, packed row by row, a block of calls at a time.

    The same numbers as the columns (float64 bits copied, integers widened), so a run
    reads the same values; call ``i``'s row is ``read((i - first) * SIZE)`` once
    ``first <= i < end`` (:meth:`load` makes it so). Packed for the whole stream, the
    rows would add 120 bytes a call to a run's memory (some 90 MB for a national year);
    a block is built when its first call starts, and calls start in order.
    """

    CALLS = 4096  # per block: about 0.5 MB
    LAYOUT = struct.Struct("<" + "".join(code for _, code in ROW_FIELDS))
    SIZE = LAYOUT.size
    assert 8 * len(ROW_FIELDS) == SIZE

    def __init__(
        self,
        stream: CallStream,
        fix_p: list[float],
        part_p: list[float],
        promises: tuple[np.ndarray, np.ndarray],
    ) -> None:
        self._stream = stream
        self._fix_p = np.asarray(fix_p, dtype=np.float64)
        self._part_p = np.asarray(part_p, dtype=np.float64)
        self._promises = promises
        self.first = self.end = 0  # the block's calls: first <= i < end
        self.read: Callable[[int], tuple[Any, ...]] = partial(self.LAYOUT.unpack_from, b"")

    def load(self, i: int) -> None:
        """Pack the block of rows that holds call ``i``, a call after the current block."""
        stream = self._stream
        first = i - i % self.CALLS
        end = min(first + self.CALLS, len(stream))
        # Every field is 8 bytes: one column of a 2-D array each, integers written through
        # an int64 view of the same memory (a structured array's fields copy slower).
        table = np.empty((end - first, len(ROW_FIELDS)), dtype="<f8")
        as_int = table.view("<i8")
        fault = stream.fault[first:end]
        fixable = stream.fix_u[first:end] < self._fix_p[fault]
        part_missing = fixable & (stream.part_u[first:end] < self._part_p[fault])
        repair_h = stream.repair_h[first:end]
        with_part_h = repair_h + stream.part_delay_h[first:end]
        columns = {
            "nearest": stream.candidates[first:end, 0],
            "fixable": fixable,
            "part_missing": part_missing,
            "on_site_h": np.where(part_missing, with_part_h, repair_h),
            "nearest_km": self._promises[0][first:end],
            "nearest_promise_h": self._promises[1][first:end],
        }
        for k, (name, code) in enumerate(ROW_FIELDS):
            column = columns[name] if name in columns else getattr(stream, name)[first:end]
            (table if code == "d" else as_int)[:, k] = column
        self.first, self.end = first, end
        self.read = partial(self.LAYOUT.unpack_from, table.tobytes())


# The stream columns the model reads while it runs.
STREAM_COLUMNS = (
    "t_call_h",
    "lat",
    "lon",
    "segment",
    "fault",
    "handling_h",
    "patience_h",
    "redial_u",
    "redial_delay_h",
    "remote_u",
    "contact_delay_h",
    "turnout_day_h",
    "turnout_night_h",
    "drive_noise",
    "return_noise",
    "repair_h",
    "fix_u",
    "part_u",
    "part_delay_h",
    "tow_wait_h",
    "workshop_h",
)
