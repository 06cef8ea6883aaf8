"""Network design: where stations go and how many vans each, judged by the simulation.

Two stages (docs/network_design.md):

1. *Analytic seeding* (:mod:`sim.experiments.design.sites`): demand points from the scenario's
   own demand model, a coverage radius from its promise and travel models, stations by
   maximal covering or p-median and vans by expected covering with busy fractions from
   a short simulation, all solved as MILPs (:mod:`sim.experiments.design.covering`).
2. *Simulation in the loop*: the seeded design, then moves (:mod:`sim.experiments.design.moves`:
   move vans between stations, remove vans, open, close or move a station) proposed
   from what the incumbent's runs show, each candidate run on the same call streams as
   the incumbent (the scenario's seed and replications: common random numbers). A
   candidate replaces the incumbent only when a paired interval says it is better
   (:func:`judge`): the paired-t interval of the objective's difference must exclude
   zero on the good side, at a Bonferroni-corrected level when a round judges several
   candidates at once. A requirement (``on_time_arrival_rate >= 0.93``) holds when the
   candidate's own 95% interval lies on its good side. The search stops on a budget of
   evaluations or of time, or when no move is left to try.

The design returned is then run, with the current network, on fresh streams (another
seed, ``DesignSpec.confirm_seed``), so that its reported KPIs carry no selection bias
from the search; that seed goes into the scenario files written beside it
(:mod:`sim.outputs.design_folder`), so ``rescue-sim run optimised.yaml`` reproduces
them exactly.

Every run (the first stage's probe, each design of the search, the confirmation) goes
through one :class:`~sim.experiments.runs.executor.Experiment` on the engine, into a
result store (:mod:`sim.experiments.runs.store`) under the full run key: a search run
again with the same store reads back every run whose scenario, input files, policy and
code are unchanged, and runs only the others.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.kpi_catalogue import is_share
from sim.analysis.kpis import Interval, summarise
from sim.analysis.paired import difference_columns
from sim.errors import UserInputError
from sim.experiments.design.covering import InfeasibleModel
from sim.experiments.design.evaluation import (
    DesignRuns,
    Evaluation,
    design_experiment,
    evaluate_designs,
    no_log,
    paired_interval,
)
from sim.experiments.design.moves import Candidate, MoveGenerator
from sim.experiments.design.sites import (
    FirstStageInputs,
    Sites,
    Stage1,
    candidate_sites,
    coverage,
    demand_points,
    design_csv,
    design_key,
    design_scenario,
    design_table,
    fewest_vans,
    probe,
    seed_stations,
    seed_vans,
    van_model,
)
from sim.experiments.design.spec import VANS, DesignSpec, Requirement
from sim.experiments.runs.arguments import shortened_horizon
from sim.experiments.runs.executor import Engine, Experiment
from sim.experiments.runs.progress import ReportFn
from sim.experiments.runs.store import ResultStore, atomic_write
from sim.experiments.runs.worker import cached_network
from sim.model.network import Network
from sim.model.scenario import Scenario

LogFn = Callable[[str], None]
"""Called with one line of progress text."""


# --------------------------------------------------------------------------- judging


@dataclass
class Judgement:
    """Whether a candidate beats the incumbent, and on what evidence."""

    accepted: bool
    reason: str
    kpi: str  # the KPI the decision turned on ('vans' when the fleet decided)
    diff: Interval
    feasible: bool


def _feasible(spec: DesignSpec, evaluation: Evaluation) -> bool:
    return all(req.met_by(evaluation.interval(req.kpi, spec.level)) for req in spec.require)


def judge(
    spec: DesignSpec,
    candidate: Evaluation,
    candidate_vans: int,
    incumbent: Evaluation,
    incumbent_vans: int,
    level: float,
) -> Judgement:
    """The acceptance rule: lexicographic in (requirements met, objective).

    An incumbent short of a requirement is replaced by a candidate that meets them all,
    or by one whose paired interval on the requirement it misses most lies wholly on the
    good side (with no other requirement significantly worse). An incumbent that meets
    them is replaced only by a candidate that meets them too and whose objective is
    better: fewer vans, or a paired interval of the objective KPI wholly on the good
    side (for 'minimise vans' with the same fleet, the same on the requirement with the
    least slack).
    """
    feasible = _feasible(spec, candidate)
    nothing = Interval(math.nan, math.nan, math.nan, 0)

    def significant(kpi: str, higher: bool) -> tuple[bool, Interval]:
        diff = paired_interval(candidate, incumbent, kpi, level)
        good = diff.low > 0 if higher else diff.high < 0
        return bool(good), diff

    def worse_elsewhere(skip: str) -> str | None:
        for req in spec.require:
            if req.kpi == skip:
                continue
            diff = paired_interval(candidate, incumbent, req.kpi, level)
            if (diff.high < 0) if req.at_least is not None else (diff.low > 0):
                return req.kpi
        return None

    def tightest(evaluation: Evaluation) -> Requirement:
        return min(spec.require, key=lambda r: r.slack(float(evaluation.kpis[r.kpi].mean())))

    if not _feasible(spec, incumbent):
        req = tightest(incumbent)
        if feasible:
            diff = paired_interval(candidate, incumbent, req.kpi, level)
            return Judgement(True, "meets every requirement", req.kpi, diff, True)
        good, diff = significant(req.kpi, req.at_least is not None)
        other = worse_elsewhere(req.kpi)
        if good and other is None:
            return Judgement(True, f"closer to {req}", req.kpi, diff, False)
        why = f"{other} worse" if good else f"not significantly closer to {req}"
        return Judgement(False, why, req.kpi, diff, False)
    if not feasible:
        short = [
            str(r) for r in spec.require if not r.met_by(candidate.interval(r.kpi, spec.level))
        ]
        return Judgement(False, "breaks " + ", ".join(short), spec.objective, nothing, False)
    if spec.objective == VANS:
        diff = Interval(
            float(candidate_vans - incumbent_vans),
            float(candidate_vans - incumbent_vans),
            float(candidate_vans - incumbent_vans),
            1,
        )
        if candidate_vans < incumbent_vans:
            return Judgement(
                True, f"{incumbent_vans - candidate_vans} vans fewer", VANS, diff, True
            )
        if candidate_vans > incumbent_vans:
            return Judgement(False, "more vans", VANS, diff, True)
        req = tightest(incumbent)
        good, diff = significant(req.kpi, req.at_least is not None)
        other = worse_elsewhere(req.kpi)
        if good and other is None:
            return Judgement(True, f"same fleet, more slack on {req}", req.kpi, diff, True)
        return Judgement(False, f"same fleet, no more slack on {req}", req.kpi, diff, True)
    good, diff = significant(spec.objective, spec.higher_is_better)
    if good:
        return Judgement(True, f"{spec.objective} better", spec.objective, diff, True)
    return Judgement(
        False, f"{spec.objective} not significantly better", spec.objective, diff, True
    )


# --------------------------------------------------------------------------- the result


@dataclass
class OptimiseResult:
    """What the optimiser found, with the evidence.

    ``history``: one flat row per design run on the search streams. ``current_kpis`` and
    ``optimised_kpis``: KPIs by replication of the current and the optimised network on
    the confirmation streams (``confirm_seed``).
    """

    spec: DesignSpec
    scenario: Scenario
    sites: Sites
    current_vans: np.ndarray
    seed_vans: np.ndarray
    optimised_vans: np.ndarray
    stage1: Stage1
    history: pd.DataFrame
    confirm_seed: int
    current_kpis: pd.DataFrame
    optimised_kpis: pd.DataFrame
    stop_reason: str
    elapsed_s: float
    evaluations: int
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def stations(self) -> pd.DataFrame:
        """The optimised network as a stations table (id, lat, lon, vans, workshop_bays)."""
        return design_table(self.sites, self.optimised_vans)

    @property
    def current_stations(self) -> pd.DataFrame:
        """The current network in the same form."""
        return design_table(self.sites, self.current_vans)

    @property
    def stations_csv(self) -> str:
        """The optimised stations CSV, byte for byte the file that was run."""
        return design_csv(self.sites, self.optimised_vans)

    @property
    def current_stations_csv(self) -> str:
        return design_csv(self.sites, self.current_vans)

    def confirm_scenario(self, stations_csv: Path) -> Scenario:
        """The scenario that reproduces the reported KPIs with the given stations file."""
        return design_scenario(self.scenario, stations_csv).with_overrides(
            seed=self.confirm_seed, replications=len(self.optimised_kpis)
        )

    def kpi_table(self) -> pd.DataFrame:
        """Current and optimised KPIs side by side, and the paired difference (95%)."""
        current = summarise(self.current_kpis)
        optimised = summarise(self.optimised_kpis)
        a = Evaluation("", self.optimised_kpis, pd.DataFrame(), pd.DataFrame(), 0.0)
        b = Evaluation("", self.current_kpis, pd.DataFrame(), pd.DataFrame(), 0.0)
        rows = []
        for kpi in current.index:
            diff = paired_interval(a, b, str(kpi))
            rows.append(
                {
                    "kpi": kpi,
                    "current": current.at[kpi, "mean"],
                    "current_low": current.at[kpi, "low"],
                    "current_high": current.at[kpi, "high"],
                    "optimised": optimised.at[kpi, "mean"],
                    "optimised_low": optimised.at[kpi, "low"],
                    "optimised_high": optimised.at[kpi, "high"],
                    **difference_columns(str(kpi), diff),
                }
            )
        return pd.DataFrame(rows)

    def changes(self) -> pd.DataFrame:
        """One row per site whose vans changed: opened, closed, or vans gained or lost."""
        table = self.sites.table[["id", "province", "prefecture", "adcode", "lat", "lon", "origin"]]
        frame = table.assign(vans_before=self.current_vans, vans_after=self.optimised_vans)
        frame = frame[frame["vans_before"] != frame["vans_after"]].copy()
        before, after = frame["vans_before"], frame["vans_after"]
        frame["change"] = np.select(
            [before == 0, after == 0, after > before],
            ["opened", "closed", "vans added"],
            "vans removed",
        )
        frame["vans_change"] = after - before
        return frame.reset_index(drop=True)

    def changes_by_province(self) -> pd.DataFrame:
        """Stations and vans before and after, stations opened and closed, per province."""
        before, after = self.current_vans, self.optimised_vans
        table = pd.DataFrame(
            {
                "province": self.sites.table["province"],
                "stations_before": (before > 0).astype(np.int64),
                "stations_after": (after > 0).astype(np.int64),
                "opened": ((before == 0) & (after > 0)).astype(np.int64),
                "closed": ((before > 0) & (after == 0)).astype(np.int64),
                "vans_before": before,
                "vans_after": after,
            }
        )
        frame = table.groupby("province", sort=True).sum()
        frame["vans_change"] = frame["vans_after"] - frame["vans_before"]
        return frame.reset_index()


# --------------------------------------------------------------------------- helpers


def fixed_sites(spec: DesignSpec, sites: Sites) -> np.ndarray:
    fixed = np.zeros(len(sites), dtype=bool)
    if spec.fixed_stations == "all":
        fixed[sites.is_current] = True
        return fixed
    ids = {name: k for k, name in enumerate(sites.ids) if sites.is_current[k]}
    for name in spec.fixed_stations:
        if name not in ids:
            raise UserInputError(f"{name!r} is not a current station", field="fixed_stations")
        fixed[ids[name]] = True
    return fixed


def prepare(scenario: Scenario, spec: DesignSpec) -> Scenario:
    """The scenario the search runs: the spec's days, replications and seed applied."""
    changes: dict[str, Any] = {}
    if spec.days is not None:
        changes["horizon"] = shortened_horizon(scenario, spec.days)
    if spec.replications is not None:
        changes["replications"] = spec.replications
    if spec.seed is not None:
        changes["seed"] = spec.seed
    prepared = scenario.with_overrides(**changes) if changes else scenario
    if prepared.replications < 2:
        raise UserInputError(
            "a paired interval needs at least 2 replications", field="replications"
        )
    return prepared


