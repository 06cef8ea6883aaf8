"""The built-in dispatch policies."""

from __future__ import annotations

from collections import deque
from typing import Any

from sim.dispatch.base import DispatchPolicy, DispatchView, Order, Van


class NearestStation(DispatchPolicy):
    """The published rule: the order goes to the nearest open station and waits there.

    The hotline sends the work order to the nearest station by road (seed 002: "派单至最近
    服务站"). The station sends its first free van; if all are out, the order waits,
    first come first served, until one of that station's own vans is free, even when a
    neighbour has vans idle.
    """

    name = "nearest_station"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._queues: dict[int, deque[Order]] = {}

    def assign(self, order: Order, view: DispatchView) -> Van | None:
        station = view.nearest_open_station(order)
        order.station = station
        van = view.take_idle_van(station)
        if van is None:
            self._queues.setdefault(station, deque()).append(order)
        return van

    def next_order(self, van: Van, view: DispatchView) -> Order | None:
        queue = self._queues.get(van.station)
        return queue.popleft() if queue else None

    def waiting(self) -> int:
        return sum(len(q) for q in self._queues.values())


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
        order.station = candidates[0][0] if candidates else int(order.candidates[0])
        if view.idle_count == 0:
            self._queue.append(order)
            return None
        for station, _ in candidates:
            if view.idle_at[station]:
                return view.take_idle_van(station)
        # No idle van among the nearest candidates: look at every station that has one.
        best, best_eta = None, float("inf")
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
