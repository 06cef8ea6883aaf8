"""The scenario schema: frozen, typed objects with every default filled.

The clock of the model runs in hours. Every field that holds a duration or a distance
carries its unit in its name (``handling_time_min``, ``arrival_promise_h``, ``scatter_km``).
Defaults are the sourced figures of docs/architecture.md; a scenario file only states
what differs.

Reading YAML, mapping a mistake to its file, line and dotted field, and changing fields
by their dotted paths live in :mod:`sim.model.loading`; this module only says what a
valid scenario is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from sim.model.cost_config import CostConfig
from sim.model.distributions import (
    MAX_CV,
    Distribution,
    Exponential,
    Fixed,
    LogNormal,
    Uniform,
)
from sim.model.road_classes import RoadDemand
from sim.model.roster_config import RosterConfig
from sim.model.schema import (
    HOURS_PER_DAY,
    MAX_AGENTS,
    MAX_CALLS_PER_DAY,
    MAX_DAYS,
    MAX_REPLICATIONS,
    MAX_STATIONS,
    MAX_VANS,
    FieldError,
    FrozenModel,
    check_shares,
    resolve_file,
)

# --------------------------------------------------------------------------- horizon


class Horizon(FrozenModel):
    """How long one replication runs, and how much of its start is discarded.

    The warm-up is whole days, so that a KPI window (warm-up to horizon) never starts
    mid-day and every hour of the day is observed equally often: a value given in
    fractions of a day is rounded to the nearest whole day, halves up (0.5 -> 1, 0.4 -> 0).
    """

    days: float = Field(30.0, gt=0, le=MAX_DAYS)
    warmup_days: float = Field(
        1.0, ge=0, description="whole days; a fraction is rounded to the nearest day, halves up"
    )
    start_date: date | None = Field(
        None, description="the calendar date of day 0; None: day 0 is a Monday"
    )

    @property
    def start_weekday(self) -> int:
        """Day 0's weekday, Monday 0 to Sunday 6: where the day-of-week profile starts."""
        return 0 if self.start_date is None else self.start_date.weekday()

    @field_validator("warmup_days")
    @classmethod
    def _whole_days(cls, v: float) -> float:
        # floor(v + 0.5), not round(): Python rounds halves to even (round(2.5) == 2).
        return float(math.floor(v + 0.5))

    @model_validator(mode="after")
    def _warmup_shorter(self) -> Horizon:
        if self.warmup_days >= self.days:
            raise FieldError(
                ("warmup_days",),
                f"warmup_days must be shorter than days (warm-up rounded to whole days: "
                f"{self.warmup_days:g}, days: {self.days:g})",
            )
        return self

    @property
    def hours(self) -> float:
        return self.days * HOURS_PER_DAY

    @property
    def warmup_h(self) -> float:
        return self.warmup_days * HOURS_PER_DAY


