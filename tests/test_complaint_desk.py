"""The complaint desk works only in desk hours, and any amount of work ends in a bounded time."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.model import complaints
from sim.model.complaints import _finish
from sim.model.scenario import ComplaintDesk

DESK = ComplaintDesk(staff=1, start_h=8, end_h=20)


def _day_by_day(start_h: float, work_h: float, desk: ComplaintDesk) -> float:
    """The desk hours counted out one day at a time: the definition, for comparison."""
    t = start_h
    while True:
        day = math.floor(t / 24.0) * 24.0
        opens, closes = day + desk.start_h, day + desk.end_h
        if t < opens:
            t = opens
        if t >= closes:
            t = day + 24.0
            continue
        if t + work_h <= closes:
            return t + work_h
        work_h -= closes - t
        t = day + 24.0


@pytest.mark.parametrize(
    ("start_h", "work_h", "done_h"),
    [
        (9.0, 2.0, 11.0),  # within the day
        (3.0, 1.0, 9.0),  # raised at night: waits for 08:00
        (19.0, 2.0, 33.0),  # one hour today, one from 08:00 tomorrow
        (21.0, 12.0, 44.0),  # a whole desk day, begun the next morning
        (8.0, 24.0, 44.0),  # two whole desk days
    ],
)
def test_work_is_done_in_desk_hours(start_h: float, work_h: float, done_h: float) -> None:
    assert _finish(start_h, work_h, DESK) == pytest.approx(done_h)


@pytest.mark.parametrize("hours", [(8, 20), (0, 24), (23, 24)])
@pytest.mark.parametrize("work_days", [999.5, 1001.25, 1500.0, 1502.25, 5000.0, 123456.5])
def test_long_work_skips_whole_days_to_the_same_end(
    work_days: float, hours: tuple[int, int]
) -> None:
    """Beyond 1000 whole desk days the skip is taken; at or below, the day-by-day count."""
    desk = ComplaintDesk(staff=1, start_h=hours[0], end_h=hours[1])
    for start_h in (0.0, 8.0, 13.7, 19.99, 22.0, 23.5):
        work_h = work_days * (desk.end_h - desk.start_h)
        expected = _day_by_day(start_h, work_h, desk)
        assert _finish(start_h, work_h, desk) == pytest.approx(expected, rel=1e-12)


def test_blown_up_work_ends_in_a_few_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scenario's work time scaled by 1e7 once counted out a million desk days, one by one."""
    steps = 0
    next_open = complaints._next_open

    def counted(t_h: float, desk: ComplaintDesk) -> float:
        nonlocal steps
        steps += 1
        if steps > 100:
            raise AssertionError("the desk counts the days one by one")
        return next_open(t_h, desk)

    monkeypatch.setattr(complaints, "_next_open", counted)
    done = complaints.work_complaints(np.array([1.0, 2.0]), np.array([1e7, 3e7]), DESK, math.inf)
    open_days = (1e7 + 3e7) / (DESK.end_h - DESK.start_h)  # one desk: FIFO, back to back
    assert done[1] == pytest.approx(open_days * 24.0, rel=1e-6)


@pytest.mark.parametrize("work_h", [1e300, math.inf, math.nan])
def test_work_beyond_any_horizon_is_never_done_and_holds_the_desk(work_h: float) -> None:
    done = complaints.work_complaints(
        np.array([1.0, 2.0, 3.0]), np.array([work_h, 1.0, 1.0]), DESK, math.inf
    )
    assert np.isinf(done).all()  # one desk: those behind it wait for ever too
