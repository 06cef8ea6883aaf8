"""The dispatch interface: what a policy sees and the two decisions it makes.

A policy is a small object with two methods of fixed signature (as JEMSS keeps its
dispatch decisions):

* ``assign(order, view)`` when the hotline hands over a work order: set
  ``order.station`` (the station that owns the order and whose distance sets the arrival
  promise) and return the van to send now, or ``None`` to keep the order waiting;
* ``next_order(van, view)`` when a van becomes free (on site after a job, or back at its
  base): return the waiting order it takes next, or ``None``.

Two optional hooks move idle vans (move-up, :mod:`sim.model.dispatch.moveup`):

* ``on_van_idle(view, van)`` when a van has finished a job and no waiting order takes
  it: return the station it should drive to and be based at from now on, or ``None``
  to send it home;
* ``rebalance(view)`` every ``dispatch.review_interval_h`` hours of the scenario: return
  ``(van, station)`` moves of idle vans.

The model calls them only for a policy that overrides them (checked once per run), so a
policy without move-up costs nothing on the per-call path.

Waiting orders live in the policy, so a policy decides queue discipline too. The model
owns time, vans and records; the policy owns only its queues.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from sim.model.geo import great_circle_km, great_circle_km_array
from sim.model.records import IDLE, OFF_DUTY
from sim.model.travel_matrix import StationLegs

if TYPE_CHECKING:
    import simpy

    from sim.model.demand import CallStream
    from sim.model.network import Network
    from sim.model.scenario import Scenario
    from sim.model.travel import PromiseTable, TravelModel

_INF = float("inf")


class Van:
    """A mobile service van; ``lat``/``lon`` is where it is now (its base when idle)."""

    __slots__ = (
        "base_lat",
        "base_lon",
        "call",
        "expected_free_h",
        "id",
        "lat",
        "lon",
        "state",
        "station",
    )

    def __init__(self, van_id: int, station: int, lat: float, lon: float) -> None:
        self.id = van_id
        self.station = station
        self.base_lat = lat
        self.base_lon = lon
        self.lat = lat
        self.lon = lon
        self.state = IDLE
        self.call = -1
        # When a dispatcher would expect this van to be free (mean values, no peeking at
        # the drawn times): set by the model when the van is sent out.
        self.expected_free_h = 0.0

    @property
    def at_base(self) -> bool:
        return self.lat == self.base_lat and self.lon == self.base_lon


class Contractor(Van):
    """A local third-party repair shop that has accepted one job: not one of the network's vans.

    It sets off ``delay_h`` after accepting, from ``distance_km`` (great circle) away.
    """

    __slots__ = ("delay_h", "distance_km")

    def __init__(self, lat: float, lon: float, delay_h: float, distance_km: float) -> None:
        super().__init__(-1, -1, lat, lon)
        self.delay_h = delay_h
        self.distance_km = distance_km


class Order:
    """A work order from the hotline: one breakdown call waiting for or given a van."""

    __slots__ = (
        "call",
        "candidate_km",
        "candidates",
        "dispatched_h",
        "event",
        "lat",
        "lon",
        "nearest",
        "priority",
        "segment",
        "station",
        "t_call_h",
    )

    def __init__(
        self,
        call: int,
        lat: float,
        lon: float,
        t_call_h: float,
        dispatched_h: float,
        segment: int,
        priority: int,
        candidates: np.ndarray,
        candidate_km: np.ndarray,
        event: simpy.Event,
    ) -> None:
        self.call = call
        self.lat = lat
        self.lon = lon
        self.t_call_h = t_call_h
        self.dispatched_h = dispatched_h
        self.segment = segment
        self.priority = priority
        self.candidates = candidates
        self.candidate_km = candidate_km
        # The nearest station (candidates[0]) as a Python int: the usual answer of
        # DispatchView.nearest_open_station, without indexing a numpy array.
        self.nearest = int(candidates[0])
        self.station = -1
        self.event = event


class DispatchView:
    """What a policy may look at: stations, vans, idle vans by station, travel estimates."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        network: Network,
        vans: list[Van],
        travel: TravelModel,
        promises: PromiseTable,
    ) -> None:
        self.env = env
        self.scenario = scenario
        # Off-duty vans exist only under a roster: without one, no filtering per call.
        self._rostered = scenario.roster is not None
        self.network = network
        self.vans = vans
        self.travel = travel
        self.promises = promises
        self.station_open = np.ones(network.n_stations, dtype=bool)
        # Kept by the model: lets the common case skip the per-candidate open check.
        self.all_open = True
        # Idle vans waiting at each station, as a stack: the last one back goes out first.
        self.idle_at: list[list[Van]] = [[] for _ in range(network.n_stations)]
        self.idle_count = 0
        # The call stream, for the draws a policy may ask about (contractor offers); set
        # with use_stream, which also works out each call's promise from its nearest station.
        self.stream: CallStream | None = None
        self._nearest_promise_km = self._nearest_promise_h = np.zeros(0).data
        self._promises_known = False
        # Drives between stations and calls with the network's travel matrix; None without.
        self.legs: StationLegs | None = None
        self.vans_of: list[list[Van]] = [[] for _ in range(network.n_stations)]
        for van in vans:
            self.vans_of[van.station].append(van)
        faults = scenario.demand.fault_classes
        # A dispatcher's rule of thumb for how long a job keeps a van out.
        self.mean_on_site_h = sum(f.share * f.repair_time_min.mean for f in faults) / 60.0
        # Set by the model: the surges' speed factor at a point, and of a drive between
        # two points (slowed when it starts or ends in a surge region).
        self.speed_factor_at: Any = lambda lat, lon: 1.0
        self.drive_factor: Any = lambda lat1, lon1, lat2, lon2: 1.0
        # Station coordinates as Python floats (the same values): indexing a list is
        # cheaper than boxing a numpy scalar, and station_road_km runs once per order.
        self._station_lat: list[float] = network.station_lat.tolist()
        self._station_lon: list[float] = network.station_lon.tolist()

    @property
    def now(self) -> float:
        return float(self.env.now)

    def open_candidates(self, order: Order) -> list[tuple[int, float]]:
        """Open stations near the order as (station, great-circle km), nearest first."""
        # Walked as Python numbers (tolist) rather than numpy scalars: same values, and
        # several times faster for the policies that call this on every order.
        out = [
            (int(s), float(km))
            for s, km in zip(
                np.asarray(order.candidates).tolist(),
                np.asarray(order.candidate_km).tolist(),
                strict=True,
            )
            if km != _INF and self.station_open[s]
        ]
        if out:
            return out
        # All precomputed candidates are shut (a disaster): widen the search.
        index, km = self.network.nearest_stations(
            np.array([order.lat]), np.array([order.lon]), self.network.n_stations
        )
        return [
            (int(s), float(d)) for s, d in zip(index[0], km[0], strict=True) if self.station_open[s]
        ]

    def nearest_open_station(self, order: Order) -> int:
        """The nearest station that is open (the nearest, if none is)."""
        if self.all_open:
            return order.nearest
        candidates = self.open_candidates(order)
        return candidates[0][0] if candidates else order.nearest

    def take_idle_van(self, station: int) -> Van | None:
        idle = self.idle_at[station]
        if not idle:
            return None
        self.idle_count -= 1
        return idle.pop()

    def station_road_km(self, station: int, lat: float, lon: float) -> float:
        """Road km from ``station`` to a point."""
        gc = great_circle_km(self._station_lat[station], self._station_lon[station], lat, lon)
        return self.travel.road_km(gc)

    def station_road_km_array(
        self, stations: np.ndarray, lat: np.ndarray, lon: np.ndarray
    ) -> np.ndarray:
        """:meth:`station_road_km` for every element (the same bits, see sim.model.travel)."""
        net = self.network
        gc = great_circle_km_array(net.station_lat[stations], net.station_lon[stations], lat, lon)
        return self.travel.road_km_array(gc)

    def station_drive_factor(self, station: int, order: Order) -> float:
        """The surges' speed factor of a drive from ``station`` to the order."""
        factor: float = self.drive_factor(
            self._station_lat[station], self._station_lon[station], order.lat, order.lon
        )
        return factor

    def station_drive_h(
        self, station: int, km: float, order: Order, start_h: float, speed_factor: float = 1.0
    ) -> float:
        """Expected drive (no noise) from ``station``, ``km`` great-circle km from the order.

        The travel model's, scaled by the travel matrix's time factor when there is one.
        """
        drive = self.travel.expected_drive_h(self.travel.road_km(km), start_h, speed_factor)
        if self.legs is None:
            return drive
        return drive * self.legs.time_factor(station, order.call, start_h)

    def use_stream(self, stream: CallStream) -> None:
        """The calls of the run: their draws, and each call's promise from its nearest station.

        That promise (road km and hours) is what :meth:`arrival_promise` gives whenever
        the nearest station is open, so it is worked out here for every call at once.
        """
        self.stream = stream
        nearest = np.asarray(stream.candidates[:, 0], dtype=np.int64)
        matrix = self.network.travel_matrix
        if matrix is None:
            km = self.station_road_km_array(nearest, stream.lat, stream.lon)
        else:
            self.legs = StationLegs(matrix, self.travel, self.network, stream.area, stream.point)
            km = self.legs.road_km_array(nearest, stream.lat, stream.lon, stream.t_call_h)
        hours = self.promises.arrival_h_array(km)
        # Read one element at a time as Python floats: memoryviews (see call_rows.Columns).
        self._nearest_promise_km = np.ascontiguousarray(km, dtype=np.float64).data
        self._nearest_promise_h = np.ascontiguousarray(hours, dtype=np.float64).data
        self._promises_known = True

    def nearest_promises(self) -> tuple[np.ndarray, np.ndarray]:
        """Each call's promise from its nearest station: road km and hours (after use_stream).

        What :meth:`arrival_promise` gives while every station is open.
        """
        if not self._promises_known:
            raise RuntimeError("nearest_promises before use_stream")
        return np.asarray(self._nearest_promise_km), np.asarray(self._nearest_promise_h)

    def arrival_promise(self, order: Order) -> tuple[int, float, float]:
        """The station that sets the order's arrival promise, its road km and the hours promised.

        The rule: the promise is the nearest open station's, whichever station the policy
        chose, so that every policy is held to the same promise.
        """
        # With every station open the nearest is the nearest open (the usual case).
        station = order.nearest if self.all_open else self.nearest_open_station(order)
        if station == order.nearest and self._promises_known:
            i = order.call
            return station, self._nearest_promise_km[i], self._nearest_promise_h[i]
        km = self.road_km_to_call(station, order, order.t_call_h)
        return station, km, self.promises.arrival_h(km)

    def road_km_to_call(self, station: int, order: Order, start_h: float) -> float:
        """Road km from ``station`` to the order's place, by the travel matrix when there is one."""
        if self.legs is None:
            return self.station_road_km(station, order.lat, order.lon)
        return self.legs.road_km(station, order.call, order.lat, order.lon, start_h)

    def contractor_offer(self, order: Order) -> Contractor | None:
        """Offer the job to the nearest local shop: the shop, or None if it declines.

        Whether it accepts, how far it is and how soon it can leave were drawn with the
        call stream (common random numbers for every policy that asks).
        """
        stream = self.stream
        i = order.call
        if stream is None or stream.contractor_u[i] >= self.scenario.contractors.accept_probability:
            return None
        return Contractor(
            order.lat,
            order.lon,
            float(stream.contractor_delay_h[i]),
            float(stream.contractor_km[i]),
        )

    def contractor_arrival_h(self, shop: Contractor, order: Order) -> float:
        """When a shop that accepted now would reach the breakdown (expected drive)."""
        start = self.now + shop.delay_h
        road = self.travel.road_km(shop.distance_km)
        factor = self.scenario.contractors.speed_factor * self.speed_factor_at(order.lat, order.lon)
        return start + self.travel.expected_drive_h(road, start, factor)

    def arrival_deadline_h(self, order: Order) -> float:
        """When the arrival promise for this order runs out (see :meth:`arrival_promise`)."""
        return order.t_call_h + self.arrival_promise(order)[2]

    def station_wait_h(self, station: int, queued_ahead: int) -> float:
        """Expected hours until one of ``station``'s vans can take a new order.

        Zero with an idle van; otherwise the van expected to free up for the order's place
        in the queue, plus a mean job for each full round of the station's vans ahead.
        Vans off duty (a roster) do not count: with none on duty, the wait is endless.
        """
        if self.idle_at[station]:
            return 0.0
        vans = self.vans_of[station]
        if self._rostered:
            vans = [v for v in vans if v.state != OFF_DUTY]
        if not vans:
            return math.inf
        free = sorted(v.expected_free_h for v in vans)
        rounds, place = divmod(queued_ahead, len(vans))
        job_h = self.mean_on_site_h + 2 * self.travel.expected_drive_h(30.0, self.now)
        return max(0.0, free[place] - self.now) + rounds * job_h

    def estimated_arrival_h(self, van: Van, order: Order) -> float:
        """Expected hours from now until ``van`` reaches the order (no noise, mean turn-out)."""
        ops = self.scenario.stations
        turnout = ops.turnout_day_min.mean / 60.0 if van.at_base else 0.0
        gc = great_circle_km(van.lat, van.lon, order.lat, order.lon)
        start = self.now + turnout
        factor = self.drive_factor(van.lat, van.lon, order.lat, order.lon)
        if van.at_base:  # from its station: by the travel matrix, if there is one
            return turnout + self.station_drive_h(van.station, gc, order, start, factor)
        return turnout + self.travel.expected_drive_h(self.travel.road_km(gc), start, factor)