def search_runs(base: Scenario, spec: DesignSpec) -> list[tuple[Scenario, int]]:
    """The most runs a search of ``base`` (:func:`prepare`'s) may make, to estimate its
    work before stage 1: every design of the budget, then the current and the optimised
    network confirmed. The designs change stations and vans, not the calls to serve."""
    confirm = spec.confirm_replications or base.replications
    return [(base, base.replications)] * spec.max_evaluations + [(base, confirm)] * 2


# --------------------------------------------------------------------------- the search


class Designs:
    """Writes each design's stations CSV once and runs designs on the search streams."""

    def __init__(
        self, designs_dir: Path, sites: Sites, base: Scenario, experiment: Experiment
    ) -> None:
        self.designs_dir = designs_dir
        self.sites = sites
        self.base = base
        self.experiment = experiment

    def scenario(self, vans: np.ndarray, base: Scenario | None = None) -> Scenario:
        text = design_csv(self.sites, vans)
        path = self.designs_dir / f"{design_key(text)}.csv"
        if not path.is_file():  # whole or absent: written under another name, then renamed
            atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        return design_scenario(base or self.base, path)

    def run(self, designs: Sequence[np.ndarray], base: Scenario | None = None) -> list[Evaluation]:
        base = base or self.base
        return evaluate_designs(
            [self.scenario(v, base) for v in designs],
            list(range(base.replications)),
            experiment=self.experiment,
        )