class Geography(FrozenModel):
    """Which part of China the scenario covers (all of it by default)."""

    provinces: tuple[str, ...] | None = Field(
        None, description="Chinese province names, e.g. 河南省; None means the whole country."
    )
    include_municipalities: bool = True

    @field_validator("provinces")
    @classmethod
    def _known(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return v
        from sim.model.reference import known_provinces

        known = set(known_provinces())
        for i, name in enumerate(v):
            if name not in known:
                raise FieldError(
                    (i,), f"unknown province {name!r}; use the Chinese name, e.g. 河南省"
                )
        return v


# --------------------------------------------------------------------------- network


class GeneratedStations(FrozenModel):
    """Stations placed in prefectures by demand weight."""

    count: int = Field(gt=0, le=MAX_STATIONS)
    coverage_target: float = Field(0.92, ge=0, le=1)
    workshop_bays: int = Field(2, ge=0, le=MAX_VANS)
    spread_km: float = Field(20.0, ge=0, description="scatter of a prefecture's extra stations")


class StationsConfig(FrozenModel):
    """Either generate stations, or load them from a CSV (id, lat, lon[, vans, workshop_bays])."""

    generate: GeneratedStations | None = None
    csv: Path | None = None

    _resolve = field_validator("csv")(resolve_file)

    @model_validator(mode="after")
    def _exactly_one(self) -> StationsConfig:
        if (self.generate is None) == (self.csv is None):
            raise ValueError("give exactly one of 'generate' or 'csv'")
        return self


class VansConfig(FrozenModel):
    """How many vans, and how they are shared among stations."""

    total: int | None = Field(
        None, gt=0, le=MAX_VANS, description="None: take the vans column of the CSV"
    )
    allocation: Literal["demand", "equal"] = "demand"
    min_per_station: int = Field(1, ge=0, le=MAX_VANS)


class NetworkConfig(FrozenModel):
    stations: StationsConfig = StationsConfig(generate=GeneratedStations(count=1050))
    vans: VansConfig = VansConfig(total=2000)


# --------------------------------------------------------------------------- demand

# ADAC/AA truck figures: about 55% of jobs fall between 16:00 and 08:00.
DEFAULT_HOUR_PROFILE: tuple[float, ...] = (
    2.0, 1.6, 1.4, 1.3, 1.4, 1.8, 2.8, 4.0, 5.4, 6.0, 6.0, 5.6,
    5.2, 5.4, 5.6, 5.8, 6.0, 6.0, 5.4, 4.6, 3.8, 3.2, 2.8, 2.4,
)  # fmt: skip
# Monday is the weekday peak (AA review); Sunday the quietest day.
DEFAULT_DAY_PROFILE: tuple[float, ...] = (1.18, 1.04, 1.0, 1.0, 1.02, 0.92, 0.84)


class Fleet(FrozenModel):
    vehicles: int = Field(gt=0, le=1_000_000_000)
    calls_per_vehicle_year: float = Field(gt=0, le=36_500)

    @model_validator(mode="after")
    def _bounded(self) -> Fleet:
        calls_per_day = self.vehicles * self.calls_per_vehicle_year / 365.0
        if calls_per_day > MAX_CALLS_PER_DAY:
            raise FieldError(
                ("vehicles",),
                f"{calls_per_day:,.0f} calls a day; at most {MAX_CALLS_PER_DAY:,} are allowed",
            )
        return self


class SpatialDemand(FrozenModel):
    """Where breakdowns happen: prefecture seats by population weight, or a CSV of points."""

    csv: Path | None = Field(None, description="lat, lon, weight columns; None: prefectures")
    scatter_km: float = Field(25.0, ge=0, description="spread of breakdowns around a point")
    roads: RoadDemand | None = Field(None, description="calls on an extract's roads, no scatter")

    _resolve = field_validator("csv")(resolve_file)

    @model_validator(mode="after")
    def _one_kind(self) -> SpatialDemand:
        if self.csv is not None and self.roads is not None:
            raise FieldError(("roads",), "give 'csv' or 'roads', not both")
        return self


class FaultClass(FrozenModel):
    name: str = Field(min_length=1)
    share: float = Field(ge=0, le=1)
    on_site_fix_probability: float = Field(ge=0, le=1)
    repair_time_min: Distribution
    part_missing_probability: float = Field(0.0, ge=0, le=1)
    part_delay_h: Distribution = Fixed(dist="fixed", value=2.0)
    workshop_repair_h: Distribution = LogNormal(dist="lognormal", mean=8.0, cv=0.8)


class Segment(FrozenModel):
    name: str = Field(min_length=1)
    share: float = Field(ge=0, le=1)
    priority: int = Field(1, ge=0, description="0 is served first by priority policies")


def _lognormal(mean: float, cv: float) -> LogNormal:
    return LogNormal(dist="lognormal", mean=mean, cv=cv)


# The three fault classes of the hotline's triage, one row each: share of calls, chance
# of a fix on site, repair minutes (mean; cv 0.6), chance a part is missing, its delay
# in hours (mean, cv), and hours in the workshop after a tow (mean; cv 0.8).
DEFAULT_FAULTS: tuple[FaultClass, ...] = tuple(
    FaultClass(
        name=name,
        share=share,
        on_site_fix_probability=fix,
        repair_time_min=_lognormal(repair_min, 0.6),
        part_missing_probability=missing,
        part_delay_h=_lognormal(*delay_h),
        workshop_repair_h=_lognormal(workshop_h, 0.8),
    )
    for name, share, fix, repair_min, missing, delay_h, workshop_h in (
        ("routine", 0.6, 0.97, 50, 0.05, (2.0, 0.5), 8.0),
        ("general", 0.3, 0.88, 110, 0.12, (3.0, 0.6), 8.0),
        ("major", 0.1, 0.55, 200, 0.25, (5.0, 0.6), 16.0),
    )
)
DEFAULT_SEGMENTS: tuple[Segment, ...] = (
    Segment(name="individual", share=0.55, priority=1),
    Segment(name="fleet", share=0.35, priority=0),
    Segment(name="special_vehicle", share=0.10, priority=0),
)


class TraceColumns(FrozenModel):
    """Which column of a trace CSV holds what.

    ``time``, ``lat`` and ``lon`` must be there. An optional column left unset is read
    when the file has a column of its conventional name (``fault``, ``segment``,
    ``priority``, ``id``, ``answered``, ``arrived``, ``repaired``); a name given here
    must be in the file.
    """

    time: str = Field("time", min_length=1)
    lat: str = Field("lat", min_length=1)
    lon: str = Field("lon", min_length=1)
    fault: str | None = None
    segment: str | None = None
    priority: str | None = None
    id: str | None = None
    answered: str | None = None
    arrived: str | None = None
    repaired: str | None = None


class TraceConfig(FrozenModel):
    """Recorded calls replayed instead of drawn ones (docs/demand.md, "Replaying a trace").

    Times are timestamps read with ``time_format`` (None: ISO 8601; ``hours``: numbers,
    hours since day 0); a timestamp without an offset is local time in ``time_zone``.
    Day 0 begins at local midnight of ``start`` (default ``horizon.start_date``, else the
    day of the earliest call). ``bootstrap: days`` draws each day of the horizon from
    the trace's days, with replacement, per replication.
    """

    file: Path
    columns: TraceColumns = TraceColumns()
    time_format: str | None = Field(
        None,
        min_length=1,
        description="a strftime format for pandas.to_datetime; None: ISO 8601; hours",
    )
    time_zone: str = "Asia/Shanghai"
    start: date | None = None
    bootstrap: Literal["none", "days"] = "none"
    outside_horizon: Literal["drop", "error"] = Field(
        "drop", description="calls before day 0 or past the horizon: dropped, or an error"
    )

    _resolve = field_validator("file")(resolve_file)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}; e.g. Asia/Shanghai or UTC") from None
        return v


