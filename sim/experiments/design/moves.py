"""Moves of the network design search: vans between stations, stations opened, closed, moved.

:class:`MoveGenerator` proposes at most one candidate of each kind per round, from the
incumbent's diagnostics (:class:`~sim.experiments.design.evaluation.Evaluation`); the search
(:mod:`sim.experiments.design.optimise`) runs and judges them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.experiments.design.evaluation import Evaluation
from sim.experiments.design.sites import (
    Coverage,
    DemandPoints,
    FirstStageInputs,
    Sites,
    Stage1,
    VanModel,
    cover_matrix,
    van_model,
)
from sim.experiments.design.spec import VANS, DesignSpec
from sim.model.geo import SpatialIndex
from sim.model.scenario import Scenario


@dataclass
class Candidate:
    """A design to try: vans per site, and the move that made it."""

    vans: np.ndarray
    kind: str
    move: str
    vans_moved: int = 0
    opened: tuple[str, ...] = ()
    closed: tuple[str, ...] = ()


@dataclass
class MoveGenerator:
    """Proposes the next moves from what the incumbent's runs show.

    * ``vans``: move k vans, one each from the stations that lose least by giving one
      up to those that gain most by taking one. Gains and losses are the first stage's
      expected covering (local busy fractions) with each station's load *measured* in
      the incumbent's runs (busy van-hours an hour). k starts at 5% of the fleet and is
      halved each time the move is rejected.
    * ``remove``: take one van each from the k stations that lose least.
    * ``open``: open the closed site with the most late arrivals within its coverage
      radius that did not wait for a van (late because the nearest station is far), with
      the minimum of vans taken from the stations that lose least.
    * ``close``: close the open, unfixed station with the least work whose area another
      station covers; its vans go to the nearest station (for 'minimise vans' its
      minimum goes with it).
    * ``move``: the two above at once, its vans moving with it.

    A rejected station move is not proposed again until the incumbent changes.
    """

    spec: DesignSpec
    scenario: Scenario
    sites: Sites
    cover: Coverage
    stage1: Stage1
    fixed: np.ndarray  # per site
    max_stations: int
    vans_step: int
    remove_step: int
    tried: dict[str, set[Any]] = field(default_factory=dict)

    def measured_model(self, vans: np.ndarray, evaluation: Evaluation) -> VanModel:
        """The first stage's model of the incumbent, its loads replaced by the measured ones."""
        inputs = FirstStageInputs(
            self.scenario, self.sites, self.stage1.points, self.cover, self.stage1.probe
        )
        model = van_model(inputs, vans > 0)
        hours = max(evaluation.observed_h, 1e-9)
        jobs = evaluation.stations["jobs"].to_numpy(float)
        busy = evaluation.stations["busy_h"].to_numpy(float)
        rate = jobs / hours
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(
                model.catchment_calls_per_h > 0,
                model.on_time_calls_per_h / model.catchment_calls_per_h,
                1.0,
            )
            per_job = np.where(jobs > 0, busy / np.maximum(jobs, 1e-9), model.busy_h_per_job)
        return VanModel(model.site, rate, rate * share, per_job)

    def _donors(self, model: VanModel, vans: np.ndarray, k: int, skip: set[int]) -> list[int]:
        """The k open sites that lose least by giving up a van (keeping their minimum)."""
        v = vans[model.site]
        loss = -model.marginal(v, -1)
        order = np.argsort(loss, kind="stable")
        low = self.spec.min_vans_per_station
        out = [int(model.site[j]) for j in order if v[j] > low and int(model.site[j]) not in skip]
        return out[:k]

    def propose(self, kind: str, vans: np.ndarray, evaluation: Evaluation) -> Candidate | None:
        model = self.measured_model(vans, evaluation)
        if kind in ("vans", "remove"):
            return self._van_move(kind, model, vans)
        if kind == "open":
            return self._open(model, vans, evaluation, close=None)
        if kind == "close":
            return self._close(model, vans, evaluation)
        if kind == "move":
            return self._move(model, vans, evaluation)
        raise ValueError(kind)

    def _van_move(self, kind: str, model: VanModel, vans: np.ndarray) -> Candidate | None:
        k = self.vans_step if kind == "vans" else self.remove_step
        if k < 1:
            return None
        v = vans[model.site]
        new = vans.copy()
        if kind == "vans":
            cap = self.spec.max_vans_per_station
            gain = model.marginal(v, +1)
            if cap is not None:
                gain = np.where(v >= cap, -np.inf, gain)
            order = np.argsort(-gain, kind="stable")[:k]
            receivers = [int(model.site[j]) for j in order if gain[j] > 0]
            donors = self._donors(model, vans, len(receivers), set(receivers))
            n = min(len(receivers), len(donors))
            if n == 0:
                return None
            new[receivers[:n]] += 1
            new[donors[:n]] -= 1
            return Candidate(new, "vans", f"move {n} van(s)", vans_moved=n)
        donors = self._donors(model, vans, k, set())
        if not donors:
            return None
        new[donors] -= 1
        return Candidate(new, "remove", f"remove {len(donors)} van(s)", vans_moved=len(donors))

    def _site_scores(self, vans: np.ndarray, evaluation: Evaluation) -> np.ndarray:
        """Late arrivals that did not wait for a van, within the coverage radius of each site."""
        late = evaluation.late
        far = late[~late["waited"].astype(bool)]
        if not len(far):
            return np.zeros(len(self.sites))
        points = DemandPoints(
            far["lat"].to_numpy(float), far["lon"].to_numpy(float), np.ones(len(far)), len(far), 1
        )
        a = cover_matrix(points, self.sites.lat, self.sites.lon, self.cover.radius_gc_km)
        return np.asarray(a.sum(axis=0)).ravel()

    def _open_site(self, vans: np.ndarray, evaluation: Evaluation) -> int | None:
        tried = self.tried.setdefault("open", set())
        score = self._site_scores(vans, evaluation)
        budget = self.spec.opening_budget_cny
        spent = float(self.sites.opening_cost_cny[(vans > 0) & ~self.sites.is_current].sum())
        for j in np.argsort(-score, kind="stable"):
            j = int(j)
            if vans[j] > 0 or j in tried or score[j] <= 0:
                continue
            if budget is not None and spent + self.sites.opening_cost_cny[j] > budget:
                continue
            return j
        return None

    def _open(
        self, model: VanModel, vans: np.ndarray, evaluation: Evaluation, close: int | None
    ) -> Candidate | None:
        if close is None and int((vans > 0).sum()) >= self.max_stations:
            return None
        site = self._open_site(vans, evaluation)
        if site is None:
            return None
        need = self.spec.min_vans_per_station
        new = vans.copy()
        if close is not None:
            new[site] = vans[close]
            new[close] = 0
            ids = self.sites.ids
            return Candidate(
                new,
                "move",
                f"move station {ids[close]} to {ids[site]}",
                vans_moved=int(vans[close]),
                opened=(str(ids[site]),),
                closed=(str(ids[close]),),
            )
        donors = self._donors(model, vans, need, {site})
        if len(donors) < need:
            return None
        new[donors] -= 1
        new[site] = need
        return Candidate(
            new,
            "open",
            f"open {self.sites.ids[site]}",
            vans_moved=need,
            opened=(str(self.sites.ids[site]),),
        )

    def _close_site(self, model: VanModel, vans: np.ndarray) -> int | None:
        """The open, unfixed station with the least work whose area another station covers."""
        tried = self.tried.setdefault("close", set())
        site = model.site
        if len(site) < 2:
            return None
        _, km = SpatialIndex(self.sites.lat[site], self.sites.lon[site]).nearest(
            self.sites.lat[site], self.sites.lon[site], 2
        )
        covered = km[:, 1] <= self.cover.radius_gc_km
        for j in np.argsort(model.catchment_calls_per_h, kind="stable"):
            s = int(site[j])
            if covered[j] and not self.fixed[s] and s not in tried:
                return s
        return None

    def _close(self, model: VanModel, vans: np.ndarray, evaluation: Evaluation) -> Candidate | None:
        s = self._close_site(model, vans)
        if s is None:
            return None
        site = model.site
        others = site[site != s]
        nearest, _ = SpatialIndex(self.sites.lat[others], self.sites.lon[others]).nearest(
            self.sites.lat[[s]], self.sites.lon[[s]], 1
        )
        heir = int(others[nearest[0, 0]])
        new = vans.copy()
        keep = int(vans[s])
        if self.spec.objective == VANS:
            keep -= self.spec.min_vans_per_station  # the station's own minimum goes with it
        new[heir] += keep
        new[s] = 0
        return Candidate(
            new,
            "close",
            f"close {self.sites.ids[s]}"
            + (f", {keep} van(s) to {self.sites.ids[heir]}" if keep else ""),
            vans_moved=keep,
            closed=(str(self.sites.ids[s]),),
        )

    def _move(self, model: VanModel, vans: np.ndarray, evaluation: Evaluation) -> Candidate | None:
        s = self._close_site(model, vans)
        if s is None:
            return None
        return self._open(model, vans, evaluation, close=s)

    def reject(self, candidate: Candidate) -> None:
        """Remember a rejected move so that the next round tries another one."""
        if candidate.kind == "vans":
            self.vans_step //= 2
        elif candidate.kind == "remove":
            self.remove_step //= 2
        else:
            ids = list(self.sites.ids)
            if candidate.kind in ("open", "move"):
                self.tried.setdefault("open", set()).update(ids.index(i) for i in candidate.opened)
            if candidate.kind in ("close", "move"):
                self.tried.setdefault("close", set()).update(ids.index(i) for i in candidate.closed)

    def accept(self) -> None:
        self.tried.clear()


__all__ = ["Candidate", "MoveGenerator"]
