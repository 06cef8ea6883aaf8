"""Van rosters and rest rules: which vans are on duty when, overtime and breaks.

The plan (:func:`on_duty_intervals`) is worked out from the scenario and the network
before the run, for every van at once: each station's vans on duty by hour of the
horizon (the sum of the shifts that cover the hour, as the hotline's agents, at most the
station's vans), its first k vans by number being the k on duty. The same function gives
the tests and the KPIs the plan the run was held to.

At run time (:class:`VanRoster`, made by the model only when the scenario has a roster,
so that a run without one does no roster work at all):

* at a shift's end an idle van goes off duty at once; a van at work finishes the job,
  drives back and goes off duty at its station (the time past the shift's end is
  overtime); a van on a break goes off duty;
* at a shift's start a van comes on duty at its station and takes a waiting order, as
  a van back from a job does;
* with a rest rule, a break falls due ``max_working_h`` after the van came on duty or
  ended its last break (on-call time at the station counts as working time); an idle
  van takes it at once, a busy one when it is done and back at its station, so that
  the break is late. Breaks are taken at the van's own station; the units table records
  each one (state ``on_break``), its time and, through the van, its place.

The model hands the roster two decisions by replacing two bound callables when it starts
(``_next_order``: a van due off duty or due a break takes no new order; ``_van_idle``: a
van coming free at its station goes off duty or on its break instead of waiting idle),
so the per-call path of a run without a roster is untouched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from sim.model.records import IDLE, OFF_DUTY, ON_BREAK
from sim.model.roster_config import EVERY_DAY, WEEKDAY_NAMES, RosterConfig, VanShift
from sim.model.scenario import Scenario
from sim.model.schema import HOURS_PER_DAY

if TYPE_CHECKING:
    from sim.model.dispatch.base import DispatchView, Order, Van
    from sim.model.network import Network
    from sim.model.records import UnitLog

NextOrder = Callable[["Van", "DispatchView"], "Order | None"]
VanIdle = Callable[["Van", float], None]

HOLIDAY = len(WEEKDAY_NAMES)  # the day type of a holiday, after the seven weekdays
_DAY_TYPE = {name: k for k, name in enumerate(EVERY_DAY)}


def day_types(scenario: Scenario, n_days: int) -> np.ndarray:
    """The type of days -1 .. n_days - 1 (0 Monday .. 6 Sunday, 7 holiday), day -1 first.

    Day -1 is there because a night shift started the evening before day 0 covers its
    first hours.
    """
    horizon = scenario.horizon
    days = np.arange(-1, n_days)
    types = (days + horizon.start_weekday) % 7
    roster = scenario.roster
    if roster is not None and roster.holidays and horizon.start_date is not None:
        start = horizon.start_date
        holidays = set(roster.holidays)
        is_holiday = [start + timedelta(days=int(d)) in holidays for d in days]
        types = np.where(is_holiday, HOLIDAY, types)
    return types


def _shift_mask(shift: VanShift, types: np.ndarray, n_hours: int) -> np.ndarray:
    """Whether ``shift`` covers each hour 0 .. n_hours - 1 of the horizon."""
    worked = np.isin(types, [_DAY_TYPE[d] for d in shift.days])
    first_h = (np.flatnonzero(worked) - 1) * HOURS_PER_DAY + shift.start_h  # types[0] is day -1
    hours = (first_h[:, None] + np.arange(shift.length_h)[None, :]).ravel()
    mask = np.zeros(n_hours, dtype=bool)
    mask[hours[(hours >= 0) & (hours < n_hours)]] = True
    return mask


def station_shifts(roster: RosterConfig, network: Network) -> list[tuple[VanShift, ...]]:
    """The shifts each station works: its own, or the roster's for every station.

    The network has checked, when it was built, that every station named is one of its own.
    """
    shifts = [roster.shifts] * network.n_stations
    index = {str(name): s for s, name in enumerate(network.station_name)}
    for own in roster.stations:
        for name in own.stations:
            shifts[index[name]] = own.shifts
    return shifts


def on_duty_counts(scenario: Scenario, network: Network) -> np.ndarray:
    """Vans on duty at each station (rows) in each hour of the horizon (columns)."""
    roster = scenario.roster
    n_hours = math.ceil(scenario.horizon.hours)
    vans = network.vans_per_station.astype(np.int64)
    if roster is None:
        return np.repeat(vans[:, None], n_hours, axis=1)
    types = day_types(scenario, n_hours // HOURS_PER_DAY + 1)
    masks: dict[int, np.ndarray] = {}
    counts = np.zeros((network.n_stations, n_hours), dtype=np.int64)
    for station, shifts in enumerate(station_shifts(roster, network)):
        n = int(vans[station])
        for shift in shifts:
            mask = masks.get(id(shift))
            if mask is None:
                mask = masks[id(shift)] = _shift_mask(shift, types, n_hours)
            counts[station] += shift.vans_of(n) * mask
        np.minimum(counts[station], n, out=counts[station])
    return counts


def on_duty_intervals(scenario: Scenario, network: Network) -> list[np.ndarray]:
    """Each van's rostered spells on duty as rows [start_h, end_h), within the horizon."""
    counts = on_duty_counts(scenario, network)
    horizon_h = scenario.horizon.hours
    out: list[np.ndarray] = []
    for station, n in enumerate(network.vans_per_station.tolist()):
        for rank in range(int(n)):
            on = np.concatenate(([False], counts[station] > rank, [False]))
            edges = np.flatnonzero(np.diff(on.astype(np.int8)))
            spells = edges.reshape(-1, 2).astype(np.float64)
            spells = np.minimum(spells, horizon_h)
            out.append(spells[spells[:, 0] < spells[:, 1]])
    return out


