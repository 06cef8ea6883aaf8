"""The van-roster part of the scenario schema (``roster:``, docs/rosters.md)."""

from __future__ import annotations

import math
from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from sim.model.schema import HOURS_PER_DAY, MAX_VANS, FrozenModel

# The days a van shift can be worked on: the weekdays, Monday first, and "holiday" for
# the dates in RosterConfig.holidays (a holiday is a day type of its own).
WEEKDAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DayName = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun", "holiday"]
EVERY_DAY: tuple[DayName, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun", "holiday")


class VanShift(FrozenModel):
    """Vans on duty at each station from start_h to end_h on the days listed.

    In the shape of the hotline's :class:`Shift`: a shift with ``end_h <= start_h`` runs
    past midnight and belongs to the day it starts on (Friday's night shift ends on
    Saturday morning). Give either ``vans`` (per station, at most the station's vans) or
    ``share`` (of each station's vans, rounded to the nearest van, halves up). Shifts
    that overlap add up, as agents do, up to the station's vans.
    """

    start_h: int = Field(ge=0, lt=24)
    end_h: int = Field(ge=0, le=24)
    vans: int | None = Field(None, ge=0, le=MAX_VANS)
    share: float | None = Field(None, ge=0, le=1)
    days: tuple[DayName, ...] = Field(EVERY_DAY, min_length=1)

    @model_validator(mode="after")
    def _one_size(self) -> VanShift:
        if (self.vans is None) == (self.share is None):
            raise ValueError("give exactly one of 'vans' or 'share'")
        return self

    def vans_of(self, station_vans: int) -> int:
        """How many of a station's ``station_vans`` this shift puts on duty."""
        if self.vans is not None:
            return min(self.vans, station_vans)
        assert self.share is not None
        return min(station_vans, math.floor(self.share * station_vans + 0.5))

    @property
    def length_h(self) -> int:
        end_h = self.end_h if self.end_h > self.start_h else self.end_h + HOURS_PER_DAY
        return end_h - self.start_h


class StationRoster(FrozenModel):
    """Stations (by name, as the network names them) that work shifts of their own."""

    stations: tuple[str, ...] = Field(min_length=1)
    shifts: tuple[VanShift, ...] = Field(min_length=1)


class RestRule(FrozenModel):
    """At most ``max_working_h`` on duty without a break of ``break_min`` minutes.

    Time on duty counts as working time whether the van is out on a job or waiting at
    its station on call. A break falls due that long after the van came on duty or
    ended its last break; a van waiting at its station takes it at once, a van at work
    when it is done with the job and back at its station.
    """

    max_working_h: float = Field(gt=0, le=24)
    break_min: float = Field(gt=0, le=24 * 60)


class RosterConfig(FrozenModel):
    """Van rosters: which vans are on duty, by hour, weekday and holiday, and rest rules.

    ``shifts`` apply to every station not listed under ``stations``. A station's vans
    are ranked by number: with k on duty, its first k vans are. Without a roster every
    van is on duty all the time.
    """

    shifts: tuple[VanShift, ...] = Field(min_length=1)
    stations: tuple[StationRoster, ...] = ()
    holidays: tuple[date, ...] = Field((), description="calendar dates; needs horizon.start_date")
    rest: RestRule | None = None
