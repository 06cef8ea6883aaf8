"""The cost-service frontier: the optimiser's best network for each fleet size, with intervals.

For each fleet size, smallest first (docs/network_design.md):

1. the optimiser's first stage (:func:`~sim.experiments.design.optimise.first_stage`:
   the covering MILPs of :mod:`sim.experiments.design.covering`) seeds an allocation of
   exactly that many vans;
2. its bounded simulated search (:func:`~sim.experiments.design.optimise.search`, the
   moves of :mod:`sim.experiments.design.moves`) maximises the KPI, starting from the
   *warm start* -- the previous (smaller) point's best allocation with the extra vans
   placed where this fleet's seed has most more -- and taking the seed instead only
   when a paired interval says it is better.

Every design of every point runs on the same seed and replications (common random
numbers), so neighbouring points are compared replication by replication. The best
allocation of every point is then run again on fresh streams (``confirm_seed``): the
frontier's KPIs and intervals, and the answer for each target -- the smallest fleet
whose 95% lower bound meets it, with the paired difference to the next smaller fleet --
come from those runs only, so they carry no selection bias from the searches.

All runs go through one :class:`~sim.experiments.runs.executor.Experiment` into a
result store under their full run keys, as the optimiser's do: a frontier run again
with the same store reads back every finished run and runs only the others.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Unpack

import numpy as np
import pandas as pd

from sim.analysis.kpi_catalogue import is_share
from sim.analysis.kpis import Interval, summarise
from sim.analysis.paired import difference_columns
from sim.errors import UserInputError
from sim.experiments.design.evaluation import (
    DesignRuns,
    Evaluation,
    SearchRuns,
    design_experiment,
    no_log,
    paired_interval,
)
from sim.experiments.design.moves import MoveGenerator
from sim.experiments.design.optimise import (
    Designs,
    History,
    LogFn,
    first_stage,
    search,
    search_setting,
)
from sim.experiments.design.sites import Sites, design_csv, design_scenario
from sim.experiments.design.spec import VANS, DesignSpec
from sim.model.scenario import Scenario

COST_KPI = "cost_cny_per_year"
MAX_POINTS = 50
"""Most fleet sizes of one frontier: each is a whole search."""


def parse_fleets(text: str) -> list[int]:
    """``1400..2600:200`` (first..last:step, last included) or ``1400,1800,2200``."""
    text = text.strip()
    try:
        if ".." in text:
            first, _, rest = text.partition("..")
            last, _, step = rest.partition(":")
            a, b, d = int(first), int(last), int(step or 1)
            if d < 1 or b < a:
                raise ValueError
            fleets = list(range(a, b + 1, d))
        else:
            fleets = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserInputError(
            f"{text!r}: write FIRST..LAST:STEP (1400..2600:200) or a list (1400,1800)",
            field="--vans",
        ) from None
    fleets = sorted(set(fleets))
    if len(fleets) < 2 or fleets[0] < 1:
        raise UserInputError(
            f"{text!r}: give at least two fleet sizes of 1 or more", field="--vans"
        )
    if len(fleets) > MAX_POINTS:
        raise UserInputError(
            f"{text!r}: {len(fleets)} points; at most {MAX_POINTS}", field="--vans"
        )
    return fleets


def parse_targets(text: str, kpi: str) -> tuple[float, ...]:
    """``0.90,0.93,0.95`` as numbers; a share's targets between 0 and 1."""
    try:
        targets = tuple(sorted({float(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise UserInputError(
            f"{text!r}: write numbers, e.g. 0.90,0.93", field="--targets"
        ) from None
    if not targets or not all(math.isfinite(t) for t in targets):
        raise UserInputError(f"{text!r}: give finite numbers", field="--targets")
    if is_share(kpi) and not all(0 < t <= 1 for t in targets):
        raise UserInputError(
            f"{text!r}: {kpi} is a share: each target above 0 and at most 1", field="--targets"
        )
    return targets


@dataclass
class FrontierPoint:
    """One fleet size: its best allocation, on the search and on the confirmation streams."""

    vans: int
    allocation: np.ndarray  # vans per site
    search_kpis: pd.DataFrame  # by replication, on the search streams
    confirm_kpis: pd.DataFrame  # by replication, on the confirmation streams
    evaluations: int
    stop_reason: str

    @property
    def stations(self) -> int:
        return int((self.allocation > 0).sum())


@dataclass
class FrontierResult:
    """The frontier: one :class:`FrontierPoint` per fleet size, smallest first."""

    scenario: Scenario  # the search scenario (spec's days, replications, seed)
    spec: DesignSpec
    kpi: str
    targets: tuple[float, ...]
    sites: Sites
    points: list[FrontierPoint]
    confirm_seed: int
    history: pd.DataFrame
    elapsed_s: float
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def confirm_replications(self) -> int:
        return len(self.points[0].confirm_kpis)

    def stations_csv(self, point: FrontierPoint) -> str:
        """A point's stations CSV, byte for byte the file that was run."""
        return design_csv(self.sites, point.allocation)

    def confirm_scenario(self, stations_csv: Path) -> Scenario:
        """The scenario that reproduces a point's row with its stations file."""
        return design_scenario(self.scenario, stations_csv).with_overrides(
            seed=self.confirm_seed, replications=self.confirm_replications
        )

    def _evaluation(self, point: FrontierPoint) -> Evaluation:
        return Evaluation(str(point.vans), point.confirm_kpis, pd.DataFrame(), pd.DataFrame(), 0.0)

    def step(self, k: int, kpi: str | None = None) -> Interval:
        """Point k - point k-1 of a KPI, paired on the confirmation streams (95%)."""
        a, b = self.points[k], self.points[k - 1]
        return paired_interval(self._evaluation(a), self._evaluation(b), kpi or self.kpi)

    def table(self) -> pd.DataFrame:
        """frontier.csv: one row per fleet size: vans, stations, the cost, every KPI with
        its 95% interval on the confirmation streams, and the KPI's paired step from the
        next smaller fleet."""
        rows = []
        for k, point in enumerate(self.points):
            summary = summarise(point.confirm_kpis)
            row: dict[str, Any] = {"vans": point.vans, "stations": point.stations}
            for name in [COST_KPI, *(str(n) for n in summary.index if n != COST_KPI)]:
                row[name] = summary.at[name, "mean"]
                row[f"{name}_low"] = summary.at[name, "low"]
                row[f"{name}_high"] = summary.at[name, "high"]
            diff = self.step(k) if k else Interval(math.nan, math.nan, math.nan, 0)
            row.update({f"step_{key}": v for key, v in difference_columns(self.kpi, diff).items()})
            row["evaluations"] = point.evaluations
            rows.append(row)
        return pd.DataFrame(rows)

    def answers(self) -> pd.DataFrame:
        """answers.csv: for each target, the smallest fleet whose 95% lower bound of the
        KPI (confirmation streams) meets it, its cost, and the paired difference to the
        next smaller fleet on the frontier (none: no fleet of the frontier meets it)."""
        rows = []
        for target in self.targets:
            row: dict[str, Any] = {"target": target, "vans": None}
            for k, point in enumerate(self.points):
                # As frontier.csv gives them: a share's interval cut to [0, 1].
                shown = summarise(point.confirm_kpis[[self.kpi, COST_KPI]]).to_dict("index")
                ci, cost = shown[self.kpi], shown[COST_KPI]
                if ci["low"] >= target:
                    row.update(
                        vans=point.vans,
                        stations=point.stations,
                        mean=ci["mean"],
                        low=ci["low"],
                        high=ci["high"],
                        cost_cny_per_year=cost["mean"],
                        cost_low=cost["low"],
                        cost_high=cost["high"],
                        smaller_vans=self.points[k - 1].vans if k else None,
                    )
                    if k:
                        row.update(difference_columns(self.kpi, self.step(k)))
                    break
            rows.append(row)
        return pd.DataFrame(rows)

    def knee(self, x: str = COST_KPI) -> int:
        """The knee's index: :func:`knee_index` of the KPI's means against ``x`` (the cost,
        or 'vans')."""
        table = self.table()
        return knee_index(table[x].to_numpy(float), table[self.kpi].to_numpy(float))


def knee_index(x: np.ndarray, y: np.ndarray) -> int:
    """The knee of an increasing, concave curve by Kneedle (Satopaa et al. 2011, without
    its smoothing): x and y scaled to [0, 1], the point where ``y - x`` is greatest --
    the point farthest above the chord from the first point to the last."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    span_x, span_y = np.ptp(x), np.ptp(y)
    if len(x) < 3 or span_x <= 0 or span_y <= 0:
        return 0
    gap = (y - y.min()) / span_y - (x - x.min()) / span_x
    return int(np.argmax(gap))


def warm_start(previous: np.ndarray, seed: np.ndarray, fleet: int, max_stations: int) -> np.ndarray:
    """The previous point's allocation grown (or shrunk) to ``fleet`` vans: each van added
    where this fleet's first-stage seed has most more than it (a station opened only while
    fewer than ``max_stations`` are open), each removed where it has most fewer; ties to
    the first site."""
    vans = previous.astype(np.int64).copy()
    while int(vans.sum()) < fleet:
        gap = (seed - vans).astype(float)
        if int((vans > 0).sum()) >= max_stations:
            gap[vans == 0] = -np.inf
        vans[int(np.argmax(gap))] += 1
    while int(vans.sum()) > fleet:
        gap = np.where(vans > 1, (vans - seed).astype(float), -np.inf)
        vans[int(np.argmax(gap))] -= 1
    return vans


def frontier_runs(
    base: Scenario, spec: DesignSpec, fleets: Sequence[int]
) -> list[tuple[Scenario, int]]:
    """The most runs a frontier of ``base`` (:func:`~sim.experiments.design.optimise.prepare`'s)
    may make, to estimate its work before the first point: each fleet size's search (every
    design of its budget) and its confirmation on fresh streams."""
    confirm = spec.confirm_replications or base.replications
    return ([(base, base.replications)] * spec.max_evaluations + [(base, confirm)]) * len(fleets)


def frontier(
    scenario: Scenario,
    fleets: Sequence[int],
    spec: DesignSpec | None = None,
    *,
    targets: Sequence[float] = (),
    log: LogFn | None = None,
    **runs: Unpack[SearchRuns],
) -> FrontierResult:
    """The frontier of ``scenario`` over ``fleets``; see the module docstring.

    ``spec`` says what to maximise (default on_time_arrival_rate) and how hard each
    point searches (``max_evaluations``, ``time_limit_min``: per point); ``log`` and
    ``runs`` (``store``, ``workers``, ``engine``, ``report``, ``description``) are as for
    :func:`~sim.experiments.design.optimise.optimise`, and the result depends on
    neither ``workers`` nor ``engine``.
    """
    spec = spec or DesignSpec()
    if spec.objective == VANS or not spec.higher_is_better:
        raise UserInputError("the frontier maximises a KPI that is better higher", field="--kpi")
    with design_experiment(**runs) as design_runs:
        return _frontier(
            scenario, sorted(set(fleets)), spec, tuple(targets), design_runs, log or no_log
        )


def _frontier(
    scenario: Scenario,
    fleets: list[int],
    spec: DesignSpec,
    targets: tuple[float, ...],
    runs: DesignRuns,
    say: LogFn,
) -> FrontierResult:
    started = time.perf_counter()
    base, network, sites, fixed, current, max_stations = search_setting(scenario, spec)
    if fleets[0] < spec.min_vans_per_station * max(1, int(fixed.sum())):
        raise UserInputError(f"{fleets[0]} vans cannot staff the fixed stations", field="--vans")
    designs = Designs(runs.designs_dir, sites, base, runs.experiment)
    found: list[tuple[int, np.ndarray, Evaluation, int, str]] = []
    rows: list[pd.DataFrame] = []
    timings: dict[str, float] = {}
    previous: np.ndarray | None = None
    for fleet in fleets:
        t0 = time.perf_counter()
        point_spec = spec.model_copy(update={"max_vans": fleet})
        say(f"frontier: {fleet} vans")
        stage1 = first_stage(
            point_spec,
            base,
            network,
            sites,
            fixed,
            current,
            max_stations,
            fleet,
            say,
            runs.experiment,
        )
        start = stage1.vans if previous is None else warm_start(
            previous, stage1.vans, fleet, max_stations
        )  # fmt: skip
        step = spec.first_vans_move or max(1, round(0.05 * fleet))
        moves = MoveGenerator(
            point_spec, base, sites, stage1.coverage, stage1, fixed, max_stations,
            vans_step=step, remove_step=step,
        )  # fmt: skip
        history = History(point_spec, t0, say)
        deadline = t0 + spec.time_limit_min * 60.0 if spec.time_limit_min else math.inf
        what = "first-stage seed" if previous is None else "warm start from the smaller fleet"
        outcome = search(point_spec, designs, moves, start, stage1.vans, history, deadline, what)
        found.append((fleet, outcome.vans, outcome.evaluation, len(history.rows), outcome.stop))
        rows.append(pd.DataFrame(history.rows).assign(fleet=fleet))
        previous = outcome.vans
        timings[f"vans_{fleet}_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    confirm_seed = spec.confirm_seed if spec.confirm_seed is not None else base.seed + 1
    confirm_base = base.with_overrides(
        seed=confirm_seed, replications=spec.confirm_replications or base.replications
    )
    say(f"confirmation: {len(found)} points on fresh streams (seed {confirm_seed})")
    confirmed = designs.run([vans for _, vans, *_ in found], confirm_base)
    timings["confirm_s"] = time.perf_counter() - t1
    points = [
        FrontierPoint(fleet, vans, evaluation.kpis, check.kpis, n, stop)
        for (fleet, vans, evaluation, n, stop), check in zip(found, confirmed, strict=True)
    ]
    history_table = pd.concat(rows, ignore_index=True)
    history_table.insert(0, "fleet", history_table.pop("fleet"))
    return FrontierResult(
        base, spec, spec.objective, targets, sites, points, confirm_seed, history_table,
        time.perf_counter() - started, timings,
    )  # fmt: skip


__all__ = [
    "COST_KPI",
    "FrontierPoint",
    "FrontierResult",
    "frontier",
    "knee_index",
    "parse_fleets",
    "parse_targets",
    "warm_start",
]
