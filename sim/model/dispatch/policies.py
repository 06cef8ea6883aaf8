"""The built-in dispatch policies.

Each policy is a few lines of decision on top of the shared :class:`DispatchView`; the
docstring of each says the idea and where it comes from.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from typing import Any

import numpy as np

from sim.model.dispatch.base import DispatchPolicy, DispatchView, Order, Van
from sim.model.geo import great_circle_km_array


class OrderQueue:
    """Waiting orders: first come first served, or by segment priority then arrival."""

    def __init__(self, prioritised: bool) -> None:
        self.prioritised = prioritised
        self._fifo: deque[Order] = deque()
        self._heap: list[tuple[int, int, Order]] = []
        self._sequence = itertools.count()

    def push(self, order: Order) -> None:
        if self.prioritised:
            heapq.heappush(self._heap, (order.priority, next(self._sequence), order))
        else:
            self._fifo.append(order)

    def pop(self) -> Order | None:
        if self.prioritised:
            return heapq.heappop(self._heap)[2] if self._heap else None
        fifo = self._fifo
        return fifo.popleft() if fifo else None

    def __len__(self) -> int:
        return len(self._heap) if self.prioritised else len(self._fifo)


class NearestStation(DispatchPolicy):
    """The published rule: the order goes to the nearest open station and waits there.

    The hotline sends the work order to the nearest station by road (seed 002: "派单给就近
    服务站"). The station sends its first free van; if all are out, the order waits,
    first come first served, until one of that station's own vans is free, even when a
    neighbour has vans idle.
    """

    name = "nearest_station"
    prioritised = False

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._queues: dict[int, OrderQueue] = {}

    def _queue(self, station: int) -> OrderQueue:
        queue = self._queues.get(station)
        if queue is None:
            queue = self._queues[station] = OrderQueue(self.prioritised)
        return queue

    def _give_to(self, station: int, order: Order, view: DispatchView) -> Van | None:
        order.station = station
        # view.take_idle_van(station), spelt out: this runs for every order.
        idle = view.idle_at[station]
        if idle:
            view.idle_count -= 1
            return idle.pop()
        self._queue(station).push(order)
        return None

    def assign(self, order: Order, view: DispatchView) -> Van | None:
        # With every station open the nearest open station is the nearest (the usual case).
        station = order.nearest if view.all_open else view.nearest_open_station(order)
        return self._give_to(station, order, view)

    def next_order(self, van: Van, view: DispatchView) -> Order | None:
        queue = self._queues.get(van.station)
        # An empty queue pops None: no need to ask its length first.
        return None if queue is None else queue.pop()

    def waiting(self) -> int:
        return sum(len(q) for q in self._queues.values())


class Priority(NearestStation):
    """Nearest station, with fleet and special-vehicle customers ahead in every queue.

    Segment priorities come from the scenario (0 first). Both the hotline queue and each
    station's queue of orders serve the most urgent segment first, first come first
    served within a segment: the "行业客户" (fleet) service promise of seed 002.
    """

    name = "priority"
    prioritised = True
    prioritise_hotline = True


class NearestStationWithBackup(NearestStation):
    """Nearest station, unless it cannot keep the arrival promise: then cross-station support.

    The estimated arrival at each nearby open station is its expected wait for a free van
    (its vans' expected free times and its queue), the mean turn-out and the expected
    drive. When the nearest station's estimate breaks the arrival promise, the order goes
    to the station with the earliest estimate instead ("跨站支援").
    """

    name = "nearest_station_with_backup"

    def _eta_h(self, station: int, km: float, order: Order, view: DispatchView) -> float:
        queued = self._queues.get(station)
        wait = view.station_wait_h(station, len(queued) if queued else 0)
        if wait == math.inf:  # a station without vans (move-up can leave one so)
            return wait
        turnout = view.scenario.stations.turnout_day_min.mean / 60.0
        start = view.now + wait + turnout
        return start + view.station_drive_h(
            station, km, order, start, view.station_drive_factor(station, order)
        )

    def assign(self, order: Order, view: DispatchView) -> Van | None:
        candidates = view.open_candidates(order)
        if not candidates:  # every station shut: wait at the nearest, as the published rule does
            return self._give_to(order.nearest, order, view)
        nearest = candidates[0][0]
        deadline = view.arrival_deadline_h(order)
        best, best_eta = nearest, math.inf
        for station, km in candidates:
            eta = self._eta_h(station, km, order, view)
            if station == nearest and eta <= deadline:
                best = nearest
                break
            if eta < best_eta:
                best, best_eta = station, eta
        return self._give_to(best, order, view)


class NearestIdleVan(DispatchPolicy):
    """The idle van with the earliest estimated arrival, wherever it is based.

    Idle vans wait at their bases, so the earliest arrival is the nearest open station
    that has one. With no idle van anywhere the order joins one national queue and goes
    to the first van that frees up (the classic 'closest idle unit' rule of ambulance
    dispatch).
    """

    name = "nearest_idle_van"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._queue: deque[Order] = deque()

    def assign(self, order: Order, view: DispatchView) -> Van | None:
        candidates = view.open_candidates(order)
        order.station = candidates[0][0] if candidates else order.nearest
        if view.idle_count == 0:
            self._queue.append(order)
            return None
        for station, _ in candidates:
            if view.idle_at[station]:
                return view.take_idle_van(station)
        # No idle van among the nearest candidates: look at every station that has one.
        best, best_eta = None, math.inf
        for station, idle in enumerate(view.idle_at):
            if idle and view.station_open[station]:
                eta = view.estimated_arrival_h(idle[-1], order)
                if eta < best_eta:
                    best, best_eta = station, eta
        if best is None:
            self._queue.append(order)
            return None
        return view.take_idle_van(best)

    def next_order(self, van: Van, view: DispatchView) -> Order | None:
        return self._queue.popleft() if self._queue else None

    def waiting(self) -> int:
        return len(self._queue)


class Preparedness(NearestStation):
    """Least disruption: of the stations that can keep the promise, send the van whose
    absence leaves the most demand still covered.

    A station is covered while some station within ``coverage_km`` (great circle) has an
    idle van. Taking a van from station s uncovers the neighbours of s for which it was
    the last idle van in reach; among the open stations with an idle van that meet the
    arrival promise, the policy takes the one that uncovers the least demand weight, the
    nearer on ties. When none meets the promise it falls back to the nearest station.
    This is the preparedness idea of ambulance dispatch (Andersson & Värbrand 2007;
    Lee 2011).
    """

    name = "preparedness"

    def __init__(self, coverage_km: float = 60.0, **options: Any) -> None:
        super().__init__(**options)
        if coverage_km <= 0:
            raise ValueError("coverage_km must be positive")
        self.coverage_km = coverage_km
        self._neighbours: list[list[int]] = []
        self._weight: np.ndarray = np.zeros(0)

    def setup(self, view: DispatchView) -> None:
        net = view.network
        lat, lon = net.station_lat, net.station_lon
        self._neighbours = [
            np.flatnonzero(
                great_circle_km_array(lat, lon, lat[s], lon[s]) <= self.coverage_km
            ).tolist()
            for s in range(net.n_stations)
        ]
        # Demand each station stands for: its area's weight shared among the area's stations.
        area = net.station_area
        weight = np.ones(net.n_stations)
        if (area >= 0).all():
            area_weight = net.areas["population_weight"].to_numpy(float)
            per_area = np.bincount(area, minlength=len(area_weight))
            weight = area_weight[area] / per_area[area]
        self._weight = weight / weight.sum()

    def _uncovered_weight(self, station: int, view: DispatchView) -> float:
        idle_at = view.idle_at
        lost = 0.0
        for n in self._neighbours[station]:
            in_reach = 0
            for m in self._neighbours[n]:
                in_reach += len(idle_at[m])
                if in_reach > 1:
                    break
            if in_reach == 1:
                lost += self._weight[n]
        return lost

    def assign(self, order: Order, view: DispatchView) -> Van | None:
        candidates = view.open_candidates(order)
        deadline = view.arrival_deadline_h(order)
        best, best_lost = -1, math.inf
        turnout = view.scenario.stations.turnout_day_min.mean / 60.0
        for station, km in candidates:
            if not view.idle_at[station]:
                continue
            start = view.now + turnout
            eta = start + view.station_drive_h(station, km, order, start)
            if eta > deadline:
                continue
            lost = self._uncovered_weight(station, view)
            if lost < best_lost:
                best, best_lost = station, lost
        if best < 0:
            return super().assign(order, view)
        return self._give_to(best, order, view)


class ContractorOverflow(NearestStationWithBackup):
    """Own vans first; when none can keep the arrival promise, a local repair shop.

    The nearest open station takes the order when it can keep the promise. Otherwise the
    job is offered to the nearest third-party shop (seed 001: brands lean on the more
    than one million independent repair shops for mobile service). A shop that accepts
    and would arrive before the best own van gets the job, at the scenario's cost per
    job; a shop that declines, or would be later, leaves the order to the station with
    the earliest estimated arrival, as cross-station support does.
    """

    name = "contractor_overflow"

    def assign(self, order: Order, view: DispatchView) -> Van | None:
        candidates = view.open_candidates(order)
        if not candidates:  # every station shut: wait at the nearest, as the published rule does
            return self._give_to(order.nearest, order, view)
        deadline = view.arrival_deadline_h(order)
        best, best_eta = candidates[0][0], math.inf
        for station, km in candidates:
            eta = self._eta_h(station, km, order, view)
            if eta <= deadline:
                return self._give_to(station, order, view)
            if eta < best_eta:
                best, best_eta = station, eta
        shop = view.contractor_offer(order)
        if shop is not None and view.contractor_arrival_h(shop, order) < best_eta:
            order.station = candidates[0][0]  # its workshop takes the truck if it is towed
            return shop
        return self._give_to(best, order, view)
