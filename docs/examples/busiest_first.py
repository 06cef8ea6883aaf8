"""A planner's own move-up: a free van goes where the calls per van have been highest.

Run it with ``rescue-sim compare scenarios/moveup_bench.yaml --policy nearest_idle_van
--policy busiest_first:BusiestFirst`` with this folder on PYTHONPATH.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.model.dispatch import DispatchView, Order, Van
from sim.model.dispatch.policies import NearestStationWithBackup
from sim.model.geo import great_circle_km_array


class BusiestFirst(NearestStationWithBackup):
    """Cross-station support; a van free after a job moves to the busiest station in reach.

    Busiest: the most calls seen so far per van based there (counting the van itself
    as based there). A van moves, within ``reach_km``, only to a station busier than
    its own; so vans drift to where the calls are, in proportion to them.
    """

    name = "busiest_first"

    def __init__(self, reach_km: float = 150.0, **options: Any) -> None:
        super().__init__(**options)
        if reach_km < 0:
            raise ValueError("reach_km must not be negative")
        self.reach_km = reach_km
        self.calls_seen: dict[int, int] = {}

    def assign(self, order: Order, view: DispatchView) -> Van | None:
        self.calls_seen[order.nearest] = self.calls_seen.get(order.nearest, 0) + 1
        return super().assign(order, view)

    def on_van_idle(self, view: DispatchView, van: Van) -> int | None:
        def calls_per_van(station: int) -> float:
            vans = len(view.vans_of[station]) + (station != van.station)
            return self.calls_seen.get(station, 0) / vans

        net = view.network
        km = great_circle_km_array(net.station_lat, net.station_lon, van.lat, van.lon)
        nearby = [int(s) for s in np.flatnonzero(km <= self.reach_km) if view.station_open[s]]
        best = max(nearby, key=calls_per_van, default=van.station)
        return best if calls_per_van(best) > calls_per_van(van.station) else None
