"""Replications by precision: add replications until a KPI's interval is narrow enough.

The sequential procedure of simulation texts (Law, *Simulation Modeling and Analysis*,
9.4.1): run n replications, compute the 95% half-width of the mean, and while it is
wider than the target add replications. Adding them one at a time wastes the workers,
so each step adds a batch: the number that the current half-width projects to be enough
(half-widths shrink as 1/sqrt(n), so n (h / target)^2 in all), at least one more, and at
most as many again as already run, since an estimate from few replications can be far
off. The procedure stops at a cap. The half-width is the Student-t one,
t(0.975, n-1) s / sqrt(n), before any cut to the values a KPI can take.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sim.analysis.kpis import confidence_interval
from sim.errors import UserInputError

DEFAULT_MAX_REPLICATIONS = 100
LEVEL = 0.95
# The narrowest half-width a target may ask for: a KPI's mean over any number of
# replications a machine can run is not known closer (a share's half-width of 1e-9
# would take some 10^17 replications).
MIN_HALF_WIDTH = 1e-9


@dataclass(frozen=True)
class PrecisionTarget:
    """The widest 95% half-width allowed for the mean of a KPI."""

    kpi: str
    half_width: float

    def __post_init__(self) -> None:
        half = self.half_width
        if isinstance(half, bool) or not isinstance(half, int | float):
            raise UserInputError(
                f"{self.kpi}: the half-width {half!r} is not a number", field="--precision"
            )
        if not math.isfinite(half) or half <= 0:
            raise UserInputError(
                f"{self.kpi}: the half-width must be positive", field="--precision"
            )
        if half < MIN_HALF_WIDTH:
            raise UserInputError(
                f"{self.kpi}: a half-width of {half:g} is below {MIN_HALF_WIDTH:g}, "
                "which no number of replications meets",
                field="--precision",
            )


def parse_precision(text: str, known_kpis: Sequence[str] = ()) -> PrecisionTarget:
    """``KPI=HALFWIDTH`` as written on the command line, e.g. ``on_time_arrival_rate=0.005``."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name or not value.strip():
        raise UserInputError(f"{text!r}: write KPI=HALFWIDTH", field="--precision")
    if known_kpis and name not in known_kpis:
        known = ", ".join(known_kpis)
        raise UserInputError(f"unknown KPI {name!r}; known: {known}", field="--precision")
    try:
        half_width = float(value)
    except ValueError:
        raise UserInputError(f"{value.strip()!r} is not a number", field="--precision") from None
    return PrecisionTarget(name, half_width)


def half_width(values: Sequence[float] | np.ndarray, level: float = LEVEL) -> float:
    """Student-t half-width of the mean of ``values`` (NaN ignored; NaN below two values):
    half the width of :func:`sim.analysis.kpis.confidence_interval` (before any clipping
    to a KPI's bounds, so that the stopping rule is the t rule itself)."""
    interval = confidence_interval(np.asarray(values, dtype=float), level)
    return (interval.high - interval.low) / 2


@dataclass(frozen=True)
class PrecisionCheck:
    """A target against the replications run so far at one point (and policy)."""

    target: PrecisionTarget
    half_width: float
    replications: int

    @property
    def met(self) -> bool:
        return not math.isnan(self.half_width) and self.half_width <= self.target.half_width

    @property
    def undefined(self) -> bool:
        """No half-width despite two or more replications: the KPI has no value to average."""
        return math.isnan(self.half_width) and self.replications >= 2


def check(target: PrecisionTarget, values: Sequence[float] | np.ndarray) -> PrecisionCheck:
    return PrecisionCheck(target, half_width(values), len(values))


def next_replications(n: int, checks: Sequence[PrecisionCheck], cap: int) -> int:
    """How many replications a point should have after this step (``n`` when done).

    Done when every check is met, or cannot be (a KPI with no value), or ``n`` is at
    the cap. Otherwise the projection of the worst check, at least ``n + 1``, at most
    ``2 n``, and never beyond ``cap``.
    """
    if n >= cap:
        return n
    if n < 2:
        return min(cap, 2)
    open_checks = [c for c in checks if not c.met and not c.undefined]
    if not open_checks:
        return n
    ratio = max(c.half_width / c.target.half_width for c in open_checks)
    # At most doubled: bounding the growth first keeps a huge ratio from overflowing.
    projected = math.ceil(n * min(2.0, ratio) ** 2)
    return min(cap, max(n + 1, min(2 * n, projected)))