class DemandConfig(FrozenModel):
    """How many calls, when, where, and of what kind."""

    calls_per_day: float | None = Field(None, gt=0, le=MAX_CALLS_PER_DAY)
    fleet: Fleet | None = None
    hour_of_day_profile: tuple[float, ...] = DEFAULT_HOUR_PROFILE
    day_of_week_profile: tuple[float, ...] = DEFAULT_DAY_PROFILE
    spatial: SpatialDemand = SpatialDemand()
    fault_classes: tuple[FaultClass, ...] = Field(DEFAULT_FAULTS, min_length=1)
    segments: tuple[Segment, ...] = Field(DEFAULT_SEGMENTS, min_length=1)
    trace: TraceConfig | None = Field(None, description="recorded calls replayed instead")

    @field_validator("hour_of_day_profile")
    @classmethod
    def _24_hours(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        return _profile(v, HOURS_PER_DAY, "hours")

    @field_validator("day_of_week_profile")
    @classmethod
    def _7_days(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        return _profile(v, 7, "days (Monday first)")

    @field_validator("fault_classes")
    @classmethod
    def _fault_shares(cls, v: tuple[FaultClass, ...]) -> tuple[FaultClass, ...]:
        check_shares(v, "fault class")
        return v

    @field_validator("segments")
    @classmethod
    def _segment_shares(cls, v: tuple[Segment, ...]) -> tuple[Segment, ...]:
        check_shares(v, "segment")
        return v

    @model_validator(mode="after")
    def _one_volume(self) -> DemandConfig:
        if (self.calls_per_day is None) == (self.fleet is None):
            raise ValueError("give exactly one of 'calls_per_day' or 'fleet'")
        return self

    @property
    def mean_calls_per_day(self) -> float:
        if self.calls_per_day is not None:
            return self.calls_per_day
        assert self.fleet is not None
        return self.fleet.vehicles * self.fleet.calls_per_vehicle_year / 365.0


def _profile(values: tuple[float, ...], length: int, what: str) -> tuple[float, ...]:
    if len(values) != length:
        raise ValueError(f"needs {length} values, one per {what}; got {len(values)}")
    if any(v < 0 for v in values) or sum(values) <= 0:
        raise ValueError("values must be non-negative with a positive sum")
    return values


# --------------------------------------------------------------------------- hotline


class Shift(FrozenModel):
    """Agents on duty from start_h to end_h (wrapping past midnight when end_h <= start_h)."""

    start_h: int = Field(ge=0, lt=24)
    end_h: int = Field(ge=0, le=24)
    agents: int = Field(ge=0, le=MAX_AGENTS)

    def covers(self, hour: int) -> bool:
        if self.end_h > self.start_h:
            return self.start_h <= hour < self.end_h
        return hour >= self.start_h or hour < self.end_h


DEFAULT_SHIFTS: tuple[Shift, ...] = (
    Shift(start_h=0, end_h=8, agents=4),
    Shift(start_h=8, end_h=16, agents=9),
    Shift(start_h=16, end_h=24, agents=7),
)


class HotlineConfig(FrozenModel):
    """The 24-hour hotline: agents by shift, handling, patience, redials, remote fixes."""

    shifts: tuple[Shift, ...] = Field(DEFAULT_SHIFTS, min_length=1)
    handling_time_min: Distribution = LogNormal(dist="lognormal", mean=6.0, cv=0.6)
    patience_min: Distribution | None = Exponential(dist="exponential", mean=4.0)
    redial_probability: float = Field(0.6, ge=0, le=1)
    redial_delay_min: Distribution = Exponential(dist="exponential", mean=5.0)
    max_attempts: int = Field(3, ge=1, le=20)
    remote_diagnosis_share: float = Field(0.05, ge=0, le=1)
    service_level_s: float = Field(20.0, gt=0)

    @field_validator("shifts")
    @classmethod
    def _full_cover(cls, v: tuple[Shift, ...]) -> tuple[Shift, ...]:
        uncovered = [
            h for h in range(HOURS_PER_DAY) if sum(s.agents for s in v if s.covers(h)) == 0
        ]
        if uncovered:
            raise ValueError(f"the hotline must be staffed 24 h; no agent at hours {uncovered}")
        return v

    @property
    def agents_by_hour(self) -> tuple[int, ...]:
        return tuple(
            sum(s.agents for s in self.shifts if s.covers(h)) for h in range(HOURS_PER_DAY)
        )


# --------------------------------------------------------------------------- travel


class DistanceBand(FrozenModel):
    """A band of road distance; ``up_to_km`` None means 'and beyond'."""

    up_to_km: float | None = Field(None, gt=0)


class SpeedBand(DistanceBand):
    speed_kmh: float = Field(gt=0)


def _check_bands(bands: Sequence[DistanceBand]) -> None:
    limits = [b.up_to_km for b in bands]
    if limits[-1] is not None:
        raise ValueError("the last band must be open-ended (up_to_km: null)")
    finite = [x for x in limits[:-1] if x is not None]
    if len(finite) != len(limits) - 1 or finite != sorted(set(finite)):
        raise ValueError("up_to_km must increase and only the last band may be open")


class TravelConfig(FrozenModel):
    """Road distance from great-circle distance, and speed by band, hour and chance."""

    detour_factor: float = Field(1.32, ge=1.0)
    short_trip_detour_extra: float = Field(0.15, ge=0)
    short_trip_scale_km: float = Field(10.0, gt=0)
    speed_bands: tuple[SpeedBand, ...] = (
        SpeedBand(up_to_km=15, speed_kmh=30),
        SpeedBand(up_to_km=60, speed_kmh=50),
        SpeedBand(up_to_km=None, speed_kmh=70),
    )
    hourly_speed_factor: tuple[float, ...] = (
        1.1, 1.1, 1.1, 1.1, 1.1, 1.05, 1.0, 0.85, 0.8, 0.9, 0.95, 0.95,
        0.95, 0.95, 0.95, 0.95, 0.9, 0.8, 0.8, 0.9, 1.0, 1.05, 1.1, 1.1,
    )  # fmt: skip
    noise_cv: float = Field(0.25, ge=0, le=MAX_CV)
    matrix: Path | None = Field(
        None, description="road km and minutes by station, prefecture and hour (docs/travel.md)"
    )

    _resolve = field_validator("matrix")(resolve_file)

    @field_validator("speed_bands")
    @classmethod
    def _bands(cls, v: tuple[SpeedBand, ...]) -> tuple[SpeedBand, ...]:
        _check_bands(v)
        return v

    @field_validator("hourly_speed_factor")
    @classmethod
    def _hours(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(x <= 0 for x in v):
            raise ValueError("speed factors must be positive")
        return _profile(v, HOURS_PER_DAY, "hour")


# --------------------------------------------------------------------------- stations


class StationOpsConfig(FrozenModel):
    """What happens at a station once it has the order."""

    contact_delay_min: Distribution = LogNormal(dist="lognormal", mean=8.0, cv=0.7)
    turnout_day_min: Distribution = LogNormal(dist="lognormal", mean=15.0, cv=0.6)
    turnout_night_min: Distribution = LogNormal(dist="lognormal", mean=30.0, cv=0.6)
    night_start_h: int = Field(20, ge=0, lt=24)
    night_end_h: int = Field(7, ge=0, lt=24)
    tow_wait_h: Distribution = LogNormal(dist="lognormal", mean=1.5, cv=0.6)
    tow_speed_kmh: float = Field(40.0, gt=0)


# --------------------------------------------------------------------------- promises


class ArrivalPromise(DistanceBand):
    hours: float = Field(gt=0)


class RepairPromise(FrozenModel):
    hours: float = Field(gt=0)
    counted_from: Literal["arrival", "call"] = Field("call", alias="from")


class PromisesConfig(FrozenModel):
    """What the network promises the customer (GAC Hino / FAW / JAC commitments)."""

    contact_min: float = Field(30.0, gt=0)
    arrival: tuple[ArrivalPromise, ...] = (
        ArrivalPromise(up_to_km=100, hours=3),
        ArrivalPromise(up_to_km=300, hours=5),
        ArrivalPromise(up_to_km=None, hours=10),
    )
    repair: dict[str, RepairPromise] = Field(
        default_factory=lambda: {
            "routine": RepairPromise(hours=4, **{"from": "arrival"}),
            "general": RepairPromise(hours=24, **{"from": "call"}),
            "major": RepairPromise(hours=72, **{"from": "call"}),
        }
    )

    @field_validator("arrival")
    @classmethod
    def _bands(cls, v: tuple[ArrivalPromise, ...]) -> tuple[ArrivalPromise, ...]:
        _check_bands(v)
        return v


# --------------------------------------------------------------------------- complaints


class ComplaintProbabilities(FrozenModel):
    late_arrival: float = Field(0.30, ge=0, le=1)
    late_repair: float = Field(0.30, ge=0, le=1)
    late_contact: float = Field(0.05, ge=0, le=1)
    abandoned: float = Field(0.02, ge=0, le=1)
    served_on_time: float = Field(0.005, ge=0, le=1)


class ComplaintDesk(FrozenModel):
    staff: int = Field(2, ge=1, le=MAX_AGENTS)
    start_h: int = Field(8, ge=0, lt=24)
    end_h: int = Field(20, ge=0, le=24)

    @model_validator(mode="after")
    def _day_window(self) -> ComplaintDesk:
        if self.end_h <= self.start_h:
            raise ValueError("desk hours must satisfy start_h < end_h within one day")
        return self


class ComplaintsConfig(FrozenModel):
    """Complaints by cause, worked by a desk: ``work_time_h`` occupies a desk agent (in desk
    hours); ``resolution_delay_h`` then passes before closure without occupying anyone
    (waiting on a station's answer, a refund, a re-inspection)."""

    probability: ComplaintProbabilities = ComplaintProbabilities()
    desk: ComplaintDesk = ComplaintDesk()
    work_time_h: Distribution = LogNormal(dist="lognormal", mean=1.0, cv=1.0)
    resolution_delay_h: Distribution = LogNormal(dist="lognormal", mean=8.0, cv=1.5)
    closure_deadline_h: float = Field(48.0, gt=0)


# --------------------------------------------------------------------------- contractors


class ContractorsConfig(FrozenModel):
    """Local third-party repair shops that can take a job the network's vans cannot keep.

    Brands lean on the independent shops (seed 001: "100多万家维修力量") for mobile and
    roadside service. Shops are scattered at ``shops_per_1000_km2`` (a planar Poisson
    process, so the distance to the nearest shop is Rayleigh-distributed); a shop
    accepts an offered job with ``accept_probability``, needs ``response_delay_h`` to
    set off and drives at ``speed_factor`` of a service van's speed.
    """

    shops_per_1000_km2: float = Field(2.0, gt=0)
    accept_probability: float = Field(0.6, ge=0, le=1)
    response_delay_h: Distribution = LogNormal(dist="lognormal", mean=0.75, cv=0.6)
    speed_factor: float = Field(0.8, gt=0, le=2)
    cost_per_job_cny: float = Field(600.0, ge=0)


# --------------------------------------------------------------------------- surges


class SurgeRegion(FrozenModel):
    center_lat: float = Field(ge=-90, le=90)
    center_lon: float = Field(ge=-180, le=180)
    radius_km: float = Field(gt=0)


class Surge(FrozenModel):
    """A disaster or peak: more calls in a region for a while, slower roads, shut stations.

    While it lasts, every drive that starts or ends inside the region (a van's drive out
    and back, a tow, a move-up drive) goes at ``speed_factor`` of its speed, and the
    ``stations_shut_fraction`` of the region's stations nearest its centre are shut. A
    station shut by several surges opens when the last of them ends.
    """

    name: str
    region: SurgeRegion
    start_day: float = Field(ge=0)
    duration_h: float = Field(gt=0)
    demand_multiplier: float = Field(1.0, ge=0, le=1000)
    speed_factor: float = Field(1.0, gt=0, le=1)
    stations_shut_fraction: float = Field(0.0, ge=0, le=1)
    extra_agents: int = Field(0, ge=0, le=MAX_AGENTS)

    @property
    def start_h(self) -> float:
        return self.start_day * HOURS_PER_DAY

    @property
    def end_h(self) -> float:
        return self.start_h + self.duration_h


# --------------------------------------------------------------------------- dispatch


class DispatchConfig(FrozenModel):
    """The dispatch policy by name (or ``package.module:Class``) and its options.

    The schema takes any name: whether it names a policy is checked where scenarios are
    read and changed (:mod:`sim.model.loading`), so that the schema needs no import of
    the policies, which themselves read the scenario.
    """

    policy: str = "nearest_station"
    options: dict[str, Any] = Field(default_factory=dict)
    candidates: int = Field(8, ge=1, le=64, description="nearest stations precomputed per call")
    review_interval_h: float | None = Field(
        None,
        gt=0,
        le=MAX_DAYS * HOURS_PER_DAY,
        description="hours between move-up reviews (the policy's rebalance); None: no review",
    )


# --------------------------------------------------------------------------- scenario


class Scenario(FrozenModel):
    """A whole scenario: network, demand, operations, promises and what to run."""

    name: str = "scenario"
    description: str = ""
    seed: int = Field(20220314, ge=0)
    replications: int = Field(1, ge=1, le=MAX_REPLICATIONS)
    horizon: Horizon = Horizon()
    geography: Geography = Geography()
    network: NetworkConfig = NetworkConfig()
    demand: DemandConfig = DemandConfig(calls_per_day=2000)
    hotline: HotlineConfig = HotlineConfig()
    travel: TravelConfig = TravelConfig()
    stations: StationOpsConfig = StationOpsConfig()
    promises: PromisesConfig = PromisesConfig()
    complaints: ComplaintsConfig = ComplaintsConfig()
    surges: tuple[Surge, ...] = ()
    contractors: ContractorsConfig = ContractorsConfig()
    cost: CostConfig = CostConfig()
    dispatch: DispatchConfig = DispatchConfig()
    roster: RosterConfig | None = None

    @model_validator(mode="after")
    def _holidays_need_a_calendar(self) -> Scenario:
        if self.roster is not None and self.roster.holidays and self.horizon.start_date is None:
            raise FieldError(
                ("roster", "holidays"), "holidays need a calendar: set horizon.start_date"
            )
        return self

    @model_validator(mode="after")
    def _repair_promise_per_fault(self) -> Scenario:
        faults = {f.name for f in self.demand.fault_classes}
        missing = sorted(faults - set(self.promises.repair))
        if missing:
            raise FieldError(
                ("promises", "repair"), f"no repair promise for fault classes {missing}"
            )
        return self

    @model_validator(mode="after")
    def _trace_starts_with_the_horizon(self) -> Scenario:
        trace, start_date = self.demand.trace, self.horizon.start_date
        if (
            trace is not None
            and None not in (trace.start, start_date)
            and trace.start != start_date
        ):
            raise FieldError(
                ("demand", "trace", "start"),
                f"the trace's start {trace.start} differs from horizon.start_date {start_date}",
            )
        return self

    def with_overrides(self, **changes: Any) -> Scenario:
        """A copy with top-level fields replaced, validated again."""
        data = self.model_dump(by_alias=True)
        data.update(changes)
        return Scenario.model_validate(data)


__all__ = [
    "Distribution",
    "Exponential",
    "FieldError",
    "Fixed",
    "LogNormal",
    "Scenario",
    "Uniform",
]
