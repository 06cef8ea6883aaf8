"""The SimPy model: hotline -> dispatch policy -> station -> van -> repair or tow.

One :class:`Model` runs one replication on one :class:`~sim.demand.CallStream`. The
lifecycle is explicit: build (``__init__``) -> ``run()`` -> ``finalize()`` (close open
intervals at the horizon) -> the records. Nothing random is drawn here: every random
input comes from the call stream, so two policies run on one stream see the same calls.
Complaints are worked afterwards (:mod:`sim.complaints`): they do not feed back.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from sim.demand import CallStream
from sim.dispatch import DispatchPolicy, DispatchView, Order, Van, resolve_policy
from sim.dispatch.base import IDLE, ON_SITE, RETURNING, TO_SITE
from sim.geo import great_circle_km
from sim.hotline import Hotline
from sim.network import Network
from sim.records import ABANDONED, REMOTE, REPAIRED, CallRecords, UnitLog
from sim.scenario import Scenario
from sim.travel import PromiseTable, TravelModel

MIN_PER_H = 60.0


class ModelInvariantError(AssertionError):
    """The model reached a state it must never reach (a bug, not a user error)."""


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
        for van in self.vans:
            self.view.idle_at[van.station].append(van)
            self.unit_log.log(0.0, van.id, IDLE, -1)
        self.view.idle_count = len(self.vans)
        if policy is None:
            policy_cls = resolve_policy(scenario.dispatch.policy)
            policy = policy_cls(**scenario.dispatch.options)
        self.policy = policy
        self.policy.setup(self.view)

        self.agents_by_hour = scenario.hotline.agents_by_hour
        self.hotline = Hotline(self.env, self.agents_by_hour[0])
        self._bays: dict[int, simpy.Resource] = {}
        self._active_surges: list[int] = []
        self._started = False
        self._finalized = False

        # Per-scenario constants looked up once, not per call.
        demand = scenario.demand
        self._fix_p = [f.on_site_fix_probability for f in demand.fault_classes]
        self._part_p = [f.part_missing_probability for f in demand.fault_classes]
        self._priority = [s.priority for s in demand.segments]
        repair = scenario.promises.repair
        self._repair_promise = [
            (repair[f.name].hours, repair[f.name].counted_from == "arrival")
            for f in demand.fault_classes
        ]
        self._night = (scenario.stations.night_start_h, scenario.stations.night_end_h)
        self._tow_speed = scenario.stations.tow_speed_kmh

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the processes that drive the run (once)."""
        if self._started:
            return
        self._started = True
        env = self.env
        env.process(self._source())
        env.process(self._shift_changes())
        for s in range(len(self.scenario.surges)):
            env.process(self._surge(s))

    def advance(self, until_h: float) -> None:
        """Simulate up to ``until_h`` (at most the horizon); lets a caller show progress."""
        self.start()
        self.env.run(until=min(until_h, self.horizon_h))

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
            self.hotline._account()
            self._check_invariants()
        return self.records

    # ------------------------------------------------------------------ processes

    def _source(self) -> Generator[simpy.Event, Any, None]:
        env = self.env
        times = self.stream.t_call_h
        horizon = self.horizon_h
        for i in range(len(times)):
            t = float(times[i])
            if t >= horizon:
                break
            if t > env.now:
                yield env.timeout(t - env.now)
            env.process(self._call(i))

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
        n_shut = int(round(surge.stations_shut_fraction * len(inside)))
        # The stations nearest the centre of the disaster are the ones that shut.
        shut = inside[np.argsort(distance[inside], kind="stable")[:n_shut]]
        self._set_open(shut, False)
        self.hotline.set_agents(self.hotline.on_duty + surge.extra_agents)
        yield env.timeout(surge.duration_h)
        self._active_surges.remove(s)
        self._set_open(shut, True)
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
        factor = 1.0
        for s in self._active_surges:
            surge = self.scenario.surges[s]
            region = surge.region
            if great_circle_km(lat, lon, region.center_lat, region.center_lon) <= region.radius_km:
                factor *= surge.speed_factor
        return factor

    def _is_night(self, t_h: float) -> bool:
        hour = int(t_h) % 24
        start, end = self._night
        return hour >= start or hour < end if start > end else start <= hour < end

    # ------------------------------------------------------------------ one call

    def _call(self, i: int) -> Generator[simpy.Event, Any, None]:
        env = self.env
        s = self.stream
        rec = self.records
        hotline = self.hotline
        hcfg = self.scenario.hotline
        t_call = env.now

        # 1. Hotline: wait for an agent; an impatient caller hangs up and may redial.
        wait_total = 0.0
        for attempt in range(hcfg.max_attempts):
            rec.attempts[i] = attempt + 1
            started = env.now
            answered = hotline.arrive(float(s.patience_h[i, attempt]))
            if answered is not None:
                got_agent = yield answered
                wait_total += env.now - started
                if not got_agent:
                    if attempt + 1 < hcfg.max_attempts and s.redial_u[i, attempt] < hcfg.redial_probability:
                        yield env.timeout(float(s.redial_delay_h[i, attempt]))
                        continue
                    rec.abandoned_h[i] = env.now
                    rec.hotline_wait_total_h[i] = wait_total
                    rec.final_state[i] = ABANDONED
                    return
            rec.answered_h[i] = env.now
            rec.hotline_wait_h[i] = env.now - started
            rec.hotline_wait_total_h[i] = wait_total
            handling = float(s.handling_h[i, attempt])
            rec.handling_h[i] = handling
            yield env.timeout(handling)
            hotline.release()
            break

        if s.remote_u[i] < hcfg.remote_diagnosis_share:
            rec.final_state[i] = REMOTE
            rec.repaired_h[i] = env.now
            return

        # 2. Dispatch: the policy picks the station and a van now, or queues the order.
        now = env.now
        segment = int(s.segment[i])
        order = Order(
            i,
            float(s.lat[i]),
            float(s.lon[i]),
            t_call,
            now,
            segment,
            self._priority[segment],
            s.candidates[i],
            s.candidate_km[i],
            env.event(),
        )
        van = self.policy.assign(order, self.view)
        station = order.station
        rec.dispatched_h[i] = now
        rec.station[i] = station
        promise_km = self.view.station_road_km(station, order.lat, order.lon)
        rec.promise_km[i] = promise_km
        rec.arrival_promise_h[i] = self.promises.arrival_h(promise_km)
        rec.contacted_h[i] = now + float(s.contact_delay_h[i])
        promise_h, from_arrival = self._repair_promise[int(s.fault[i])]
        if not from_arrival:
            rec.repair_due_h[i] = t_call + promise_h
        if van is None:
            van = yield order.event

        # 3. The van turns out (unless already on the road) and drives to the site.
        yield from self._serve_on_site(i, van, order)

    def _serve_on_site(self, i: int, van: Van, order: Order) -> Generator[simpy.Event, Any, None]:
        env = self.env
        s = self.stream
        rec = self.records
        now = env.now
        if van.call != -1:
            raise ModelInvariantError(f"van {van.id} sent to call {i} while serving call {van.call}")
        from_base = van.at_base
        van.call = i
        van.state = TO_SITE
        self.unit_log.log(now, van.id, TO_SITE, i)
        rec.van[i] = van.id
        rec.assigned_h[i] = now
        if from_base:
            turnout = float(s.turnout_night_h[i] if self._is_night(now) else s.turnout_day_h[i])
        else:
            turnout = 0.0
        departed = now + turnout
        road_km = self.travel.road_km(great_circle_km(van.lat, van.lon, order.lat, order.lon))
        speed_factor = self._speed_factor_at(order.lat, order.lon) if self._active_surges else 1.0
        drive = self.travel.drive_h(road_km, departed, float(s.drive_noise[i]), speed_factor)
        rec.departed_h[i] = departed
        rec.road_km[i] = road_km
        yield env.timeout(turnout + drive)

        # 4. On site: repair, or diagnose and call a tow.
        arrived = env.now
        rec.arrived_h[i] = arrived
        van.lat, van.lon = order.lat, order.lon
        van.state = ON_SITE
        self.unit_log.log(arrived, van.id, ON_SITE, i)
        fault = int(s.fault[i])
        promise_h, from_arrival = self._repair_promise[fault]
        if from_arrival:
            rec.repair_due_h[i] = arrived + promise_h
        fixable = s.fix_u[i] < self._fix_p[fault]
        on_site_h = float(s.repair_h[i])
        if fixable and s.part_u[i] < self._part_p[fault]:
            rec.part_missing[i] = True
            on_site_h += float(s.part_delay_h[i])
        yield env.timeout(on_site_h)
        rec.van_released_h[i] = env.now
        self._van_free(van)

        if fixable:
            rec.fixed_on_site[i] = True
            rec.repaired_h[i] = env.now
            rec.final_state[i] = REPAIRED
            return

        # 5. Towed to the owning station's workshop and repaired in a bay.
        rec.towed[i] = True
        workshop = self._workshop_station(order)
        tow_km = self.view.station_road_km(workshop, order.lat, order.lon)
        rec.tow_km[i] = tow_km
        yield env.timeout(float(s.tow_wait_h[i]) + tow_km / self._tow_speed)
        rec.tow_arrived_h[i] = env.now
        bays = self._bays.get(workshop)
        if bays is None:
            bays = self._bays[workshop] = simpy.Resource(
                env, capacity=max(1, int(self.network.workshop_bays[workshop]))
            )
        with bays.request() as bay:
            yield bay
            rec.workshop_start_h[i] = env.now
            yield env.timeout(float(s.workshop_h[i]))
        rec.repaired_h[i] = env.now
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

    def _van_free(self, van: Van) -> None:
        """A van has finished on site: the next waiting order, or home."""
        finished = van.call
        van.call = -1
        order = self.policy.next_order(van, self.view)
        if order is not None:
            order.event.succeed(van)
            return
        now = self.env.now
        if van.at_base:
            self._van_idle(van)
            return
        van.state = RETURNING
        self.unit_log.log(now, van.id, RETURNING, -1)
        gc = great_circle_km(van.lat, van.lon, van.base_lat, van.base_lon)
        road = self.travel.road_km(gc)
        drive = self.travel.drive_h(road, now, float(self.stream.return_noise[finished]))
        self.env.timeout(drive).callbacks.append(lambda _: self._van_home(van))

    def _van_home(self, van: Van) -> None:
        van.lat, van.lon = van.base_lat, van.base_lon
        order = self.policy.next_order(van, self.view)
        if order is not None:
            order.event.succeed(van)
            return
        self._van_idle(van)

    def _van_idle(self, van: Van) -> None:
        van.state = IDLE
        self.unit_log.log(self.env.now, van.id, IDLE, -1)
        self.view.idle_at[van.station].append(van)
        if self.view.station_open[van.station]:
            self.view.idle_count += 1

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