class History:
    """The search as flat rows, one per design run, and its progress lines."""

    def __init__(self, spec: DesignSpec, started: float, say: LogFn) -> None:
        self.spec = spec
        self.started = started
        self.say = say
        self.rows: list[dict[str, Any]] = []

    def objective(self, evaluation: Evaluation, vans: np.ndarray) -> Interval:
        """The objective's mean and 95% interval (a share's interval cut to [0, 1])."""
        objective = self.spec.objective
        if objective == VANS:
            n = float(vans.sum())
            return Interval(n, n, n, 1)
        ci = evaluation.interval(objective, self.spec.level)
        if is_share(objective):
            ci = Interval(ci.mean, max(0.0, ci.low), min(1.0, ci.high), ci.n)
        return ci

    def add(
        self,
        round_: int,
        candidate: Candidate,
        evaluation: Evaluation,
        verdict: Judgement | None,
        incumbent_value: float,
        level: float,
    ) -> None:
        value = self.objective(evaluation, candidate.vans)
        row: dict[str, Any] = {
            "evaluation": len(self.rows) + 1,
            "round": round_,
            "kind": candidate.kind,
            "move": candidate.move,
            "vans_moved": candidate.vans_moved,
            "opened": ";".join(candidate.opened),
            "closed": ";".join(candidate.closed),
            "stations": int((candidate.vans > 0).sum()),
            "vans": int(candidate.vans.sum()),
            "objective": self.spec.objective,
            "objective_mean": value.mean,
            "objective_low": value.low,
            "objective_high": value.high,
            "decided_on": verdict.kpi if verdict else "",
            "diff_mean": verdict.diff.mean if verdict else math.nan,
            "diff_low": verdict.diff.low if verdict else math.nan,
            "diff_high": verdict.diff.high if verdict else math.nan,
            "level": level,
            "feasible": _feasible(self.spec, evaluation),
            "accepted": verdict.accepted if verdict else True,
            "reason": verdict.reason if verdict else "reference",
            "incumbent_objective": incumbent_value,
            "elapsed_s": time.perf_counter() - self.started,
            "design": evaluation.key,
        }
        shown = [self.describe(value)]
        for req in self.spec.require:
            ci = evaluation.interval(req.kpi, self.spec.level)
            row[f"{req.kpi}_mean"], row[f"{req.kpi}_low"], row[f"{req.kpi}_high"] = (
                ci.mean,
                ci.low,
                ci.high,
            )
            row[f"{req.kpi}_required"] = req.threshold
            if req.kpi != self.spec.objective:
                shown.append(
                    f"{req.kpi} {_show(req.kpi, ci.mean)} "
                    f"[{_show(req.kpi, ci.low)}, {_show(req.kpi, ci.high)}]"
                )
        self.rows.append(row)
        where = f"round {round_}, " if round_ else ""
        text = f"evaluation {row['evaluation']} ({where}{candidate.move}): "
        text += ", ".join(shown)
        if verdict is not None:
            text += f"; {_diff_text(verdict)}: " + ("accepted" if verdict.accepted else "rejected")
        self.say(text + f" [{row['elapsed_s']:.0f} s]")

    def describe(self, value: Interval) -> str:
        objective = self.spec.objective
        if objective == VANS:
            return f"{int(value.mean)} vans"
        low, high = _show(objective, value.low), _show(objective, value.high)
        return f"{objective} {_show(objective, value.mean)} [{low}, {high}]"


