"""A planner's own dispatch policy: the least loaded of the nearby stations.

Run it with ``rescue-sim run scenarios/quick.yaml --policy least_loaded:LeastLoadedNearby``
with this folder on PYTHONPATH.
"""

from __future__ import annotations

from typing import Any

from sim.model.dispatch import DispatchView, Order, Van
from sim.model.dispatch.policies import NearestStation


class LeastLoadedNearby(NearestStation):
    """Of the ``nearby`` nearest open stations, the one with the most idle vans.

    Ties go to the nearer station, so with idle vans everywhere this is the published
    nearest-station rule; under load it spreads orders over neighbouring stations.
    """

    name = "least_loaded_nearby"

    def __init__(self, nearby: int = 3, **options: Any) -> None:
        super().__init__(**options)
        if nearby < 1:
            raise ValueError("nearby must be at least 1")
        self.nearby = nearby

    def assign(self, order: Order, view: DispatchView) -> Van | None:
        stations = [station for station, _km in view.open_candidates(order)[: self.nearby]]
        # max() keeps the first of equals: the nearest station wins ties.
        best = max(stations, key=lambda station: len(view.idle_at[station]))
        return self._give_to(best, order, view)
