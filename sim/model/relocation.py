"""Move-up: idle vans sent to a new base when the dispatch policy asks for it.

The policy decides (:meth:`~sim.model.dispatch.DispatchPolicy.on_van_idle` after a job,
:meth:`~sim.model.dispatch.DispatchPolicy.rebalance` at each review); this module carries
the decision out: it checks the move, re-bases the van (its station, its home point, its
station's list of vans), logs the drive in the unit log (state ``relocating``) and in the
relocation log, and schedules the van's arrival, after which the model treats it as a van
back at base (the next waiting order, or idle there).

A model makes a :class:`Relocator` only for a policy that overrides one of the hooks
(:func:`moves_vans`), so that a run without move-up does no work here at all and
schedules no extra event: its records are those of a model without this module.

Drives. After a job the van drives from the site with the call's own drawn noise for
the drive home (the drive it makes instead of that one). A review move of an idle van
draws nothing (nothing random is drawn in the model): it takes the expected drive time,
and no turn-out. A relocating van, like a returning one, takes no order until it
arrives.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Generator, Sequence
from typing import Any

import simpy

from sim.errors import PolicyFailure, ScenarioError
from sim.model.dispatch.base import DispatchPolicy, DispatchView, Van, overrides
from sim.model.engine import Callback, Wait
from sim.model.geo import great_circle_km
from sim.model.records import IDLE, RELOCATING, RelocationLog, UnitLog
from sim.model.travel import TravelModel


class Relocator:
    """Carries out a policy's move-up decisions in one model (one replication)."""

    def __init__(
        self,
        env: simpy.Environment,
        view: DispatchView,
        policy: DispatchPolicy,
        travel: TravelModel,
        unit_log: UnitLog,
        relocations: RelocationLog,
        wait: Wait,
        arrived: Sequence[Callback],
        review_interval_h: float | None,
    ) -> None:
        self.env = env
        self.view = view
        self.policy = policy
        self.travel = travel
        self.unit_log = unit_log
        self.relocations = relocations
        self._wait = wait
        # arrived[van.id]: what the model does when the van reaches its base.
        self._arrived = arrived
        self._on_van_idle: Callable[[DispatchView, Van], int | None] | None = (
            policy.on_van_idle if overrides(policy, "on_van_idle") else None
        )
        self.review_interval_h = review_interval_h if overrides(policy, "rebalance") else None

    def start(self) -> None:
        """Start the regular review, if the scenario sets one and the policy rebalances."""
        if self.review_interval_h is not None:
            self.env.process(self._review(self.review_interval_h))

    def after_job(self, van: Van, call: int, now: float, noise: float) -> bool:
        """Ask the policy where a van free after ``call`` goes; True if it was sent away.

        False leaves the van to the model, which sends it home as usual.
        """
        if self._on_van_idle is None:
            return False
        target = self._on_van_idle(self.view, van)
        if target is None or target == van.station:
            return False
        target = self._check_target(target, "on_van_idle", van)
        road_km = self.travel.road_km(self._km_to(van, target))
        drive_h = self.travel.drive_h(road_km, now, noise, self._factor_to(van, target))
        self._send(van, target, now, road_km, drive_h, call)
        return True

    def _review(self, interval_h: float) -> Generator[simpy.Event, Any, None]:
        env = self.env
        while True:
            yield env.timeout(interval_h)
            for van, target in self.policy.rebalance(self.view):
                self._move_idle(van, target)

    def _move_idle(self, van: Van, target: int) -> None:
        view = self.view
        if not (isinstance(van, Van) and 0 <= van.id < len(view.vans) and view.vans[van.id] is van):
            raise PolicyFailure(
                f"{self._name()}.rebalance() moved {van!r}, not a van of the network"
            )
        target = self._check_target(target, "rebalance", van)
        if target == van.station:
            return
        idle = view.idle_at[van.station]
        if van.state != IDLE or van not in idle:
            raise PolicyFailure(
                f"{self._name()}.rebalance() moved van {van.id}, which is not idle at its station"
            )
        idle.remove(van)
        if view.all_open or view.station_open[van.station]:
            view.idle_count -= 1
        now = float(self.env.now)
        road_km = self.travel.road_km(self._km_to(van, target))
        drive_h = self.travel.expected_drive_h(road_km, now, self._factor_to(van, target))
        self._send(van, target, now, road_km, drive_h, -1)

    def _send(
        self, van: Van, target: int, now: float, road_km: float, drive_h: float, call: int
    ) -> None:
        """Re-base ``van`` at ``target`` and start its drive there."""
        view = self.view
        self.relocations.log(now, van.id, van.station, target, road_km, call)
        view.vans_of[van.station].remove(van)
        view.vans_of[target].append(van)
        van.station = target
        van.base_lat = float(view.network.station_lat[target])
        van.base_lon = float(view.network.station_lon[target])
        van.state = RELOCATING
        self.unit_log.log(now, van.id, RELOCATING, -1)
        self._wait(drive_h, self._arrived[van.id])

    def _km_to(self, van: Van, station: int) -> float:
        net = self.view.network
        return great_circle_km(
            van.lat, van.lon, float(net.station_lat[station]), float(net.station_lon[station])
        )

    def _factor_to(self, van: Van, station: int) -> float:
        """The surges' speed factor of the drive from the van's place to ``station``."""
        net = self.view.network
        factor: float = self.view.drive_factor(
            van.lat, van.lon, float(net.station_lat[station]), float(net.station_lon[station])
        )
        return factor

    def _check_target(self, target: Any, hook: str, van: Van) -> int:
        """The station as a Python int (numpy integers accepted), or a PolicyFailure."""
        n = self.view.network.n_stations
        try:
            station = operator.index(target) if not isinstance(target, bool) else -1
        except TypeError:
            station = -1
        if not 0 <= station < n:
            raise PolicyFailure(
                f"{self._name()}.{hook}() sent van {van.id} to {target!r}, "
                f"not a station (an int from 0 to {n - 1})"
            )
        return station

    def _name(self) -> str:
        return type(self.policy).__name__


def moves_vans(policy_class: type[DispatchPolicy]) -> bool:
    """Whether a policy class has a move-up hook (``on_van_idle`` or ``rebalance``)."""
    return overrides(policy_class, "on_van_idle") or overrides(policy_class, "rebalance")


def check_roster_without_moveup(has_roster: bool, policy_class: type[DispatchPolicy]) -> None:
    """Rosters and move-up are not combined yet: which van may move when it goes off duty,
    or rest on the way, is not decided. ScenarioError naming ``roster`` when both are asked."""
    if has_roster and moves_vans(policy_class):
        raise ScenarioError(
            f"a roster cannot be combined with a move-up policy ({policy_class.__name__}) "
            "yet: drop the roster or choose a policy without move-up",
            field="roster",
        )