class VanRoster:
    """The roster of one run: shift changes, off-duty vans, breaks (see the module doc)."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        network: Network,
        view: DispatchView,
        vans: Sequence[Van],
        unit_log: UnitLog,
    ) -> None:
        self.env = env
        self.view = view
        self.vans = vans
        self.horizon_h = scenario.horizon.hours
        roster = scenario.roster
        assert roster is not None
        self.intervals = on_duty_intervals(scenario, network)
        self.on_duty = [bool(len(s)) and s[0, 0] == 0.0 for s in self.intervals]
        rest = roster.rest
        self._max_working_h = rest.max_working_h if rest is not None else None
        self._break_h = rest.break_min / 60.0 if rest is not None else 0.0
        n_vans = len(self.intervals)
        self._break_due = [False] * n_vans
        self._rest_end_h = [0.0] * n_vans  # when each van last came on duty or off a break
        # Bumped whenever a van's duty or break changes: a timer made before is stale.
        self._generation = [0] * n_vans
        self._log = unit_log.log
        self._plain_next_order: NextOrder | None = None
        self._plain_van_idle: VanIdle | None = None

    # ------------------------------------------------------------------ hooks

    def start(self, next_order: NextOrder, van_idle: VanIdle) -> tuple[NextOrder, VanIdle]:
        """Start the shift changes; the model's two van decisions, as the roster makes them.

        ``next_order`` (the policy's choice of a free van's next order) and ``van_idle``
        (a van free at its station waits idle) are the model's own; the model uses the
        two returned in their place.
        """
        self._plain_next_order = next_order
        self._plain_van_idle = van_idle
        for van in self.vans:
            if self.on_duty[van.id]:
                self._rest_ended(van)
        self.env.process(self._shift_changes())
        return self.next_order, self.van_idle

    def next_order(self, van: Van, view: DispatchView) -> Order | None:
        """The policy's next order for a free van, unless it is due off duty or a break."""
        if not self.on_duty[van.id] or self._break_due[van.id]:
            return None
        assert self._plain_next_order is not None
        return self._plain_next_order(van, view)

    def van_idle(self, van: Van, now: float) -> None:
        """A van free at its station with no order: off duty, on its break, or idle."""
        if not self.on_duty[van.id]:
            self.stand_down(van, now)
        elif self._break_due[van.id]:
            self._start_break(van, now)
        else:
            assert self._plain_van_idle is not None
            self._plain_van_idle(van, now)

    def stand_down(self, van: Van, now: float) -> None:
        """The van goes off duty (it is not among the idle vans)."""
        van.state = OFF_DUTY
        self._log(now, van.id, OFF_DUTY, -1)

    # ------------------------------------------------------------------ shifts

    def _shift_changes(self) -> Generator[simpy.Event, Any, None]:
        changes = sorted(
            (float(t), not is_start, v)  # by time; at one time starts, then ends
            for v, spells in enumerate(self.intervals)
            for t_start, t_end in spells.tolist()
            for t, is_start in ((t_start, True), (t_end, False))
            if 0.0 < t < self.horizon_h
        )
        vans = self.vans
        for t, is_end, v in changes:
            if t > self.env.now:
                yield self.env.timeout(t - self.env.now)
            if is_end:
                self._shift_end(vans[v])
            else:
                self._shift_start(vans[v])

    def _shift_end(self, van: Van) -> None:
        v = van.id
        self.on_duty[v] = False
        self._break_due[v] = False
        self._generation[v] += 1
        if van.state == IDLE:
            self._leave_idle(van)
            self.stand_down(van, self.env.now)
        elif van.state == ON_BREAK:
            self.stand_down(van, self.env.now)
        # A van at work finishes the job first: van_idle stands it down when it is back.

    def _shift_start(self, van: Van) -> None:
        self.on_duty[van.id] = True
        if van.state == OFF_DUTY:
            self._rest_ended(van)
            self._available(van)
        else:  # still at work, on overtime from the last shift: it stays on, unrested
            self._schedule_break(van, self._rest_end_h[van.id] + (self._max_working_h or 0.0))

    # ------------------------------------------------------------------ breaks

    def _rest_ended(self, van: Van) -> None:
        """The van is fresh from now: its next break falls due max_working_h later."""
        now = self.env.now
        self._rest_end_h[van.id] = now
        self._schedule_break(van, now + (self._max_working_h or 0.0))

    def _schedule_break(self, van: Van, due_h: float) -> None:
        """The van's next break falls due at ``due_h`` (at once if that has passed)."""
        v = van.id
        self._generation[v] += 1
        self._break_due[v] = False
        if self._max_working_h is None:
            return
        if due_h <= self.env.now:
            self._break_due[v] = True
            return
        timer = self.env.timeout(due_h - self.env.now)
        timer.callbacks.append(partial(self._break_falls_due, van, self._generation[v]))

    def _break_falls_due(self, van: Van, generation: int, _: simpy.Event) -> None:
        if generation != self._generation[van.id]:
            return
        self._break_due[van.id] = True
        if van.state == IDLE:
            self._leave_idle(van)
            self._start_break(van, self.env.now)

    def _start_break(self, van: Van, now: float) -> None:
        v = van.id
        self._break_due[v] = False
        self._generation[v] += 1
        van.state = ON_BREAK
        self._log(now, v, ON_BREAK, -1)
        timer = self.env.timeout(self._break_h)
        timer.callbacks.append(partial(self._break_ends, van, self._generation[v]))

    def _break_ends(self, van: Van, generation: int, _: simpy.Event) -> None:
        if generation != self._generation[van.id]:
            return  # the shift ended during the break
        self._rest_ended(van)
        self._available(van)

    # ------------------------------------------------------------------ vans

    def _available(self, van: Van) -> None:
        """A van at its station ready for work: a waiting order, or idle."""
        assert self._plain_next_order is not None and self._plain_van_idle is not None
        order = self._plain_next_order(van, self.view)
        if order is not None:
            order.event.succeed(van)
        else:
            self._plain_van_idle(van, self.env.now)

    def _leave_idle(self, van: Van) -> None:
        view = self.view
        idle = view.idle_at[van.station]
        if van in idle:
            idle.remove(van)
            if view.all_open or view.station_open[van.station]:
                view.idle_count -= 1


def rostered_hours(intervals: Sequence[np.ndarray], start_h: float, end_h: float) -> float:
    """Van-hours on duty by the roster within [start_h, end_h]."""
    total = 0.0
    for spells in intervals:
        if len(spells):
            ends = np.clip(spells[:, 1], start_h, end_h)
            total += float((ends - np.clip(spells[:, 0], start_h, end_h)).sum())
    return total