def first_stage(
    spec: DesignSpec,
    base: Scenario,
    network: Network,
    sites: Sites,
    fixed: np.ndarray,
    current: np.ndarray,
    max_stations: int,
    max_vans: int,
    say: LogFn,
    experiment: Experiment,
) -> Stage1:
    """Seed a design from the covering models (see :mod:`sim.experiments.design.sites`)."""
    points = demand_points(base, network, min_calls=spec.demand_sample_calls, cell_km=spec.cell_km)
    cover = coverage(base, spec.coverage_level)
    say(
        f"stage 1: {len(points):,} demand points from {points.sampled_calls:,} drawn calls; "
        f"coverage radius {cover.radius_road_km:.0f} road km ({cover.radius_gc_km:.0f} km "
        f"great circle) at {spec.coverage_level:.0%} on time"
    )
    probed = probe(base, network, spec.probe_days, experiment)
    say(
        f"stage 1: probe of {probed.days:g} days: {probed.pooled_busy_h_per_job:.2f} busy "
        f"van-hours a job, vans busy {probed.van_utilisation:.1%}"
    )
    try:
        is_open, station_solve = seed_stations(
            spec.stations_model,
            sites,
            points,
            cover,
            current > 0,
            max_stations=max_stations,
            fixed=fixed,
            opening_budget_cny=spec.opening_budget_cny,
            time_limit_s=spec.milp_time_limit_s,
        )
        n_open = int(is_open.sum())
        if spec.min_vans_per_station * n_open > max_vans:
            raise UserInputError(
                f"{max_vans} vans cannot give {spec.min_vans_per_station} to each of "
                f"{n_open} stations",
                field="max_vans",
            )
        # Maximising, every van allowed is placed; minimising vans starts from today's.
        total = max_vans if spec.objective != VANS else min(max_vans, int(current.sum()))
        inputs = FirstStageInputs(base, sites, points, cover, probed)
        seeded, van_solve, kind, seed_model = seed_vans(
            inputs,
            is_open,
            total_vans=total,
            min_vans=spec.min_vans_per_station,
            max_vans=spec.max_vans_per_station,
            time_limit_s=spec.milp_time_limit_s,
        )
        now = van_model(inputs, current > 0)
        value_current = now.value(current[now.site])
        value_seed = seed_model.value(seeded[seed_model.site])
        fewest = None
        if kind == "local":
            try:
                fewest = fewest_vans(
                    seed_model,
                    value_current,
                    spec.min_vans_per_station,
                    spec.max_vans_per_station,
                    spec.milp_time_limit_s,
                )
            except InfeasibleModel:
                fewest = None
    except InfeasibleModel as exc:
        raise UserInputError(str(exc), field="stations_model") from None
    if station_solve is not None:
        opened = int((is_open & (current == 0)).sum())
        closed = int((~is_open & (current > 0)).sum())
        say(
            f"stage 1: stations by {spec.stations_model}: {opened} opened, {closed} closed "
            f"({_solve_text(station_solve)})"
        )
    say(
        f"stage 1: vans by expected covering ({kind} busy fractions): the model's on-time "
        f"calls an hour {value_current:.2f} -> {value_seed:.2f} ({_solve_text(van_solve)})"
        + (f"; its fewest vans for today's value: {fewest}" if fewest else "")
    )
    return Stage1(
        seeded,
        cover,
        points,
        probed,
        kind,
        station_solve,
        van_solve,
        value_current,
        value_seed,
        fewest,
    )


