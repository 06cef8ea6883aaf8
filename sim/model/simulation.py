"""The SimPy model: hotline -> dispatch policy -> station -> van -> repair or tow.

One :class:`Model` runs one replication on one :class:`~sim.model.demand.CallStream`. The
lifecycle is explicit: build (``__init__``) -> ``run()`` -> ``finalize()`` (close open
intervals at the horizon) -> the records. Nothing random is drawn here: every random
input comes from the call stream, so two policies run on one stream see the same calls.
Complaints are worked afterwards (:mod:`sim.model.complaints`): they do not feed back.

Every rule the model applies is written once, elsewhere, and called: distances and
drive times in :class:`~sim.model.travel.TravelModel` and :mod:`sim.model.geo`, the
arrival promise in :meth:`~sim.model.dispatch.DispatchView.arrival_promise` (which also
works out each call's promise from its nearest station for all calls at once, before the
run), the agents in :class:`~sim.model.hotline.Hotline`.

Speed (docs/architecture.md section 5; PERFORMANCE.md has the numbers). A national year is some
700 000 calls, so the per-call path is kept lean, without changing any result:

* the shortcuts around SimPy's machinery, in :mod:`sim.model.engine` (the only module
  that touches its internals): the run loop is ``env.run`` with ``step`` spelt out;
  calls are served by workers, generators that resume themselves and serve call after
  call, not a :class:`simpy.Process` per call; timeouts are scheduled without
  ``Timeout.__init__``, and the time they fire is known when they are made, and a
  worker schedules its one timeout again for each of its waits; workshop bays are a
  lean ``simpy.Resource``;
* stream columns are read, and record columns written, through memoryviews, which deal
  in plain Python numbers instead of boxing a numpy scalar on every access;
* what a call reads from the stream, with what those values decide alone (a fix on
  site, a missing part, the nearest station's promise), comes as one packed row, made
  with numpy for a block of calls at a time (:class:`CallRows`);
* the distance from the owning station, computed for the promise, is reused when the
  van drives from that very spot or back to it;
* constants are looked up once per run, not once per call.

None of this changes the order in which anything happens: every event is scheduled at
the same point, with the same time and priority, relative to every other, as plain SimPy
would, so a run gives the same records to the last bit (tests/test_golden_trace.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from functools import partial
from typing import Any, cast

import numpy as np
import simpy

from sim.model.call_rows import STREAM_COLUMNS, CallRows, Columns
from sim.model.demand import CallStream
from sim.model.dispatch import DispatchPolicy, DispatchView, Order, Van, resolve_policy
from sim.model.dispatch.base import Contractor
from sim.model.engine import (
    Bays,
    CallProcess,
    CallSource,
    CallWorker,
    Resume,
    Timer,
    make_sleep,
    make_wait,
    new_timer,
    run_until,
)
from sim.model.geo import great_circle_km
from sim.model.hotline import Hotline
from sim.model.network import Network
from sim.model.records import (
    ABANDONED,
    IDLE,
    ON_SITE,
    REMOTE,
    REPAIRED,
    RETURNING,
    TO_SITE,
    CallRecords,
    RelocationLog,
    UnitLog,
)
from sim.model.relocation import Relocator, check_roster_without_moveup, moves_vans
from sim.model.roster import NextOrder, VanRoster
from sim.model.scenario import Scenario
from sim.model.travel import PromiseTable, TravelModel

MIN_PER_H = 60.0

_new_order = object.__new__


class ModelInvariantError(AssertionError):
    """The model reached a state it must never reach (a bug, not a user error)."""


class _CallOrder(Order):
    """The :class:`Order` for call ``call`` of a model's stream, built without ``__init__``.

    The same attributes, but the candidate rows (numpy views of the stream) are made only
    if a policy reads them (nearest_station reads ``nearest`` instead), and the event only
    when first asked for (only a queued order's is). Making an event schedules nothing,
    so when it is made changes nothing. Built in :meth:`Model._serve_calls`, which sets the
    other attributes; tests/test_engine_shortcuts.py checks that every attribute
    ``Order.__init__`` sets is there, with the value it would have.
    """

    __slots__ = ("_event", "_model")

    _model: Model
    _event: simpy.Event | None

    @property
    def candidates(self) -> np.ndarray:  # type: ignore[override]
        rows: np.ndarray = self._model.stream.candidates[self.call]
        return rows

    @property
    def candidate_km(self) -> np.ndarray:  # type: ignore[override]
        km: np.ndarray = self._model.stream.candidate_km[self.call]
        return km

    @property
    def event(self) -> simpy.Event:  # type: ignore[override]
        event = self._event
        if event is None:
            event = self._event = self._model.env.event()
        return event


class Model:
    """One replication of a scenario on a drawn call stream."""

    def __init__(
        self,
        scenario: Scenario,
        network: Network,
        stream: CallStream,
        policy: DispatchPolicy | None = None,
    ) -> None:
        self.scenario = scenario
        self.network = network
        self.stream = stream
        self.horizon_h = scenario.horizon.hours
        self.env = simpy.Environment()
        self.records = CallRecords(len(stream))
        self.unit_log = UnitLog()
        self.travel = TravelModel(scenario.travel)
        self.promises = PromiseTable(scenario.promises.arrival)
        station_van = network.van_station
        self.vans = [
            Van(v, int(s), float(network.station_lat[s]), float(network.station_lon[s]))
            for v, s in enumerate(station_van)
        ]
        self.view = DispatchView(self.env, scenario, network, self.vans, self.travel, self.promises)
        self.view.speed_factor_at = self._speed_factor_at
        self.view.drive_factor = self._drive_factor
        self.view.use_stream(stream)
        # Made only when the scenario has a roster: without one, no roster work at all.
        self.roster = (
            VanRoster(self.env, scenario, network, self.view, self.vans, self.unit_log)
            if scenario.roster is not None
            else None
        )
        for van in self.vans:
            if self.roster is not None and not self.roster.on_duty[van.id]:
                self.roster.stand_down(van, 0.0)  # off duty from the start: not idle
                continue
            self.view.idle_at[van.station].append(van)
            self.unit_log.log(0.0, van.id, IDLE, -1)
        self.view.idle_count = sum(map(len, self.view.idle_at))
        if policy is None:
            policy_cls = resolve_policy(scenario.dispatch.policy)
            policy = policy_cls(**scenario.dispatch.options)
        check_roster_without_moveup(scenario.roster is not None, type(policy))
        self.policy = policy
        self.policy.setup(self.view)
        # The policy's choice of a free van's next order, bound once (a roster wraps it).
        self._next_order: NextOrder = policy.next_order

        self.agents_by_hour = scenario.hotline.agents_by_hour
        self._prioritise_hotline = self.policy.prioritise_hotline
        self.hotline = Hotline(self.env, self.agents_by_hour[0], self._prioritise_hotline)
        self._bays: dict[int, Bays] = {}
        self._active_surges: list[int] = []
        # How many active surges hold each station shut: it opens again when the last ends.
        self._shut_by = np.zeros(network.n_stations, dtype=np.int64)
        self._started = False
        self._finalized = False

        # Per-scenario constants looked up once, not per call.
        demand = scenario.demand
        self._fix_p = [f.on_site_fix_probability for f in demand.fault_classes]
        self._part_p = [f.part_missing_probability for f in demand.fault_classes]
        self._priority = [s.priority for s in demand.segments]
        # What a dispatcher expects a job to keep a van on site (mean repair, plus the
        # mean wait for a part when one is missing), by fault class.
        self._expected_on_site_h = [
            f.repair_time_min.mean / 60.0
            + f.on_site_fix_probability * f.part_missing_probability * f.part_delay_h.mean
            for f in demand.fault_classes
        ]
        ops = scenario.stations
        self._expected_turnout_h = (
            ops.turnout_day_min.mean / 60.0,
            ops.turnout_night_min.mean / 60.0,
        )
        contractors = scenario.contractors
        self._contractor_speed = contractors.speed_factor
        repair = scenario.promises.repair
        self._repair_promise = [
            (repair[f.name].hours, repair[f.name].counted_from == "arrival")
            for f in demand.fault_classes
        ]
        self._night = (scenario.stations.night_start_h, scenario.stations.night_end_h)
        self._night_by_hour = [self._is_night(float(hour)) for hour in range(24)]
        self._tow_speed = scenario.stations.tow_speed_kmh
        hotline = scenario.hotline
        self._max_attempts = hotline.max_attempts
        self._redial_p = hotline.redial_probability
        self._remote_share = hotline.remote_diagnosis_share
        # The same values as network.station_lat/lon, as Python floats.
        self._station_lat: list[float] = network.station_lat.tolist()
        self._station_lon: list[float] = network.station_lon.tolist()

        # Fast element access to the stream (read) and the records (written in place).
        attempt_columns = (
            stream.handling_h,
            stream.patience_h,
            stream.redial_u,
            stream.redial_delay_h,
        )
        per_attempt = {column.shape for column in attempt_columns}
        if len(per_attempt) != 1 or stream.patience_h.shape[1] < self._max_attempts:
            raise ValueError(
                f"per-attempt stream columns must all have shape (n, >= {self._max_attempts}), "
                f"got {sorted(per_attempt)}"
            )
        self._attempt_stride = stream.patience_h.shape[1]
        # Typed Any: the columns are attributes set by name (no __getattr__ to declare them:
        # a class with one loses CPython's fast attribute access).
        self._in = cast(Any, Columns({name: getattr(stream, name) for name in STREAM_COLUMNS}))
        self._out = cast(Any, Columns(self.records.columns(), writable=True))
        # The unit log's pack and write, bound once: a log entry is write(pack(...)).
        self._log_pack = self.unit_log.pack
        self._log_write = self.unit_log.write
        self._drive_h = self.travel.drive_h
        self._arrival_promise = self.view.arrival_promise
        # Each call's row of what it reads after the hotline (see call_rows.ROW_FIELDS).
        self._rows = CallRows(stream, self._fix_p, self._part_p, self.view.nearest_promises())
        # Calls are started in stream order up to the first one at or after the horizon,
        # each at its time, by a worker (see sim.model.engine.CallSource).
        late = np.flatnonzero(np.asarray(stream.t_call_h) >= self.horizon_h)
        n_calls = int(late[0]) if len(late) else len(stream)
        # The call times through a memoryview, not as a list: a list would hand out its
        # floats a little faster (the source reads about three a call), but would hold 32
        # bytes a call for the whole run (some 23 MB for a national year).
        self._source = CallSource(self.env, self._in.t_call_h, n_calls, self._serve_calls)
        self._wait = make_wait(self.env)
        self._sleep = make_sleep(self.env)
        # The callback of each van's drive home, made once per van, not once per trip.
        self._home_callbacks = [partial(self._van_home, van) for van in self.vans]
        # Each van's own timeout for its drives home, scheduled again for each (a van
        # drives home from one job at a time; see sim.model.engine.Timer); made at its
        # first drive home (a national network has thousands of vans).
        self._home_timers: list[Timer | None] = [None] * len(self.vans)
        # Move-up (sim.model.relocation): None unless the policy has a move-up hook.
        self.relocations = RelocationLog()
        self._relocator = (
            Relocator(
                self.env,
                self.view,
                self.policy,
                self.travel,
                self.unit_log,
                self.relocations,
                self._wait,
                self._home_callbacks,
                scenario.dispatch.review_interval_h,
            )
            if moves_vans(type(self.policy))
            else None
        )

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the processes that drive the run (once)."""
        if self._started:
            return
        self._started = True
        env = self.env
        # Calls at time zero start after the other processes' first steps, as a process
        # started first would have started them; the rest come from the source's timeouts.
        at_zero = self._source.release_first()
        env.process(self._shift_changes())
        for s in range(len(self.scenario.surges)):
            env.process(self._surge(s))
        if self._relocator is not None:
            self._relocator.start()
        if self.roster is not None:  # it makes the two van decisions from now on
            self._next_order, self._van_idle = self.roster.start(  # type: ignore[method-assign, assignment]
                self._next_order, self._van_idle
            )
        self._source.start_urgently(at_zero)

    def advance(self, until_h: float) -> None:
        """Simulate up to ``until_h`` (at most the horizon); lets a caller show progress."""
        self.start()
        run_until(self.env, min(until_h, self.horizon_h))  # env.run(until=...), leaner

    def run(self) -> Model:
        """Simulate until the horizon."""
        self.advance(self.horizon_h)
        return self

    def finalize(self) -> CallRecords:
        """Close what is open at the horizon and check the records."""
        if not self._finalized:
            self._finalized = True
            # Busy spells are closed by the utilisation KPI at the horizon; record the
            # hotline queue integral up to the horizon for Little's law.
            self.hotline.settle()
            self._check_invariants()
        return self.records

    # ------------------------------------------------------------------ processes

    def _shift_changes(self) -> Generator[simpy.Event, Any, None]:
        env = self.env
        hour = 0
        while True:
            yield env.timeout(1.0)
            hour += 1
            extra = sum(self.scenario.surges[s].extra_agents for s in self._active_surges)
            self.hotline.set_agents(self.agents_by_hour[hour % 24] + extra)

    def _surge(self, s: int) -> Generator[simpy.Event, Any, None]:
        surge = self.scenario.surges[s]
        env = self.env
        if surge.start_h > env.now:
            yield env.timeout(surge.start_h - env.now)
        self._active_surges.append(s)
        net = self.network
        distance = np.array(
            [
                great_circle_km(lat, lon, surge.region.center_lat, surge.region.center_lon)
                for lat, lon in zip(net.station_lat, net.station_lon, strict=True)
            ]
        )
        inside = np.flatnonzero(distance <= surge.region.radius_km)
        n_shut = round(surge.stations_shut_fraction * len(inside))
        # The stations nearest the centre of the disaster are the ones that shut.
        shut = inside[np.argsort(distance[inside], kind="stable")[:n_shut]]
        self._shut_by[shut] += 1
        self._set_open(shut, False)
        self.hotline.set_agents(self.hotline.on_duty + surge.extra_agents)
        yield env.timeout(surge.duration_h)
        self._active_surges.remove(s)
        self._shut_by[shut] -= 1
        # A station another active surge also shut stays shut until that one ends.
        self._set_open(shut[self._shut_by[shut] == 0], True)
        self.hotline.set_agents(max(0, self.hotline.on_duty - surge.extra_agents))

    def _set_open(self, stations: np.ndarray, is_open: bool) -> None:
        view = self.view
        for station in stations:
            if view.station_open[station] == is_open:
                continue
            view.station_open[station] = is_open
            # A shut station's idle vans stand down; they return to service when it opens.
            view.idle_count += len(view.idle_at[station]) * (1 if is_open else -1)
        view.all_open = bool(view.station_open.all())

    def _speed_factor_at(self, lat: float, lon: float) -> float:
        """The active surges' speed factors at a point (1 outside every surge region)."""
        return self._drive_factor(lat, lon, lat, lon)

    def _drive_factor(self, lat1: float, lon1: float, lat2: float, lon2: float) -> float:
        """The speed factor of a drive from (lat1, lon1) to (lat2, lon2) decided now.

        Each active surge slows the drive by its factor when the drive starts or ends in
        its region (once, when both do): the drive out to a breakdown, the drive back to
        base, the tow and a move-up drive alike.
        """
        factor = 1.0
        for s in self._active_surges:
            surge = self.scenario.surges[s]
            region = surge.region
            radius = region.radius_km
            c_lat, c_lon = region.center_lat, region.center_lon
            if (
                great_circle_km(lat1, lon1, c_lat, c_lon) <= radius
                or great_circle_km(lat2, lon2, c_lat, c_lon) <= radius
            ):
                factor *= surge.speed_factor
        return factor

    def _is_night(self, t_h: float) -> bool:
        hour = int(t_h) % 24
        start, end = self._night
        return hour >= start or hour < end if start > end else start <= hour < end

    # ------------------------------------------------------------------ one call

    def _serve_calls(self) -> CallWorker:
        """A worker: serves calls one after another, each from the first ring to the repair.

        A generator that resumes itself (the protocol is in :mod:`sim.model.engine`):
        before each ``yield`` it hands ``resume`` to the event it waits for. At the end of
        a call it hands ``resume`` back to the source, which sends it the number of its
        next call (``t_call``, the source's time then: see CallSource). The time after a
        wait is the due time the engine's ``sleep`` returned, or ``env.now`` after other
        events. An exception propagates out of :meth:`run`.
        """
        source = self._source
        resume = source.resume
        # The worker's one timeout for all its waits (see sim.model.engine.Timer).
        timer = new_timer(self.env, resume)
        spare = source.spare
        rows = self._rows
        sleep = self._sleep
        s = self._in
        rec = self._out
        hotline = self.hotline
        view = self.view
        legs = view.legs  # drives by the travel matrix, if the network has one
        while True:
            i = yield  # the number of the next call, sent by the source
            t_call = source.t_call_h
            # What the call reads after the hotline (see call_rows.ROW_FIELDS): read here,
            # at its start, since calls start in order and a later call may move the rows
            # to the next block.
            if i >= rows.end:  # (a call before the block cannot start: calls start in order)
                rows.load(i)
            (
                remote_u,
                segment,
                lat,
                lon,
                nearest,
                contact_delay_h,
                fault,
                noise,
                turnout_day_h,
                turnout_night_h,
                return_noise,
                fixable,
                part_missing,
                on_site_h,
                nearest_km,
                nearest_promise_h,
            ) = rows.read((i - rows.first) * CallRows.SIZE)

            # 1. Hotline: wait for an agent; an impatient caller hangs up and may redial.
            row = i * self._attempt_stride  # this call's first element in per-attempt columns
            if hotline.answer_at_once():  # most calls: what the loop below would record
                rec.attempts[i] = 1
                rec.answered_h[i] = t_call
                rec.hotline_wait_h[i] = 0.0  # now - now
                rec.hotline_wait_total_h[i] = 0.0
                handling = s.handling_h[row]
                rec.handling_h[i] = handling
                now = sleep(timer, handling)
                yield
            else:  # the caller waits, hangs up, may redial: rarer, so a generator of its own
                handled = yield from self._queue_for_agent(i, t_call, row, resume, timer)
                if handled is None:  # abandoned: the end of the call
                    spare.append(resume)
                    continue
                now = handled
            hotline.release()

            if remote_u < self._remote_share:
                rec.final_state[i] = REMOTE
                rec.repaired_h[i] = now
                spare.append(resume)  # the end of the call
                continue

            # 2. Dispatch: the policy picks the station and a van now, or queues the order.
            # Order(i, lat, lon, t_call, now, segment, priority, candidates, candidate_km,
            # event), spelt out here, once per call (see _CallOrder).
            order = _new_order(_CallOrder)
            order.call = i
            order.lat = lat
            order.lon = lon
            order.t_call_h = t_call  # env.now at the call's start: see CallSource
            order.dispatched_h = now
            order.segment = segment
            order.priority = self._priority[segment]
            order.nearest = nearest  # candidates[0], as a Python int
            order.station = -1
            order._event = None
            order._model = self
            van = self.policy.assign(order, view)
            rec.dispatched_h[i] = now
            rec.station[i] = order.station
            # The promise, and the station it is measured from: its distance is kept for the
            # van's drives below, to the site and home, when they start or end there.
            if view.all_open:  # self._arrival_promise(order), for the usual case: the nearest's
                promise_station, promise_km, rec.arrival_promise_h[i] = (
                    nearest,
                    nearest_km,
                    nearest_promise_h,
                )
            else:
                promise_station, promise_km, rec.arrival_promise_h[i] = self._arrival_promise(order)
            rec.promise_km[i] = promise_km
            station_lat = self._station_lat[promise_station]
            station_lon = self._station_lon[promise_station]
            rec.contacted_h[i] = now + contact_delay_h
            promise_h, from_arrival = self._repair_promise[fault]
            if not from_arrival:
                rec.repair_due_h[i] = t_call + promise_h
            if van is None:
                given = order.event  # triggered with the van when the order's turn comes
                given.callbacks.append(resume)
                yield
                van = cast(Van, given.value)  # what the order's event was triggered with
                now = self.env.now

            # 3. The van turns out (unless already on the road) and drives to the site; or a
            # local shop's mechanic does (no network van involved).
            rec.assigned_h[i] = now
            if type(van) is Contractor:
                # The shop is near the breakdown: the factor there.
                speed_factor = self._speed_factor_at(lat, lon) if self._active_surges else 1.0
                rec.contractor[i] = True
                departed = now + van.delay_h
                road_km, drive = self.travel.trip(
                    van.distance_km, departed, noise, self._contractor_speed * speed_factor
                )
                rec.departed_h[i] = departed
                rec.road_km[i] = road_km
                arrived = sleep(timer, van.delay_h + drive)
                yield
                network_van = None  # the rest of the job involves no network van
            else:
                network_van = van
                if van.call != -1:
                    raise ModelInvariantError(
                        f"van {van.id} sent to call {i} while serving call {van.call}"
                    )
                van_id = van.id
                # van.at_base, spelt out: a property is a Python call, and this runs per call.
                from_base = van.lat == van.base_lat and van.lon == van.base_lon
                speed_factor = (
                    self._drive_factor(van.lat, van.lon, lat, lon) if self._active_surges else 1.0
                )
                van.call = i
                van.state = TO_SITE
                # self.unit_log.log(now, van_id, TO_SITE, i), spelt out (as below).
                self._log_write(self._log_pack(now, van_id, TO_SITE, i))
                rec.van[i] = van_id
                night = self._night_by_hour[int(now) % 24]
                # A van coming straight from another job is already on the road: no turn-out.
                turnout = (turnout_night_h if night else turnout_day_h) if from_base else 0.0
                departed = now + turnout
                if legs is not None and from_base:  # by the travel matrix (sim.model.travel_matrix)
                    road_km, drive = legs.trip(
                        van.station, i, lat, lon, departed, noise, speed_factor
                    )
                elif van.lat == station_lat and van.lon == station_lon:
                    # The van stands where the promise was measured from: the same distance.
                    road_km = promise_km
                    drive = self._drive_h(promise_km, departed, noise, speed_factor)
                else:
                    gc = great_circle_km(van.lat, van.lon, lat, lon)
                    road_km, drive = self.travel.trip(gc, departed, noise, speed_factor)
                rec.departed_h[i] = departed
                rec.road_km[i] = road_km
                # What the dispatcher expects (means, not the drawn times): turn-out, the
                # drive without its noise, the job.
                expected_turnout = self._expected_turnout_h[night] if from_base else 0.0
                van.expected_free_h = (
                    now + expected_turnout + drive / noise + self._expected_on_site_h[fault]
                )
                arrived = sleep(timer, turnout + drive)
                yield
                van.lat = lat
                van.lon = lon
                van.state = ON_SITE
                self._log_write(self._log_pack(arrived, van_id, ON_SITE, i))

            # 4. On site: repair, or diagnose and call a tow; a missing part adds its wait.
            rec.arrived_h[i] = arrived
            if from_arrival:
                rec.repair_due_h[i] = arrived + promise_h
            if part_missing:  # (fixable, part_missing and on_site_h: see call_rows.ROW_FIELDS)
                rec.part_missing[i] = True
            now = sleep(timer, on_site_h)
            yield
            rec.van_released_h[i] = now

            if network_van is not None:  # the van is free: the next waiting order, or home
                van = network_van
                van.call = -1
                next_order = self._next_order(van, view)
                if next_order is not None:
                    next_order.event.succeed(van)
                elif self._relocator is not None and self._relocator.after_job(
                    van, i, now, return_noise
                ):
                    pass  # the policy's move-up sent it to a new base
                elif van.lat == van.base_lat and van.lon == van.base_lon:  # van.at_base, spelt out
                    self._van_idle(van, now)
                else:
                    van.state = RETURNING
                    self._log_write(self._log_pack(now, van_id, RETURNING, -1))
                    base_lat = van.base_lat
                    base_lon = van.base_lon
                    back_factor = (
                        self._drive_factor(lat, lon, base_lat, base_lon)
                        if self._active_surges
                        else 1.0
                    )
                    if legs is not None:  # by the travel matrix: the way out, taken back
                        back_h = legs.trip(
                            van.station, i, lat, lon, now, return_noise, back_factor
                        )[1]
                    else:
                        if base_lat == station_lat and base_lon == station_lon:
                            # Home is where the promise was measured from: the same distance (the
                            # haversine is symmetric to the bit), so the same road km.
                            road = promise_km
                        else:  # a van serving another station's order
                            road = self.travel.road_km(
                                great_circle_km(lat, lon, base_lat, base_lon)
                            )
                        back_h = self._drive_h(road, now, return_noise, back_factor)
                    home = self._home_timers[van_id]
                    if home is None:
                        home = self._home_timers[van_id] = new_timer(
                            self.env, self._home_callbacks[van_id]
                        )
                    if home.callbacks is None:  # its last drive home is over (always,
                        sleep(home, back_h)  # unless a policy sent a van on its way home)
                    else:  # that drive is still queued: a timeout of its own
                        self._wait(back_h, self._home_callbacks[van_id])

            if fixable:
                rec.fixed_on_site[i] = True
                rec.repaired_h[i] = now
                rec.final_state[i] = REPAIRED
            else:
                yield from self._tow(i, order, now, resume, timer)
            spare.append(resume)  # the end of the call: ready for the next

    def _queue_for_agent(
        self, i: int, t_call: float, row: int, resume: Resume, timer: Timer
    ) -> Generator[None, simpy.Event, float | None]:
        """Call ``i`` waits for an agent: the time its handling ends, or None if abandoned."""
        s = self._in
        rec = self._out
        hotline = self.hotline
        sleep = self._sleep
        env = self.env
        now = t_call
        max_attempts = self._max_attempts
        priority = self._priority[s.segment[i]] if self._prioritise_hotline else 0
        wait_total = 0.0
        for attempt in range(max_attempts):
            rec.attempts[i] = attempt + 1
            started = now
            answered = hotline.arrive(s.patience_h[row + attempt], priority)
            if answered is not None:
                answered.callbacks.append(resume)
                yield
                now = env.now
                wait_total += now - started
                if not answered.value:  # hung up before an agent answered
                    if attempt + 1 < max_attempts and s.redial_u[row + attempt] < self._redial_p:
                        now = sleep(timer, s.redial_delay_h[row + attempt])
                        yield
                        continue
                    rec.abandoned_h[i] = now
                    rec.hotline_wait_total_h[i] = wait_total
                    rec.final_state[i] = ABANDONED
                    return None
            rec.answered_h[i] = now
            rec.hotline_wait_h[i] = now - started
            rec.hotline_wait_total_h[i] = wait_total
            handling = s.handling_h[row + attempt]
            rec.handling_h[i] = handling
            now = sleep(timer, handling)
            yield
            return now
        return None  # (not reached: the last attempt is answered or abandoned)

    def _tow(
        self,
        i: int,
        order: Order,
        now: float,
        resume: Callable[[simpy.Event], None],
        timer: Timer,
    ) -> CallProcess:
        """Towed to the owning station's workshop (from ``now``) and repaired in a bay."""
        rec = self._out
        s = self._in
        env = self.env
        sleep = self._sleep
        rec.towed[i] = True
        workshop = self._workshop_station(order)
        legs = self.view.legs
        if legs is None:
            tow_km = self.view.station_road_km(workshop, order.lat, order.lon)
        else:  # by the travel matrix
            tow_km = legs.road_km(workshop, order.call, order.lat, order.lon, now)
        rec.tow_km[i] = tow_km
        tow_speed = self._tow_speed
        if self._active_surges:  # a tow from or to a surge region goes at its speed
            tow_speed *= self._drive_factor(
                order.lat, order.lon, self._station_lat[workshop], self._station_lon[workshop]
            )
        # A record is written when its moment has come, never ahead: a run can end first.
        tow_arrived = sleep(timer, s.tow_wait_h[i] + tow_km / tow_speed)
        yield
        rec.tow_arrived_h[i] = tow_arrived
        bays = self._bays.get(workshop)
        if bays is None:
            bays = self._bays[workshop] = Bays(
                env, capacity=max(1, int(self.network.workshop_bays[workshop]))
            )
        bays.request().callbacks.append(resume)
        yield
        rec.workshop_start_h[i] = env.now
        repaired = sleep(timer, s.workshop_h[i])
        yield
        bays.release()
        rec.repaired_h[i] = repaired
        rec.final_state[i] = REPAIRED

    def _workshop_station(self, order: Order) -> int:
        """The owning station when it has bays, else the nearest open one that does."""
        bays = self.network.workshop_bays
        if bays[order.station] > 0:
            return order.station
        for station, _ in self.view.open_candidates(order):
            if bays[station] > 0:
                return station
        return order.station

    # ------------------------------------------------------------------ vans

    def _van_home(self, van: Van, event: simpy.Event) -> None:
        van.lat, van.lon = van.base_lat, van.base_lon
        order = self._next_order(van, self.view)
        if order is not None:
            order.event.succeed(van)
            return
        self._van_idle(van, self.env.now)

    def _van_idle(self, van: Van, now: float) -> None:
        van.state = IDLE
        self._log_write(self._log_pack(now, van.id, IDLE, -1))
        view = self.view
        view.idle_at[van.station].append(van)
        # all_open first: it spares indexing the numpy array in the usual case.
        if view.all_open or view.station_open[van.station]:
            view.idle_count += 1

    # ------------------------------------------------------------------ checks

    def _check_invariants(self) -> None:
        rec = self.records
        order = (
            "dispatched_h",
            "assigned_h",
            "departed_h",
            "arrived_h",
            "van_released_h",
        )
        t_call = self.stream.t_call_h
        previous = np.where(np.isnan(rec.answered_h), t_call, rec.answered_h)
        # Tolerance: a call starts at now + (t - now), which can differ from t by an ulp.
        if np.any(rec.answered_h < t_call - 1e-9):
            raise ModelInvariantError("a call was answered before it was made")
        for name in order:
            column = getattr(rec, name)
            known = ~np.isnan(column)
            if np.any(column[known] < previous[known] - 1e-9):
                raise ModelInvariantError(f"{name} earlier than the step before it")
            previous = np.where(known, column, previous)
        done = ~np.isnan(rec.repaired_h)
        if np.any(rec.repaired_h[done] < t_call[done] - 1e-9):
            raise ModelInvariantError("a call was repaired before it was made")
        if math.isnan(self.hotline.queue_area_h):
            raise ModelInvariantError("hotline accounting broke")
