"""What every command that simulates does before and after its runs, written once.

:func:`scenario_from_options` loads a scenario and lays the shared options on it (days,
seed, policy, replications, a trace); :func:`engine_from_options` and
:func:`experiment_from_options` check the engine and precision options;
:func:`pointed_at` names the scenario's file and line in an error found after loading;
:func:`checked_work` stops work past this machine's limits; :func:`stop_on_failures`
lists the runs that raised. The output folder is claimed by :mod:`sim.cli.output`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from sim.cli.app import err, out
from sim.errors import UserInputError

if TYPE_CHECKING:
    from sim.cli.options import ExperimentOptions
    from sim.experiments.runs.executor import Engine
    from sim.experiments.runs.precision import PrecisionTarget
    from sim.experiments.runs.progress import ReportFn
    from sim.experiments.runs.run import RunResult
    from sim.experiments.runs.store import ResultStore, RunFailure
    from sim.experiments.runs.work_estimate import WorkEstimate
    from sim.model.scenario import Scenario


def locate(exc: UserInputError, scenario_path: Path) -> UserInputError:
    """Point an error found after validation (building the network) at its scenario line.

    The error is changed in place (and returned), so that re-raising it keeps its chain.
    """
    from sim.model.loading import field_line
    from sim.model.scenario import Scenario

    field = exc.field or ""
    if exc.file is None and field.split(".")[0].split("[")[0] in Scenario.model_fields:
        exc.file = str(scenario_path)
        exc.line = field_line(scenario_path, field)
    return exc


@contextmanager
def pointed_at(scenario_path: Path | None) -> Iterator[None]:
    """Inside, an error about a scenario field names ``scenario_path`` and its line."""
    try:
        yield
    except UserInputError as exc:
        if scenario_path is None:
            from sim.model.reference import default_scenario_path

            scenario_path = default_scenario_path()
        locate(exc, scenario_path)
        raise


def load(path: Path | None) -> tuple[Scenario, Path]:
    """The scenario at ``path`` (default: the bundled national one) and its path."""
    from sim.model.loading import load_scenario
    from sim.model.reference import default_scenario_path

    scenario_path = path if path is not None else default_scenario_path()
    return load_scenario(scenario_path), scenario_path


def check_policy(name: str) -> None:
    from sim.experiments.runs.arguments import check_policy

    check_policy(name, "--policy")


def with_trace(scenario: Scenario, trace: Path | None) -> Scenario:
    """The scenario replaying ``trace`` (``demand.trace.file``, every other trace field at
    its default: docs/demand.md, "Replaying a trace"). The trace it replays, given here
    or in its YAML, is read and checked now, before any work."""
    from sim.errors import ScenarioError
    from sim.model.loading import with_fields
    from sim.model.trace import read_trace

    if trace is not None:
        try:
            scenario = with_fields(scenario, {"demand.trace": {"file": str(trace)}})
        except ScenarioError as exc:
            raise UserInputError(exc.message, field="--trace") from None
    if scenario.demand.trace is not None:
        read_trace(scenario)
    return scenario


def with_overrides(
    scenario: Scenario,
    days: float | None = None,
    seed: int | None = None,
    policy: str | None = None,
    replications: int | None = None,
) -> Scenario:
    """The scenario with ``--days``, ``--seed``, ``--policy`` and ``--replications`` laid on
    it, each checked and named as its option in an error."""
    from sim.experiments.runs.arguments import check_replications, check_seed, shortened_horizon

    changes: dict[str, object] = {}
    if days is not None:
        changes["horizon"] = shortened_horizon(scenario, days, "--days")
    if seed is not None:
        changes["seed"] = check_seed(seed, "--seed")
    if policy is not None:
        check_policy(policy)
        changes["dispatch"] = {**scenario.dispatch.model_dump(), "policy": policy, "options": {}}
    if replications is not None:
        changes["replications"] = check_replications(replications, "--replications")
    return scenario.with_overrides(**changes) if changes else scenario


def scenario_from_options(
    path: Path | None,
    *,
    days: float | None = None,
    seed: int | None = None,
    policy: str | None = None,
    replications: int | None = None,
    trace: Path | None = None,
) -> tuple[Scenario, Path]:
    """Load a scenario and lay the shared options on it (a trace is read and checked)."""
    scenario, scenario_path = load(path)
    scenario = with_overrides(scenario, days, seed, policy, replications)
    return with_trace(scenario, trace), scenario_path


def overridden(days: float | None, replications: int | None) -> dict[str, str]:
    """The scenario fields set by an option, and the option: an error names what was given."""
    names = {"horizon.days": "--days", "replications": "--replications"}
    given = {"horizon.days": days, "replications": replications}
    return {field: option for field, option in names.items() if given[field] is not None}


def engine_from_options(workers: int, engine: str, scheduler: str | None) -> Engine:
    """The engine ``--workers``, ``--engine`` and ``--scheduler`` ask for, checked."""
    from sim.experiments.runs.arguments import check_workers
    from sim.experiments.runs.executor import make_engine

    return make_engine(engine, check_workers(workers, "--workers"), scheduler)


@dataclass
class Experiment:
    """What the engine options of a command resolve to."""

    engine: Engine
    precision: list[PrecisionTarget]
    max_replications: int

    def options(self, store: ResultStore | None, report: ReportFn) -> dict[str, Any]:
        """The keyword arguments of :func:`sim.experiments.runs.run.run` and its kin."""
        return {
            "engine": self.engine,
            "store": store,
            "report": report,
            "precision": self.precision,
            "max_replications": self.max_replications,
            "raise_on_failure": False,
        }


def experiment_from_options(
    workers: int,
    engine: str,
    scheduler: str | None,
    precision: Sequence[str] | None,
    max_replications: int,
    replications: int,
) -> Experiment:
    """Check the engine and precision options (UserInputError naming the option)."""
    from sim.experiments.runs.arguments import check_max_replications, check_precision

    runner = engine_from_options(workers, engine, scheduler)
    targets = check_precision(list(precision or ()), "--precision")
    cap = check_max_replications(max_replications, replications, targets, "--max-replications")
    return Experiment(runner, targets, cap)


def checked_work(
    runs: list[tuple[Scenario, int]],
    *,
    workers: int,
    force: bool,
    keep_tables: bool = True,
    out_dir: Path | None = None,
    overridden: dict[str, str] | None = None,
) -> WorkEstimate:
    """Estimate the work; past this machine's limits, stop unless ``force``.

    ``overridden`` maps a scenario field set by an option (or by a sweep file) to the
    name the user gave it, so that an error names that and not the scenario's field."""
    from sim.experiments.runs.work_estimate import (
        blame,
        check_work,
        estimate_work,
        is_calibrated,
        machine_limits,
        measure_costs,
    )
    from sim.model.call_volume import expected_calls_per_day

    if not is_calibrated() and err.is_terminal:
        with err.status("measuring the cost of a call on this build (once per build)..."):
            measure_costs()
    estimate = estimate_work(
        runs, workers=workers, keep_tables=keep_tables, writes_tables=out_dir is not None
    )
    if not force:
        biggest = max(runs, key=lambda run: expected_calls_per_day(run[0]) * run[0].horizon.days)
        field = blame(*biggest)
        field = (overridden or {}).get(field, field)
        check_work(estimate, machine_limits(out_dir), field)
    return estimate