def _solve_text(solve: Any) -> str:
    state = "optimal" if solve.proven_optimal else f"not proven optimal: {solve.status}"
    return f"HiGHS {state}, {solve.seconds:.1f} s"


@dataclass
class Outcome:
    vans: np.ndarray
    evaluation: Evaluation
    stop: str


def search(
    spec: DesignSpec,
    designs: Designs,
    moves: MoveGenerator,
    current: np.ndarray,
    seeded: np.ndarray,
    history: History,
    deadline: float,
    start: str = "the scenario's network",
) -> Outcome:
    """Current and seed, then rounds of moves until the budget, the clock or the moves run out."""
    level = spec.level
    first = [current] + ([seeded] if not np.array_equal(seeded, current) else [])
    reference = designs.run(first)
    incumbent, incumbent_eval = current, reference[0]
    history.add(
        0,
        Candidate(current, "current", start),
        reference[0],
        None,
        math.nan,
        level,
    )
    if len(reference) > 1:
        verdict = judge(
            spec, reference[1], int(seeded.sum()), reference[0], int(current.sum()), level
        )
        if verdict.accepted:
            incumbent, incumbent_eval = seeded, reference[1]
        history.add(
            0,
            Candidate(seeded, "seed", "stage 1 seed"),
            reference[1],
            verdict,
            history.objective(incumbent_eval, incumbent).mean,
            level,
        )
    round_ = 0
    while True:
        used = len(history.rows)
        if used >= spec.max_evaluations:
            return Outcome(
                incumbent, incumbent_eval, f"budget of {spec.max_evaluations} designs used"
            )
        if time.perf_counter() >= deadline:
            return Outcome(
                incumbent, incumbent_eval, f"time limit of {spec.time_limit_min:g} min reached"
            )
        candidates: list[Candidate] = []
        for kind in spec.move_kinds:
            candidate = moves.propose(kind, incumbent, incumbent_eval)
            if candidate is not None and not any(
                np.array_equal(candidate.vans, c.vans) for c in candidates
            ):
                candidates.append(candidate)
        candidates = candidates[: spec.max_evaluations - used]
        if not candidates:
            return Outcome(incumbent, incumbent_eval, "no move left to try")
        round_ += 1
        # Bonferroni: the candidates of a round share the error rate of one comparison.
        level_used = 1.0 - (1.0 - level) / len(candidates)
        results = designs.run([c.vans for c in candidates])
        verdicts = [
            judge(spec, e, int(c.vans.sum()), incumbent_eval, int(incumbent.sum()), level_used)
            for c, e in zip(candidates, results, strict=True)
        ]
        best = -1
        for k, verdict in enumerate(verdicts):
            if verdict.accepted and (
                best < 0
                or _better(
                    verdict,
                    verdicts[best],
                    int(candidates[k].vans.sum()),
                    int(candidates[best].vans.sum()),
                    spec,
                )
            ):
                best = k
        before = history.objective(incumbent_eval, incumbent).mean
        # A move that beat the incumbent but lost the round is proposed again, unchanged in
        # size, from the new incumbent.
        for candidate, verdict in zip(candidates, verdicts, strict=True):
            if not verdict.accepted:
                moves.reject(candidate)
        if best >= 0:
            incumbent, incumbent_eval = candidates[best].vans, results[best]
            moves.accept()
        after = history.objective(incumbent_eval, incumbent).mean
        for k, (candidate, evaluation, verdict) in enumerate(
            zip(candidates, results, verdicts, strict=True)
        ):
            shown = verdict
            if verdict.accepted and k != best:
                reason = f"{verdict.reason}, but another move of the round did better"
                shown = Judgement(False, reason, verdict.kpi, verdict.diff, verdict.feasible)
            history.add(
                round_, candidate, evaluation, shown, after if k == best else before, level_used
            )


