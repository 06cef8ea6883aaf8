"""Progress of an experiment: runs finished, failed and remaining, and the time still to go.

The engine reports a :class:`ProgressState` when a run ends and on a heartbeat (about
once a second) in between. :class:`LineReporter` turns those reports into one plain line
every few seconds, for output that is not a terminal (a log file, a CI job, ``nohup``):
no redrawn bar, no control characters.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

ReportFn = Callable[["ProgressState"], None]
"""Called with the state of an experiment whenever it changes, and on a heartbeat."""


@dataclass(frozen=True)
class ProgressState:
    """Where an experiment stands.

    ``finished`` counts runs that ended well, ``reused`` among them those found finished
    in the result store (not run again); ``failed`` those that raised. ``running`` is
    the fraction done of the runs under way, where it is known (runs in this process),
    else 0. ``total`` grows when replications are added for precision.
    """

    total: int
    finished: int = 0
    failed: int = 0
    reused: int = 0
    running: float = 0.0
    elapsed_s: float = 0.0

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.finished - self.failed)

    @property
    def fraction(self) -> float:
        """The share of all runs done, counting the known part of runs under way."""
        if self.total == 0:
            return 1.0
        return min(1.0, (self.finished + self.failed + self.running) / self.total)

    @property
    def eta_s(self) -> float | None:
        """Seconds still to go at the pace of the runs done so far (None before any)."""
        done_here = self.finished - self.reused + self.failed + self.running
        if self.remaining == 0:
            return 0.0
        if done_here <= 0 or self.elapsed_s <= 0:
            return None
        return self.elapsed_s / done_here * max(0.0, self.remaining - self.running)


def format_duration(seconds: float | None) -> str:
    """``1h02m``, ``3m05s``, ``42s``; ``?`` when unknown."""
    if seconds is None or math.isnan(seconds):
        return "?"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def progress_line(state: ProgressState, label: str = "") -> str:
    """One line: ``label: 12/40 runs, 11 finished (3 reused), 1 failed, 28 remaining, ...``."""
    reused = f" ({state.reused} reused)" if state.reused else ""
    head = f"{label}: " if label else ""
    return (
        f"{head}{state.finished + state.failed}/{state.total} runs, "
        f"{state.finished} finished{reused}, {state.failed} failed, "
        f"{state.remaining} remaining, elapsed {format_duration(state.elapsed_s)}, "
        f"ETA {format_duration(state.eta_s)}"
    )


class LineReporter:
    """Writes a progress line at most every ``interval_s`` seconds, and a last one on close."""

    def __init__(
        self,
        stream: TextIO,
        label: str = "",
        interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.label = label
        self.interval_s = interval_s
        self._clock = clock
        self._last_s = clock()
        self._state: ProgressState | None = None
        self._written: ProgressState | None = None

    def __call__(self, state: ProgressState) -> None:
        self._state = state
        now = self._clock()
        if now - self._last_s >= self.interval_s:
            self._write(state)
            self._last_s = now

    def close(self) -> None:
        """Write the last state, unless it is the one already written."""
        if self._state is not None and self._state != self._written:
            self._write(self._state)

    def _write(self, state: ProgressState) -> None:
        self.stream.write(progress_line(state, self.label) + "\n")
        self.stream.flush()
        self._written = state