def checked_design(
    scenario: Scenario,
    points: int,
    *,
    workers: int,
    force: bool,
    field: str,
    file: str | Path | None = None,
    line: int | None = None,
    overridden: dict[str, str] | None = None,
) -> None:
    """A design's size and work, checked from its number of points before any is made.

    More than the points a design may have is refused even with ``force``; unless
    ``force``, the work of ``points`` runs of ``scenario`` (its replications each) past
    this machine's limits is refused naming ``field`` (the option, or the sweep file's
    line), once the scenario's own runs are seen to fit (else those name their field, or
    the option in ``overridden`` that set it, as :func:`checked_work` does)."""
    from sim.errors import WorkLimitError
    from sim.experiments.runs.work_estimate import check_design_points

    check_design_points(points, field, file=file, line=line)
    if force:
        return
    runs = scenario.replications
    checked_work(
        [(scenario, runs)], workers=workers, force=False, keep_tables=False, overridden=overridden
    )
    try:
        checked_work([(scenario, runs * points)], workers=workers, force=False, keep_tables=False)
    except WorkLimitError as exc:
        exc.field, exc.file, exc.line = field, None if file is None else str(file), line
        raise


def stop_on_policy_failure(failures: Sequence[RunFailure], finished: int) -> None:
    """A policy that raised in every run: its one line (exit 2), as without the engine.
    A run whose results could not be written (a full disk): that line (exit 2), the
    runs written kept in the store for the same command to resume from."""
    from sim.errors import OutputError

    unwritten = [failure for failure in failures if failure.error_type == OutputError.__name__]
    if unwritten:
        raise OutputError(unwritten[0].message)
    if finished or not failures or not failures[0].headline:
        return
    from sim.errors import PolicyFailure

    first = failures[0]
    if isinstance(first.exception, PolicyFailure):
        raise first.exception  # run in this process: with the policy's own traceback
    raise PolicyFailure(first.headline)