def optimise(
    scenario: Scenario,
    spec: DesignSpec | None = None,
    *,
    store: ResultStore | str | Path | None = None,
    workers: int = 1,
    log: LogFn | None = None,
    engine: Engine | None = None,
    report: ReportFn | None = None,
    description: dict[str, Any] | None = None,
) -> OptimiseResult:
    """Optimise a scenario's network; see the module docstring for the method.

    ``store`` (a :class:`ResultStore` or its folder; a temporary one when None, locked
    for the whole search) keeps every run, with its call and unit tables, under its full
    run key, and each design's stations CSV in its ``designs/`` folder: a search run
    again with the same store resumes, reading back the runs whose inputs and code are
    unchanged. ``workers`` processes run the replications, or ``engine`` (entered by the
    caller; a Dask cluster, say); the result depends on neither. ``report`` is called
    with the progress of the runs; ``description`` goes into the store's manifest.
    """
    with design_experiment(
        store=store, workers=workers, engine=engine, report=report, description=description
    ) as design_runs:
        return _optimise(scenario, spec or DesignSpec(), design_runs, log or no_log)


def search_setting(
    scenario: Scenario, spec: DesignSpec
) -> tuple[Scenario, Network, Sites, np.ndarray, np.ndarray, int]:
    """What a search works on, checked: the prepared scenario, its network, the candidate
    sites, the fixed ones, today's vans per site, and the most stations allowed."""
    base = prepare(scenario, spec)
    network = cached_network(base)
    sites = candidate_sites(
        base,
        network,
        candidates_csv=spec.candidates_csv,
        seat_opening_cost_cny=spec.seat_opening_cost_cny,
    )
    fixed = fixed_sites(spec, sites)
    current = np.zeros(len(sites), dtype=np.int64)
    current[: network.n_stations] = network.vans_per_station
    max_stations = spec.max_stations or network.n_stations
    if spec.stations_model == "keep" and max_stations < network.n_stations:
        raise UserInputError(
            f"max_stations {max_stations} is below the {network.n_stations} current stations: "
            "let a stations model (mclp, p_median) choose them",
            field="max_stations",
        )
    if int(fixed.sum()) > max_stations:
        raise UserInputError(
            f"{int(fixed.sum())} fixed stations exceed max_stations {max_stations}",
            field="max_stations",
        )
    return base, network, sites, fixed, current, max_stations