class DispatchPolicy(ABC):
    """Base class of dispatch policies. Subclasses set ``name`` and a docstring."""

    name: ClassVar[str] = ""
    # True: the hotline answers waiting callers by segment priority, not first come first served.
    prioritise_hotline: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        if options:
            raise TypeError(f"{type(self).__name__} takes no options, got {sorted(options)}")

    def setup(self, view: DispatchView) -> None:  # noqa: B027 - optional hook
        """Called once before the run, with the view the policy will be given."""

    @abstractmethod
    def assign(self, order: Order, view: DispatchView) -> Van | None:
        """Set ``order.station``; return the van to send now, or None to keep it waiting."""

    @abstractmethod
    def next_order(self, van: Van, view: DispatchView) -> Order | None:
        """The waiting order a newly free van takes next, or None."""

    def waiting(self) -> int:
        """How many orders wait for a van (for monitoring)."""
        return 0

    def on_van_idle(self, view: DispatchView, van: Van) -> int | None:
        """Where a van that finished a job, with no order waiting for it, goes next.

        Return a station: the van drives there from the site (state ``relocating``) and
        is based there from then on. ``None`` (the default), or the van's own station,
        sends it home as usual.
        """
        return None

    def rebalance(self, view: DispatchView) -> list[tuple[Van, int]]:
        """Moves of idle vans, ``(van, station)``, at each regular review.

        Called every ``dispatch.review_interval_h`` hours when the scenario sets it. Each
        van must be idle at its station; it drives to the new one (state ``relocating``)
        and is based there from then on. The default moves nothing.
        """
        return []


def overrides(policy: DispatchPolicy | type[DispatchPolicy], hook: str) -> bool:
    """Whether ``policy`` (a policy or its class) overrides the :class:`DispatchPolicy`
    method ``hook``."""
    cls = policy if isinstance(policy, type) else type(policy)
    return getattr(cls, hook) is not getattr(DispatchPolicy, hook)