def stop_on_failures(
    failures: Sequence[RunFailure],
    runs: int,
    store: ResultStore | None,
    label: Callable[[int], str] = lambda point: "",
) -> None:
    """If any run raised: list them, then stop with one line and exit code 1."""
    if not failures:
        return
    table = Table(title=f"{len(failures)} failed run(s)")
    for column in ("point", "policy", "replication", "error", "call"):
        table.add_column(column)
    for failure in failures:
        table.add_row(
            f"{failure.point} {label(failure.point)}".strip(),
            failure.policy,
            str(failure.replication),
            f"{failure.error_type}: {failure.message}",
            "" if failure.call_id is None else str(failure.call_id),
        )
    out.print(table)
    kept = (
        f"; the {runs - len(failures)} others are kept in {store.root} (failed/ has each "
        "error; run the same command again to retry only the failed)"
        if store is not None
        else ""
    )
    first = failures[0].describe(label(failures[0].point))
    err.print(
        f"error: {len(failures)} of {runs} runs failed{kept}. First: {first}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    raise typer.Exit(code=1)


def precision_note(results: Sequence[RunResult]) -> str:
    """``12 replications; on_time_arrival_rate half-width 0.0042 <= 0.005`` (worst policy)."""
    notes = []
    n = max((len(r.replications) for r in results), default=0)
    for k, first in enumerate(results[0].precision if results else []):
        target = first.target
        widths = [r.precision[k].half_width for r in results]
        worst = max(widths, key=lambda h: math.inf if math.isnan(h) else h)
        sign = "<=" if all(r.precision[k].met for r in results) else ">"
        notes.append(f"{target.kpi} half-width {worst:.4g} {sign} {target.half_width:g}")
    return f"{n} replications" + ("; " + "; ".join(notes) if notes else "")


def options_scenario(
    path: Path | None, options: ExperimentOptions, policy: str | None = None
) -> tuple[Scenario, Path]:
    """:func:`scenario_from_options` with the shared experiment options."""
    return scenario_from_options(
        path,
        days=options.days,
        seed=options.seed,
        policy=policy,
        replications=options.replications,
        trace=options.trace,
    )


def options_experiment(options: ExperimentOptions, scenario: Scenario) -> Experiment:
    """:func:`experiment_from_options` with the shared experiment options."""
    return experiment_from_options(
        options.workers,
        options.engine,
        options.scheduler,
        options.precision,
        options.max_replications,
        scenario.replications,
    )