def _optimise(
    scenario: Scenario,
    spec: DesignSpec,
    runs: DesignRuns,
    say: LogFn,
) -> OptimiseResult:
    """:func:`optimise` with its store locked and its experiment made."""
    started = time.perf_counter()
    base, network, sites, fixed, current, max_stations = search_setting(scenario, spec)
    max_vans = spec.max_vans or network.n_vans
    timings: dict[str, float] = {}
    stage1 = first_stage(
        spec, base, network, sites, fixed, current, max_stations, max_vans, say, runs.experiment
    )
    timings["stage1_s"] = time.perf_counter() - started

    t1 = time.perf_counter()
    designs = Designs(runs.designs_dir, sites, base, runs.experiment)
    say(
        f"stage 2: {base.replications} replications of {base.horizon.days:g} days a design, "
        f"seed {base.seed}; at most {spec.max_evaluations} designs"
    )
    fleet = int(current.sum())
    first_step = spec.first_vans_move or max(1, round(0.05 * fleet))
    fewest = stage1.model_fewest_vans
    # Removing vans starts at half the saving the first stage's model sees (if any).
    remove_step = max(1, (fleet - fewest) // 2) if fewest and fewest < fleet else first_step
    moves = MoveGenerator(
        spec,
        base,
        sites,
        stage1.coverage,
        stage1,
        fixed,
        max_stations,
        vans_step=first_step,
        remove_step=min(first_step, remove_step),
    )
    history = History(spec, started, say)
    deadline = started + spec.time_limit_min * 60.0 if spec.time_limit_min else math.inf
    outcome = search(spec, designs, moves, current, stage1.vans, history, deadline)
    timings["stage2_s"] = time.perf_counter() - t1
    say(f"stage 2: stopped: {outcome.stop}; {len(history.rows)} designs run")

    t2 = time.perf_counter()
    confirm_seed = spec.confirm_seed if spec.confirm_seed is not None else base.seed + 1
    confirm_base = base.with_overrides(
        seed=confirm_seed, replications=spec.confirm_replications or base.replications
    )
    confirmed = designs.run([current, outcome.vans], confirm_base)
    timings["confirm_s"] = time.perf_counter() - t2
    result = OptimiseResult(
        spec=spec,
        scenario=base,
        sites=sites,
        current_vans=current,
        seed_vans=stage1.vans,
        optimised_vans=outcome.vans,
        stage1=stage1,
        history=pd.DataFrame(history.rows),
        confirm_seed=confirm_seed,
        current_kpis=confirmed[0].kpis,
        optimised_kpis=confirmed[1].kpis,
        stop_reason=outcome.stop,
        elapsed_s=time.perf_counter() - started,
        evaluations=len(history.rows),
        timings_s=timings,
    )
    say(_confirmation_text(result))
    return result


def _confirmation_text(result: OptimiseResult) -> str:
    objective = result.spec.objective
    head = f"confirmation (seed {result.confirm_seed}, {len(result.optimised_kpis)} replications): "
    if objective == VANS:
        return head + f"{int(result.current_vans.sum())} -> {int(result.optimised_vans.sum())} vans"
    row = next(r for r in result.kpi_table().to_dict("records") if r["kpi"] == objective)
    low, high = float(row["diff_low"]), float(row["diff_high"])
    return head + (
        f"{objective} {_show(objective, float(row['current']))} -> "
        f"{_show(objective, float(row['optimised']))}, paired difference "
        f"{_show(objective, float(row['diff']), signed=True)} "
        f"[{_show(objective, low, signed=True)}, {_show(objective, high, signed=True)}]"
    )


def _better(a: Judgement, b: Judgement, vans_a: int, vans_b: int, spec: DesignSpec) -> bool:
    """Of two accepted candidates, whether ``a`` is the better (fewer vans, then the mean)."""
    if spec.objective == VANS and vans_a != vans_b:
        return vans_a < vans_b
    sign = 1.0 if (spec.higher_is_better or a.kpi != spec.objective) else -1.0
    if a.kpi in {r.kpi for r in spec.require}:
        req = next(r for r in spec.require if r.kpi == a.kpi)
        sign = 1.0 if req.at_least is not None else -1.0
    return bool(sign * a.diff.mean > sign * b.diff.mean)


def _show(kpi: str, value: float, *, signed: bool = False) -> str:
    """A value for the search's log: a share in % (a difference of one in points)."""
    if math.isnan(value):
        return "-"
    if is_share(kpi):
        return f"{value * 100:+.2f} pt" if signed else f"{value:.2%}"
    return f"{value:+,.3f}" if signed else f"{value:,.3f}"


def _diff_text(verdict: Judgement) -> str:
    d = verdict.diff
    if verdict.kpi == VANS or math.isnan(d.mean):
        return verdict.reason
    return (
        f"{verdict.reason}, paired {_show(verdict.kpi, d.mean, signed=True)} "
        f"[{_show(verdict.kpi, d.low, signed=True)}, {_show(verdict.kpi, d.high, signed=True)}]"
    )


__all__ = [
    "DesignSpec",
    "Judgement",
    "OptimiseResult",
    "Requirement",
    "judge",
    "optimise",
    "prepare",
]
