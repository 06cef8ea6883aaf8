"""Move-up policies: idle vans sent where the next calls will need them.

Both policies dispatch as
:class:`~sim.model.dispatch.policies.NearestStationWithBackup` does (the nearest station,
unless it cannot keep the arrival promise: then the station expected to arrive first),
so that a station that move-up has left without vans is served by its neighbours. They
differ in where a van goes when it is free (the hooks of
:class:`~sim.model.dispatch.DispatchPolicy`; the model carries the moves out in
:mod:`sim.model.relocation`).

Shared ingredients, written once here:

* coverage: a station covers the demand of the stations within ``coverage_km`` (great
  circle) of it, as in the covering models of ambulance location;
* demand by station: the calls seen so far whose nearest station it is, started from a
  prior (each station's share of its prefecture's population weight, or equal shares
  for stations read from a CSV) worth ``prior_calls`` calls. The policies learn where
  demand is from the past only; they never read the call stream ahead;
* availability: a van idle at a station, driving home to it, or relocating to it
  counts as available there; a van on its way to or at a job does not;
* the expected-coverage value of Daskin's MEXCLP (1983): a demand point covered by
  ``k`` available vans is served with probability ``1 - q**k`` when each van is busy a
  fraction ``q`` of the time (``busy_fraction``); one more van in reach adds
  ``(1 - q) * q**k`` times its demand.

Neither policy weighs the cost of a move against its gain (no threshold, no cost per
km): on a network whose vans already stand where the demand is, they move many vans for
little (README, "Dispatch policies", has the figures on the national scenario).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sim.model.dispatch.base import DispatchView, Order, Van
from sim.model.dispatch.policies import NearestStationWithBackup
from sim.model.geo import great_circle_km_array
from sim.model.records import ON_SITE, TO_SITE

if TYPE_CHECKING:
    # scipy is imported where it is used: the policy registry, which validating a
    # scenario reads, must not load it (tests/test_lazy_imports.py).
    import scipy.sparse

    from sim.model.network import Network


def station_demand_prior(network: Network) -> np.ndarray:
    """Each station's share of demand before any call is seen (sums to 1).

    A station stands for an equal part of its prefecture's population weight; stations
    without a prefecture (read from a CSV) have equal shares.
    """
    area = network.station_area
    weight = np.ones(network.n_stations)
    if len(area) and (area >= 0).all():
        area_weight = network.areas["population_weight"].to_numpy(float)
        per_area = np.bincount(area, minlength=len(area_weight))
        weight = area_weight[area] / per_area[area]
    total = weight.sum()
    return weight / total if total > 0 else np.full(network.n_stations, 1.0 / network.n_stations)


def within_km(network: Network, km: float) -> scipy.sparse.csr_array:
    """Station x station, 1 where the two are at most ``km`` apart (great circle)."""
    import scipy.sparse

    lat, lon = network.station_lat, network.station_lon
    rows, cols = [], []
    for s in range(network.n_stations):
        near = np.flatnonzero(great_circle_km_array(lat, lon, lat[s], lon[s]) <= km)
        rows.append(np.full(len(near), s))
        cols.append(near)
    row = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    col = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    n = network.n_stations
    return scipy.sparse.csr_array((np.ones(len(row)), (row, col)), shape=(n, n))


def greedy_mexclp_order(
    cover: scipy.sparse.csr_array, demand: np.ndarray, busy_fraction: float, n_vans: int
) -> list[int]:
    """Stations in the order a greedy MEXCLP fills them, one van at a time.

    Each step puts the next van where it adds the most expected coverage, given the vans
    already placed (Daskin 1983's greedy heuristic); the first ``n`` entries are the
    positions for ``n`` vans, so the positions are nested, one more van at a time. Ties
    go to the lowest station number.
    """
    covered = np.zeros(cover.shape[0])  # vans in reach of each demand point
    order = []
    for _ in range(n_vans):
        gain = cover @ (demand * busy_fraction**covered)
        best = int(np.argmax(gain))
        order.append(best)
        covered[cover.indices[cover.indptr[best] : cover.indptr[best + 1]]] += 1
    return order


class MoveUpPolicy(NearestStationWithBackup):
    """Nearest station with cross-station support, and what move-up needs: demand
    learned from the calls, available vans by station, stations in reach.

    Not registered itself: the base of the built-in move-up policies and of a planner's
    own (docs/custom_policy.md).
    """

    def __init__(
        self,
        coverage_km: float = 60.0,
        busy_fraction: float = 0.3,
        max_move_km: float = 150.0,
        prior_calls: float = 20.0,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if coverage_km <= 0:
            raise ValueError("coverage_km must be positive")
        if not 0 < busy_fraction < 1:
            raise ValueError("busy_fraction must be between 0 and 1 (exclusive)")
        if max_move_km < 0:
            raise ValueError("max_move_km must not be negative")
        if prior_calls <= 0:
            raise ValueError("prior_calls must be positive")
        self.coverage_km = coverage_km
        self.busy_fraction = busy_fraction
        self.max_move_km = max_move_km
        self.prior_calls = prior_calls
        self.cover: scipy.sparse.csr_array  # made in setup, from the network
        self._prior = np.zeros(0)
        self._seen = np.zeros(0)
        self._reach: list[np.ndarray] = []

    def setup(self, view: DispatchView) -> None:
        net = view.network
        self.cover = within_km(net, self.coverage_km)
        self._prior = station_demand_prior(net) * self.prior_calls
        self._seen = np.zeros(net.n_stations)
        reach = within_km(net, self.max_move_km)
        # The stations a van based at s may be moved to, s itself included.
        self._reach = [
            reach.indices[reach.indptr[s] : reach.indptr[s + 1]] for s in range(net.n_stations)
        ]

    def assign(self, order: Order, view: DispatchView) -> Van | None:
        self._seen[order.nearest] += 1  # demand seen so far, by nearest station
        return super().assign(order, view)

    def demand(self) -> np.ndarray:
        """Demand weight by station: the prior plus the calls seen so far."""
        demand: np.ndarray = self._prior + self._seen
        return demand

    def available(self, view: DispatchView) -> np.ndarray:
        """Vans available by station: idle there, or driving home or relocating to it."""
        stations = [v.station for v in view.vans if v.state != TO_SITE and v.state != ON_SITE]
        counts = np.bincount(
            np.asarray(stations, dtype=np.int64), minlength=view.network.n_stations
        ).astype(float)
        if not view.all_open:
            counts[~view.station_open] = 0.0  # a shut station's vans stand down
        return counts

    def reach(self, van: Van, view: DispatchView) -> np.ndarray:
        """The open stations ``van`` may be moved to (within ``max_move_km`` of its base)."""
        near = self._reach[van.station]
        return near if view.all_open else near[view.station_open[near]]


class DynamicMexclp(MoveUpPolicy):
    """Dynamic MEXCLP move-up: a van free after a job goes where it adds most coverage.

    When a van finishes a job and no order waits for it, it is sent to the station (its
    own, or an open one within ``max_move_km`` of it) where one more available van adds
    the most expected coverage of the MEXCLP (Daskin 1983), given where the other
    available vans are now; its own station wins ties. This is the dynamic use of MEXCLP
    of Jagtenberg, Bhulai & van der Mei (2015), "An efficient heuristic for real-time
    ambulance redeployment" (Operations Research for Health Care 4, 27-35), and of van
    Barneveld, Bhulai & van der Mei (2016) (EJOR 252, 257-269): a one-step greedy
    heuristic, not an optimal policy. Vans are moved only when they become free, never
    at a review.
    """

    name = "dynamic_mexclp"

    def on_van_idle(self, view: DispatchView, van: Van) -> int | None:
        # The van deciding is on site, so it is not among the available vans.
        covered = self.cover @ self.available(view)
        value = self.demand() * self.busy_fraction**covered
        stations = self.reach(van, view)
        if not len(stations):
            return None
        gain = self.cover[stations] @ value
        best = int(stations[int(np.argmax(gain))])
        own = np.flatnonzero(stations == van.station)
        if len(own) and gain[own[0]] >= gain.max():
            return None
        return best


class ComplianceTable(MoveUpPolicy):
    """Compliance-table move-up: with n vans available, they should stand at row n's stations.

    A compliance table lists, for each number of available vans, the stations they should
    occupy; dispatchers move vans to keep the network "in compliance" (Gendreau, Laporte
    & Semet 2001 review its use; Alanis, Ingolfsson & Kolfal 2013 model it; the
    "compliance table" move-up of the JEMSS ambulance simulator). Here:

    * the table is ``table`` if given (row n-1 lists the n stations, repeats allowed, for
      n available vans), else the nested table of a greedy MEXCLP (each row the previous
      one plus one station, as in the nested compliance tables of Sudtachat, Mayorga &
      McLay 2016), built from the demand seen so far and rebuilt at each review;
    * a van free after a job, with no order waiting, goes to the station of the current
      row that lacks most vans among those within ``max_move_km`` of it, nearest first;
      its own station if that one lacks vans; home if none lacks;
    * at each review (``dispatch.review_interval_h``) idle vans are matched to the
      stations that lack vans, minimising total great-circle km (an assignment problem,
      as JEMSS solves it), moving at most ``max_moves`` vans and none farther than
      ``max_move_km``.
    """

    name = "compliance_table"

    def __init__(
        self, table: list[list[int]] | None = None, max_moves: int = 10, **options: Any
    ) -> None:
        super().__init__(**options)
        if max_moves < 0:
            raise ValueError("max_moves must not be negative")
        if table is not None:
            for n, row in enumerate(table, start=1):
                if len(row) != n:
                    raise ValueError(f"compliance table row {n} lists {len(row)} stations, not {n}")
        self.table = table
        self.max_moves = max_moves
        self._order: list[int] = []

    def setup(self, view: DispatchView) -> None:
        super().setup(view)
        n = view.network.n_stations
        for row in self.table or ():
            bad = [s for s in row if not 0 <= s < n]
            if bad:
                raise ValueError(f"compliance table names stations {bad}; there are {n}")
        self._rebuild(view)

    def _rebuild(self, view: DispatchView) -> None:
        if self.table is None:
            self._order = greedy_mexclp_order(
                self.cover, self.demand(), self.busy_fraction, len(view.vans)
            )

    def targets(self, n_available: int, n_stations: int) -> np.ndarray:
        """How many vans each station should have when ``n_available`` are available."""
        if n_available <= 0:
            return np.zeros(n_stations)
        if self.table is not None:
            row = self.table[min(n_available, len(self.table)) - 1]
        else:
            row = self._order[:n_available]
        return np.bincount(np.asarray(row, dtype=np.int64), minlength=n_stations).astype(float)

    def on_van_idle(self, view: DispatchView, van: Van) -> int | None:
        available = self.available(view)
        lacking = self.targets(int(available.sum()) + 1, len(available)) - available
        if lacking[van.station] > 0:
            return None
        stations = self.reach(van, view)
        stations = stations[lacking[stations] > 0]
        if not len(stations):
            return None
        net = view.network
        km = great_circle_km_array(
            net.station_lat[stations], net.station_lon[stations], van.lat, van.lon
        )
        # Most lacking first, then nearest (lexsort: last key first).
        best = np.lexsort((km, -lacking[stations]))[0]
        return int(stations[best])

    def rebalance(self, view: DispatchView) -> list[tuple[Van, int]]:
        self._rebuild(view)
        available = self.available(view)
        n = view.network.n_stations
        lacking = np.maximum(self.targets(int(available.sum()), n) - available, 0).astype(int)
        if not lacking.any() or self.max_moves == 0:
            return []
        surplus = available - self.targets(int(available.sum()), n)
        idle = [
            van
            for s in np.flatnonzero(surplus > 0)
            for van in view.idle_at[s][: int(surplus[s])]
            if view.station_open[s]
        ]
        if not idle:
            return []
        slots = np.repeat(np.arange(n), lacking)
        net = view.network
        km = great_circle_km_array(
            net.station_lat[slots][None, :],
            net.station_lon[slots][None, :],
            np.array([v.lat for v in idle])[:, None],
            np.array([v.lon for v in idle])[:, None],
        )
        from scipy.optimize import linear_sum_assignment

        too_far = km > self.max_move_km
        rows, cols = linear_sum_assignment(np.where(too_far, 1e9, km))
        moves = [
            (idle[r], int(slots[c]), float(km[r, c]))
            for r, c in zip(rows, cols, strict=True)
            if not too_far[r, c]
        ]
        moves.sort(key=lambda move: move[2])  # the shortest moves first
        return [(van, station) for van, station, _ in moves[: self.max_moves]]
