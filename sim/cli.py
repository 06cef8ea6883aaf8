"""The ``rescue-sim`` command line: validate and run scenarios.

User mistakes (a bad scenario, an unknown policy, a missing file, an output place that
cannot be written, work past this machine's limits) end with one line on stderr naming
file, line and field, and exit code 2; never a traceback (see :mod:`sim.cli_guard`).
Everything is checked before the first simulation: the scenario, the options, the output
folder (claimed and locked) and the work estimate.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sim.cli_guard import guarded, leaves, say_error, set_debug
from sim.errors import UserInputError
from sim.version import __version__

if TYPE_CHECKING:
    import pandas as pd

    from sim.experiments.estimate import WorkEstimate
    from sim.model.scenario import Scenario
    from sim.outputs.output_folder import OutputFolder

if TYPE_CHECKING:
    from sim.experiments.engine import Engine
    from sim.experiments.precision import PrecisionTarget
    from sim.experiments.progress import ProgressState, ReportFn
    from sim.experiments.run import RunResult
    from sim.experiments.store import ResultStore, RunFailure

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Simulate a national roadside truck-rescue network.",
    pretty_exceptions_enable=False,
)
# Tables are wide: give them room when the output is a file or a pipe.
out = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True)


# Options several commands share.
DaysOption = Annotated[float | None, typer.Option(help="Override the horizon in days.")]
ReplicationsOption = Annotated[int | None, typer.Option(help="Override the replications.")]
SeedOption = Annotated[int | None, typer.Option(help="Override the seed.")]
PolicyOption = Annotated[str | None, typer.Option(help="Dispatch policy name or module:Class.")]
WorkersOption = Annotated[
    int, typer.Option(help="Worker processes for the runs (local, or of a Dask LocalCluster).")
]
EngineOption = Annotated[
    str,
    typer.Option(
        "--engine", help="Where the runs go: local (processes here) or dask (a LocalCluster)."
    ),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--scheduler", help="Run on the Dask cluster at tcp://HOST:PORT (docs/cluster.md)."
    ),
]
PrecisionOption = Annotated[
    list[str] | None,
    typer.Option(
        "--precision",
        help="KPI=HALFWIDTH: add replications until each point's 95% half-width of the KPI "
        "is at most HALFWIDTH; repeat for several KPIs.",
    ),
]
MaxReplicationsOption = Annotated[
    int, typer.Option("--max-replications", help="With --precision: the most per point.")
]

OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace an output folder that already holds files.")
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Run even if the work estimate exceeds this machine.")
]
TraceOption = Annotated[
    Path | None,
    typer.Option(
        "--trace", help="Replay this call trace CSV: time, lat, lon[, fault, segment...]."
    ),
]

# Seconds between two progress lines when stderr is not a terminal.
PROGRESS_INTERVAL_S = 5.0


def _show_version(value: bool) -> None:
    if value:
        out.print(f"rescue-sim {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="RESCUE_SIM_DEBUG",
            help="Show the full traceback of an error (also RESCUE_SIM_DEBUG=1).",
        ),
    ] = False,
) -> None:
    """Simulate a national roadside truck-rescue network."""
    set_debug(debug)


def _locate(exc: UserInputError, scenario_path: Path) -> UserInputError:
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
def _monitor(label: str) -> Iterator[ReportFn]:
    """Progress of an experiment on stderr: finished, failed, remaining and ETA.

    On a terminal, a bar redrawn in place (by the caller's thread: no refresh thread,
    so that worker processes can be forked safely); otherwise one plain line every
    ``PROGRESS_INTERVAL_S`` seconds and a last one at the end.
    """
    from sim.experiments.progress import LineReporter, format_duration

    if not err.is_terminal:
        lines = LineReporter(sys.stderr, label, interval_s=PROGRESS_INTERVAL_S)
        # No last line when the command stops inside: it ends with its own one line.
        yield lines
        lines.close()
        return
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        TextColumn("ETA {task.fields[eta]}"),
        console=err,
        transient=True,
        auto_refresh=False,
    ) as bar:
        task = bar.add_task(label, total=1.0, counts="", eta="?")
        drawn = [0.0]

        def report(state: ProgressState) -> None:
            counts = f"{state.finished} finished, {state.failed} failed, {state.remaining} left"
            eta = format_duration(state.eta_s)
            bar.update(task, completed=state.fraction, counts=counts, eta=eta)
            now = time.monotonic()
            if now - drawn[0] >= 0.1:
                bar.refresh()
                drawn[0] = now

        yield report


@contextmanager
def _progress(label: str) -> Iterator[Callable[[float], None]]:
    """Progress of a command that knows only the fraction of its work done (0..1).

    For the commands whose runs come in rounds an optimiser picks (sensitivity,
    calibrate): a bar on a terminal, redrawn by the caller's thread as :func:`_monitor`
    does; otherwise one line every ``PROGRESS_INTERVAL_S`` seconds with the share done,
    the time elapsed and the time still to go at the pace so far.
    """
    from sim.experiments.progress import format_duration

    start = time.monotonic()
    if not err.is_terminal:
        last = [start]

        def line(fraction: float) -> None:
            now = time.monotonic()
            if now - last[0] < PROGRESS_INTERVAL_S and fraction < 1.0:
                return
            last[0] = now
            elapsed = now - start
            eta = elapsed * (1.0 - fraction) / fraction if fraction > 0 else None
            print(
                f"{label}: {fraction:.0%} done, elapsed {format_duration(elapsed)}, "
                f"ETA {format_duration(eta)}",
                file=sys.stderr,
                flush=True,
            )

        yield line
        return
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        auto_refresh=False,
    ) as bar:
        task = bar.add_task(label, total=1.0)

        def redraw(fraction: float) -> None:
            bar.update(task, completed=fraction)
            bar.refresh()

        yield redraw


@dataclass
class _Experiment:
    """What the engine options of a command resolve to."""

    engine: Engine
    precision: list[PrecisionTarget]
    max_replications: int

    def options(self, store: ResultStore | None, report: ReportFn) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "store": store,
            "report": report,
            "precision": self.precision,
            "max_replications": self.max_replications,
            "raise_on_failure": False,
        }


def _experiment(
    workers: int,
    engine: str,
    scheduler: str | None,
    precision: Sequence[str] | None,
    max_replications: int,
    replications: int,
) -> _Experiment:
    """Check the engine and precision options (UserInputError naming the option)."""
    from sim.analysis.kpi_catalogue import CATALOGUE
    from sim.experiments.precision import parse_precision

    runner = _engine(workers, engine, scheduler)
    targets = [parse_precision(text, list(CATALOGUE)) for text in precision or ()]
    if targets and max_replications < max(2, replications):
        raise UserInputError(
            f"must be at least the replications to start with ({max(2, replications)})",
            field="--max-replications",
        )
    return _Experiment(runner, targets, max_replications)


def _engine(workers: int, engine: str, scheduler: str | None) -> Engine:
    """The engine ``--workers``, ``--engine`` and ``--scheduler`` ask for, checked."""
    from sim.experiments.arguments import check_workers
    from sim.experiments.engine import make_engine

    return make_engine(engine, check_workers(workers, "--workers"), scheduler)


def _failed(
    failures: Sequence[RunFailure],
    runs: int,
    store: ResultStore | None,
    label: Callable[[int], str] = lambda point: "",
) -> None:
    """List the runs that raised, then stop with one line and exit code 1."""
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


def _precision_note(results: Sequence[RunResult]) -> str:
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


def _load(path: Path | None) -> tuple[Scenario, Path]:
    from sim.model.loading import load_scenario
    from sim.model.reference import default_scenario_path

    scenario_path = path if path is not None else default_scenario_path()
    return load_scenario(scenario_path), scenario_path


def _check_policy(name: str) -> None:
    from sim.experiments.arguments import check_policy

    check_policy(name, "--policy")


STORE_KEPT = (
    "finished runs are kept in {root}; run the same command again to run only what is missing"
)


@dataclass
class _Output:
    """The output folder of a command, claimed before any work, and its result store.

    The store is written in the target folder itself when that folder is new, empty or
    an unfinished store of the same experiment: an interruption then keeps the finished
    runs for a rerun to resume from (and leaves nothing when none had finished). When
    an existing folder is replaced (``--overwrite``), the store is written in the
    staging folder, seeded with the old folder's store, so that the old folder stays as
    it was until the new one replaces it.
    """

    folder: OutputFolder | None = None
    store: ResultStore | None = None
    in_target: bool = False
    made_target: bool = False

    @property
    def kept_store(self) -> ResultStore | None:
        """The store an interruption or a failure leaves in place, if any."""
        return self.store if self.in_target else None

    def reporting(self, report: ReportFn) -> ReportFn:
        """``report``, and once a run has finished in the target, what an interruption keeps."""
        if not self.in_target or self.store is None:
            return report
        root = self.store.root
        said = [False]

        def both(state: ProgressState) -> None:
            if not said[0] and state.finished - state.reused > 0:
                leaves(STORE_KEPT.format(root=root))
                said[0] = True
            report(state)

        return both

    def keep_store(self) -> None:
        """Carry a store written in the target into the folder about to replace it."""
        store = self.store
        if self.folder is not None and self.in_target and store is not None and store.root.is_dir():
            self.folder.adopt(store.root.name)

    def close(self) -> None:
        """Release the folder; a store in the target without a finished run is removed."""
        if self.folder is None:
            return
        folder, self.folder = self.folder, None
        try:
            if not folder.committed and self.in_target and self.store is not None:
                _drop_empty_store(self.store, folder.target, self.made_target)
        finally:
            folder.abort()  # after a commit only the lock is left to release


def _drop_empty_store(store: ResultStore, target: Path, made_target: bool) -> None:
    import shutil

    root = store.root
    if not root.is_dir():
        return
    kept = any((root / "runs").glob("*.parquet")) or any((root / "failed").glob("*.json"))
    if kept:
        return
    shutil.rmtree(root, ignore_errors=True)
    if made_target:
        with contextlib.suppress(OSError):
            target.rmdir()  # only if nothing else is in it


def _resumable(description: dict[str, Any]) -> Callable[[Path], bool]:
    """Whether a folder is an unfinished result store of the same experiment."""
    from sim.experiments.store import ResultStore

    def same(path: Path) -> bool:
        if (path / "manifest.json").exists():
            return False  # a finished folder: replaced only with --overwrite
        try:
            manifest = ResultStore.in_folder(path).read_manifest()
        except (OSError, ValueError, UserInputError):
            return False
        return all(manifest.get(key) == value for key, value in description.items())

    return same


def _claim(out_dir: Path | None, overwrite: bool, description: dict[str, Any]) -> _Output:
    """Check and lock the output folder before any work, and place its result store."""
    if out_dir is None:
        return _Output()
    from sim.experiments.store import ResultStore
    from sim.outputs.output_folder import OutputFolder

    existed = out_dir.exists()
    described = json.loads(json.dumps(description))  # as the store's manifest reads back
    folder = OutputFolder.claim(out_dir, overwrite=overwrite, resumable=_resumable(described))
    leaves(f"nothing was written; {out_dir} is as it was")
    target = folder.target
    fresh = not target.exists() or not any(target.iterdir())
    if folder.resuming or fresh:
        store = ResultStore.in_folder(target)
        return _Output(folder, store, in_target=True, made_target=not existed)
    try:
        if (ResultStore.in_folder(target).root).is_dir():
            folder.adopt(ResultStore.in_folder(target).root.name)  # runs to reuse
    except BaseException:
        folder.abort()
        raise
    return _Output(folder, ResultStore.in_folder(folder.staging))


def _stop_on_policy_failure(failures: Sequence[RunFailure], finished: int) -> None:
    """A policy that raised in every run: its one line (exit 2), as without the engine."""
    if finished or not failures or not failures[0].headline:
        return
    from sim.errors import PolicyFailure

    first = failures[0]
    if isinstance(first.exception, PolicyFailure):
        raise first.exception  # run in this process: with the policy's own traceback
    raise PolicyFailure(first.headline)


def _check_work(
    runs: list[tuple[Scenario, int]],
    *,
    workers: int,
    force: bool,
    keep_tables: bool = True,
    out_dir: Path | None = None,
    overridden: dict[str, str] | None = None,
) -> WorkEstimate:
    """Estimate the work; past this machine's limits, stop unless ``force`` (module doc)."""
    from sim.experiments.estimate import (
        blame,
        calibrate,
        check_work,
        estimate_work,
        is_calibrated,
        machine_limits,
    )
    from sim.model.call_volume import expected_calls_per_day

    if not is_calibrated() and err.is_terminal:
        with err.status("measuring the cost of a call on this build (once per build)..."):
            calibrate()
    estimate = estimate_work(
        runs, workers=workers, keep_tables=keep_tables, writes_tables=out_dir is not None
    )
    if not force:
        biggest = max(runs, key=lambda run: expected_calls_per_day(run[0]) * run[0].horizon.days)
        field = blame(*biggest)
        # A size given by an option is named as the option, not as the scenario's field.
        field = (overridden or {}).get(field, field)
        check_work(estimate, machine_limits(out_dir), field)
    return estimate


def _overridden(days: float | None, replications: int | None) -> dict[str, str]:
    names = {"horizon.days": "--days", "replications": "--replications"}
    given = {"horizon.days": days, "replications": replications}
    return {field: option for field, option in names.items() if given[field] is not None}


def _with_trace(scenario: Scenario, trace: Path | None) -> Scenario:
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


def _apply_overrides(
    scenario: Scenario,
    days: float | None,
    seed: int | None,
    policy: str | None,
    replications: int | None,
) -> Scenario:
    from sim.experiments.arguments import check_days, check_replications, check_seed

    changes: dict[str, object] = {}
    if days is not None:
        days = check_days(days, "--days")
        warmup = min(scenario.horizon.warmup_days, days / 10)
        changes["horizon"] = {**scenario.horizon.model_dump(), "days": days, "warmup_days": warmup}
    if seed is not None:
        changes["seed"] = check_seed(seed, "--seed")
    if policy is not None:
        _check_policy(policy)
        changes["dispatch"] = {**scenario.dispatch.model_dump(), "policy": policy, "options": {}}
    if replications is not None:
        changes["replications"] = check_replications(replications, "--replications")
    return scenario.with_overrides(**changes) if changes else scenario


@app.command()
@guarded
def validate(
    scenario_file: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    force: Annotated[
        bool, typer.Option("--force", help="Describe the scenario even past this machine's limits.")
    ] = False,
) -> None:
    """Check a scenario, describe the network and demand it resolves to, estimate its work."""
    from sim.model.call_volume import expected_calls_per_day
    from sim.model.network import build_network
    from sim.model.reference import PREFECTURE_COUNT

    try:
        scenario, path = _load(scenario_file)
        network = build_network(scenario)
        estimate = _check_work([(scenario, scenario.replications)], workers=1, force=force)
    except UserInputError as exc:
        _locate(exc, scenario_file)
        raise
    from sim.experiments.estimate import describe

    n_pref = int(network.area_columns["is_prefecture"].sum())
    table = Table(title=escape(f"{scenario.name}: {path}"), show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("stations", f"{network.n_stations}")
    table.add_row("vans", f"{network.n_vans}")
    table.add_row(
        "prefectures covered",
        f"{network.prefecture_coverage():.1%} of {n_pref}"
        + ("" if n_pref == PREFECTURE_COUNT else f" (national total {PREFECTURE_COUNT})"),
    )
    table.add_row("demand areas", f"{network.n_areas}")
    table.add_row("expected calls per day", f"{expected_calls_per_day(scenario):,.0f}")
    agents = scenario.hotline.agents_by_hour
    table.add_row("hotline agents on duty", f"{min(agents)}-{max(agents)}")
    horizon = scenario.horizon
    start = "" if horizon.start_date is None else f" from {horizon.start_date:%a %Y-%m-%d}"
    table.add_row("horizon", f"{horizon.days:g} days{start} (warm-up {horizon.warmup_days:g})")
    table.add_row("replications", f"{scenario.replications}")
    table.add_row("dispatch policy", scenario.dispatch.policy)
    table.add_row("surges", escape(", ".join(s.name for s in scenario.surges)) or "none")
    if network.travel_matrix is not None:
        table.add_row("travel matrix", escape(network.travel_matrix.describe()))
    if scenario.demand.trace is not None:
        from sim.model.trace import describe_trace

        table.add_row("call trace", escape(describe_trace(scenario)))
    for what, value in describe(estimate).items():
        table.add_row(what, value)
    out.print(table)
    if scenario.demand.trace is not None:
        from sim.model.trace import calls_off_land

        off_land = calls_off_land(scenario)
        if off_land is not None:
            err.print(f"warning: {off_land}", highlight=False, markup=False, soft_wrap=True)
    out.print("scenario is valid")


def _label(kpi: str) -> str:
    """A KPI's name for a table, in bold for the published headline rates."""
    from sim.analysis.kpi_catalogue import HEADLINE_KPIS

    return f"[bold]{kpi}[/bold]" if kpi in HEADLINE_KPIS else kpi


def _interval(kpi: str, low: float, high: float, separator: str = " - ") -> str:
    from sim.analysis.kpi_catalogue import format_kpi

    return "" if math.isnan(low) else f"{format_kpi(kpi, low)}{separator}{format_kpi(kpi, high)}"


def _kpi_table(summary: pd.DataFrame, title: str) -> Table:
    """The KPIs with their intervals; the published target beside the rates that have one."""
    from sim.analysis.kpi_catalogue import CATALOGUE, format_kpi

    table = Table(title=title)
    table.add_column("KPI")
    table.add_column("mean", justify="right")
    table.add_column("95% interval", justify="right")
    table.add_column("published target", justify="right")
    for kpi, row in summary.iterrows():
        name = str(kpi)
        entry = CATALOGUE.get(name)
        target = entry.target if entry is not None else None
        table.add_row(
            _label(name),
            format_kpi(name, row["mean"]),
            _interval(name, row["low"], row["high"]),
            "" if target is None else format_kpi(name, target),
        )
    return table


@app.command()
@guarded
def run(
    scenario_file: Annotated[
        Path | None, typer.Argument(help="Scenario YAML; default: the national Dongfeng scenario.")
    ] = None,
    days: DaysOption = None,
    replications: ReplicationsOption = None,
    seed: SeedOption = None,
    trace: TraceOption = None,
    policy: PolicyOption = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write the run folder here (a rerun resumes from it)."),
    ] = None,
    workers: WorkersOption = 1,
    overwrite: OverwriteOption = False,
    force: ForceOption = False,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
    precision: PrecisionOption = None,
    max_replications: MaxReplicationsOption = 100,
) -> None:
    """Run a scenario and print its KPIs with 95% intervals."""
    from sim.experiments.keys import scenario_digest
    from sim.experiments.run import run as run_scenario
    from sim.experiments.worker import cached_network
    from sim.model.reference import default_scenario_path

    output = _Output()
    try:
        scenario, path = _load(scenario_file)
        scenario = _apply_overrides(scenario, days, seed, policy, replications)
        scenario = _with_trace(scenario, trace)
        setup = _experiment(
            workers, engine, scheduler, precision, max_replications, scenario.replications
        )
        cached_network(scenario)  # network mistakes surface before any work (and it is kept)
        description = {
            "command": "run",
            "scenario_file": str(path),
            "scenario_sha256": scenario_digest(scenario),
        }
        output = _claim(out_dir, overwrite, description)
        _check_work(
            [(scenario, scenario.replications)],
            workers=setup.engine.workers,
            force=force,
            out_dir=out_dir,
            overridden=_overridden(days, replications),
        )
        with setup.engine, _monitor(f"{scenario.name} x{scenario.replications}") as report:
            result = run_scenario(
                scenario,
                keep_tables=out_dir is not None,
                description=description,
                **setup.options(output.store, output.reporting(report)),
            )
            n = len(result.replications)
            _stop_on_policy_failure(result.failures, n)
        title = f"{scenario.name} | {result.policy} | {n} replication(s)"
        if n:
            out.print(_kpi_table(result.summary, escape(title)))
        if setup.precision:
            out.print(_precision_note([result]), highlight=False)
        if result.failures:
            _failed(result.failures, n + len(result.failures), output.kept_store)
        if output.folder is not None:
            from sim.outputs.run_folder import write_run

            output.keep_store()
            write_run(result, output.folder, path)
            leaves(f"{out_dir} was written in full")
    except UserInputError as exc:
        _locate(exc, scenario_file or default_scenario_path())
        raise
    finally:
        output.close()
    if out_dir is not None:
        out.print(f"wrote {out_dir}/calls.parquet, units.parquet, summary.json, manifest.json")


@app.command()
@guarded
def compare(
    scenario_file: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    policy: Annotated[
        list[str],
        typer.Option("--policy", help="A policy to compare; repeat; the first is the reference."),
    ],
    replications: ReplicationsOption = None,
    days: DaysOption = None,
    seed: SeedOption = None,
    trace: TraceOption = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write comparison.csv/json here.")
    ] = None,
    workers: WorkersOption = 1,
    overwrite: OverwriteOption = False,
    force: ForceOption = False,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
    precision: PrecisionOption = None,
    max_replications: MaxReplicationsOption = 100,
) -> None:
    """Run several policies on the same call streams; paired differences to the first."""
    from sim.analysis.kpi_catalogue import format_kpi
    from sim.experiments.compare import compare as compare_policies
    from sim.experiments.keys import scenario_digest
    from sim.experiments.worker import cached_network

    output = _Output()
    try:
        scenario, _ = _load(scenario_file)
        scenario = _apply_overrides(scenario, days, seed, None, replications)
        scenario = _with_trace(scenario, trace)
        for name in policy:
            _check_policy(name)
        setup = _experiment(
            workers, engine, scheduler, precision, max_replications, scenario.replications
        )
        cached_network(scenario)
        description = {
            "command": "compare",
            "scenario_file": str(scenario_file),
            "scenario_sha256": scenario_digest(scenario),
        }
        output = _claim(out_dir, overwrite, description)
        _check_work(
            [(scenario, scenario.replications)] * len(policy),
            workers=setup.engine.workers,
            force=force,
            overridden=_overridden(days, replications),
        )
        label = f"{len(policy)} policies x{scenario.replications}"
        with setup.engine, _monitor(label) as report:
            comparison = compare_policies(
                scenario,
                policy,
                keep_tables=False,
                description=description,
                **setup.options(output.store, output.reporting(report)),
            )
            results = list(comparison.results.values())
            failures = [f for r in results for f in r.failures]
            _stop_on_policy_failure(failures, sum(len(r.replications) for r in results))
        if failures:
            runs = sum(len(r.replications) + len(r.failures) for r in results)
            _failed(failures, runs, output.kept_store)
        if output.folder is not None:
            from sim.outputs.run_folder import write_comparison

            output.keep_store()
            write_comparison(comparison, output.folder)
            leaves(f"{out_dir} was written in full")
    except UserInputError as exc:
        _locate(exc, scenario_file)
        raise
    finally:
        output.close()
    table_data = comparison.table()
    names = comparison.policies
    table = Table(
        title=escape(
            f"{scenario.name}: {len(results[0].replications)} paired replications, "
            f"reference {names[0]}"
        ),
        caption="Δ = policy - reference, paired over replications; * the 95% interval excludes 0",
    )
    for column in ("KPI", "policy", "mean", "95% interval", "Δ", "Δ 95% interval"):
        table.add_column(column, justify="left" if column in ("KPI", "policy") else "right")
    for kpi, rows in table_data.groupby("kpi", sort=False):
        name = str(kpi)
        for k, (_, row) in enumerate(rows.iterrows()):
            label = "" if k else _label(name)
            interval = _interval(name, row["low"], row["high"])
            diff = diff_interval = ""
            if k > 0:
                colour = {"better": "green", "worse": "red"}.get(row["verdict"], "")
                diff = format_kpi(name, row["diff"], signed=True)
                diff += "*" if row["significant"] else ""
                if colour:
                    diff = f"[{colour}]{diff}[/{colour}]"
                if not math.isnan(row["diff_low"]):
                    low = format_kpi(name, row["diff_low"], signed=True)
                    diff_interval = f"{low} / {format_kpi(name, row['diff_high'], signed=True)}"
            table.add_row(
                label,
                str(row["policy"]),
                format_kpi(name, row["mean"]),
                interval,
                diff,
                diff_interval,
            )
        table.add_section()
    out.print(table)
    if setup.precision:
        out.print(_precision_note(results), highlight=False)
    if out_dir is not None:
        out.print(f"wrote {out_dir}/comparison.csv, comparison.json, manifest.json")


# What `sweep` shows per point unless --kpi says otherwise.
# The KPIs a sweep shows unless --kpi is given: the headline rates, then these.
SWEEP_EXTRA_KPIS = ("response_p90_h", "van_utilisation")


@app.command()
@guarded
def sweep(
    scenario_file: Annotated[
        Path,
        typer.Argument(help="Scenario YAML (with --vary), or a sweep file (base, factors...)."),
    ],
    vary: Annotated[
        list[str] | None,
        typer.Option(
            "--vary",
            help="PATH=V1,V2,... a field as in the YAML and its values; repeat for a grid.",
        ),
    ] = None,
    kpi: Annotated[
        list[str] | None, typer.Option("--kpi", help="A KPI to show; repeat (all are written).")
    ] = None,
    replications: ReplicationsOption = None,
    days: DaysOption = None,
    seed: SeedOption = None,
    trace: TraceOption = None,
    policy: PolicyOption = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write sweep.csv, sweep_summary.csv and sweep.json here (a rerun resumes).",
        ),
    ] = None,
    workers: WorkersOption = 1,
    overwrite: OverwriteOption = False,
    force: ForceOption = False,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
    precision: PrecisionOption = None,
    max_replications: MaxReplicationsOption = 100,
) -> None:
    """Run a scenario at every point of a grid or a sampled design, on common random numbers."""
    from rich.markup import escape

    from sim.analysis.kpi_catalogue import CATALOGUE, HEADLINE_KPIS, format_kpi, unknown_kpis
    from sim.experiments.keys import scenario_digest
    from sim.experiments.sweep import format_value, grid, parse_parameter, sweep_points
    from sim.experiments.sweep_file import is_sweep_file, read_sweep_file

    shown = list(kpi) if kpi else [*HEADLINE_KPIS, *SWEEP_EXTRA_KPIS]
    located = scenario_file
    output = _Output()
    try:
        design = read_sweep_file(scenario_file) if is_sweep_file(scenario_file) else None
        if design is not None:
            if vary:
                raise UserInputError("a sweep file gives the factors: drop --vary", field="--vary")
            located = design.base
            scenario, _ = _load(design.base)
            replications = replications if replications is not None else design.replications
        else:
            scenario, _ = _load(scenario_file)
        scenario = _apply_overrides(scenario, days, seed, None, replications)
        scenario = _with_trace(scenario, trace)
        if policy is not None:
            _check_policy(policy)
        setup = _experiment(
            workers, engine, scheduler, precision, max_replications, scenario.replications
        )
        for name in unknown_kpis(shown):
            known = ", ".join(CATALOGUE)
            raise UserInputError(f"unknown KPI {name!r}; known: {known}", field="--kpi")
        # Every point (scenario, network, policy) is checked here, before the first run.
        if design is not None:
            parameters, points = design.points(scenario, policy)
        else:
            parameters = [parse_parameter(text) for text in vary or ()]
            points = grid(scenario, parameters, policy=policy)
        n_points = len(points)
        description = {
            "command": "sweep",
            "file": str(scenario_file),
            "scenario_sha256": scenario_digest(scenario),
            "points": [point.values for point in points],
        }
        output = _claim(out_dir, overwrite, description)
        _check_work(
            [(point.scenario, scenario.replications) for point in points],
            workers=setup.engine.workers,
            force=force,
            keep_tables=False,
            overridden=_overridden(days, replications),
        )
        label = f"{n_points} points x{scenario.replications}"
        with setup.engine, _monitor(label) as report:
            result = sweep_points(
                scenario,
                parameters,
                points,
                policy=policy,
                description=description,
                **setup.options(output.store, output.reporting(report)),
            )
            finished = sum(len(r.replications) for r in result.results)
            _stop_on_policy_failure(result.failures, finished)
    except UserInputError as exc:
        output.close()
        _locate(exc, located)
        raise
    except BaseException:
        output.close()
        raise
    runs = sum(len(r.replications) + len(r.failures) for r in result.results)
    summary = result.summary.set_index(["point", "kpi"])
    intervals = summary[["mean", "low", "high"]].to_dict("index")
    table = Table(
        title=escape(f"{scenario.name}: {n_points} points, {runs} runs on common random numbers"),
        caption="mean [95% interval] over replications",
    )
    for path in result.paths:
        table.add_column(escape(path), justify="right")
    if setup.precision:
        table.add_column("n", justify="right")
    for name in shown:
        table.add_column(_label(name), justify="right")
    for k, point in enumerate(result.points):
        cells = [escape(format_value(value)) for value in point.values.values()]
        point_result = result.results[k]
        if setup.precision:
            capped = any(not c.met for c in point_result.precision)
            cells.append(f"{len(point_result.replications)}" + ("*" if capped else ""))
        for name in shown:
            if point_result.failures:
                cells.append("failed")
                continue
            entry = intervals[(k, name)]
            mean, low, high = float(entry["mean"]), float(entry["low"]), float(entry["high"])
            cell = format_kpi(name, mean)
            if not math.isnan(low):
                cell += f" [{_interval(name, low, high, ', ')}]"
            cells.append(cell)
        table.add_row(*cells)
    if setup.precision:
        targets = ", ".join(f"{t.kpi} <= {t.half_width:g}" for t in setup.precision)
        table.caption = (
            f"{table.caption}; n: replications run until every 95% half-width met {targets}"
            f" (* not met at the cap of {max_replications})"
        )
    out.print(table)
    try:
        if result.failures:
            _failed(result.failures, runs, output.kept_store, result.point_label)
        if output.folder is not None:
            from sim.outputs.run_folder import write_sweep

            output.keep_store()
            write_sweep(result, output.folder)
            leaves(f"{out_dir} was written in full")
    finally:
        output.close()
    if out_dir is not None:
        out.print(f"wrote {out_dir}/sweep.csv, sweep_summary.csv, sweep.json, manifest.json")


@app.command("fit-demand")
@guarded
def fit_demand(
    trace: Annotated[
        Path, typer.Argument(help="Trace CSV (t_call_h, lat, lon...) or calls.parquet.")
    ],
    out_file: Annotated[Path, typer.Option("--out", help="YAML file for the demand section.")],
    scenario_file: Annotated[
        Path | None, typer.Option("--scenario", help="Base scenario for fields not fitted.")
    ] = None,
    days: Annotated[
        float | None, typer.Option(help="Days observed (default: up to the last call's day).")
    ] = None,
    start_weekday: Annotated[
        int, typer.Option(help="Weekday of hour 0, Monday 0 (as the model assumes).")
    ] = 0,
) -> None:
    """Fit demand (volume, hour and weekday profiles, places, faults, segments) from a trace."""
    from sim.analysis.fit_demand import fit_demand as fit
    from sim.analysis.fit_demand import read_trace
    from sim.outputs.demand_fit import write_demand_fit

    try:
        if not 0 <= start_weekday < 7:
            raise UserInputError("must be 0 (Monday) to 6", field="--start-weekday")
        if days is not None and days <= 0:
            raise UserInputError("must be positive", field="--days")
        base, _ = _load(scenario_file)
        result = fit(read_trace(trace), days=days, start_weekday=start_weekday)
        paths = write_demand_fit(result, base, out_file, str(trace))
    except UserInputError as exc:
        if exc.file is None and exc.field is not None and not exc.field.startswith("--"):
            exc.file = str(trace)
        raise
    cpd = result.calls_per_day
    out.print(
        f"{result.n_calls} calls over {result.days:g} days: "
        f"{cpd.value:,.1f} calls/day (95% interval {cpd.low:,.1f} - {cpd.high:,.1f})"
    )
    out.print(f"wrote {paths[0]}, {paths[1]}", highlight=False)


@app.command("travel-matrix")
@guarded
def travel_matrix(
    scenario_file: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    out_file: Annotated[Path, typer.Option("--out", help="Matrix file: .parquet or .csv.")],
    per_prefecture: Annotated[
        int | None,
        typer.Option(help="Stations per prefecture, nearest first (default: the candidate pool)."),
    ] = None,
) -> None:
    """Write the road travel matrix the scenario's travel model implies (docs/travel.md)."""
    from sim.model.network import build_network
    from sim.model.travel import TravelModel
    from sim.model.travel_matrix import candidate_pool, implied_matrix
    from sim.outputs.travel_matrix_file import write_travel_matrix

    try:
        scenario, _ = _load(scenario_file)
        if per_prefecture is not None and per_prefecture < 1:
            raise UserInputError("must be at least 1", field="--per-prefecture")
        network = build_network(scenario)
    except UserInputError as exc:
        _locate(exc, scenario_file)
        raise
    k = per_prefecture or candidate_pool(scenario.dispatch.candidates, network.n_stations)
    frame = implied_matrix(network, TravelModel(scenario.travel), k)
    write_travel_matrix(frame, out_file)
    out.print(
        f"wrote {out_file}: {len(frame):,} rows ({network.n_areas} prefectures x "
        f"{min(k, network.n_stations)} nearest stations x "
        f"{frame['from_hour'].nunique()} hour bands)",
        highlight=False,
    )


ParamOption = Annotated[
    list[str], typer.Option("--param", help="PATH=LOW..HIGH a field as in the YAML; repeat.")
]


@app.command()
@guarded
def sensitivity(
    scenario_file: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    param: ParamOption,
    kpi: Annotated[
        list[str] | None, typer.Option("--kpi", help="A KPI to analyse; repeat.")
    ] = None,
    method: Annotated[str, typer.Option(help="morris, or sobol for Sobol indices.")] = "morris",
    trajectories: Annotated[int, typer.Option(help="Morris trajectories.")] = 10,
    samples: Annotated[int, typer.Option(help="Sobol base samples (a power of 2).")] = 64,
    replications: ReplicationsOption = None,
    days: DaysOption = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write sensitivity.csv, points.csv, figures.")
    ] = None,
    workers: WorkersOption = 1,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
) -> None:
    """Rank parameters by their effect on KPIs (Morris mu* or Sobol indices, SALib)."""
    from sim.analysis.kpi_catalogue import HEADLINE_KPIS
    from sim.experiments.evaluate import check_kpis, check_ranges, parse_range
    from sim.experiments.sensitivity import sensitivity as analyse

    kpis = list(kpi) if kpi else list(HEADLINE_KPIS[:2])
    try:
        scenario, _ = _load(scenario_file)
        scenario = _apply_overrides(scenario, days, None, None, replications)
        if method not in ("morris", "sobol"):
            raise UserInputError("must be morris or sobol", field="--method")
        if trajectories < 2 or samples < 2:
            raise UserInputError("must be at least 2", field="--trajectories/--samples")
        check_kpis(kpis)
        ranges = [parse_range(text) for text in param]
        check_ranges(scenario, ranges)
        runner = _engine(workers, engine, scheduler)
        with runner, _progress(f"{method} x{scenario.replications}") as progress:
            result = analyse(
                scenario, ranges, kpis, method="sobol" if method == "sobol" else "morris",
                trajectories=trajectories, samples=samples,
                replications=scenario.replications, workers=workers, progress=progress,
                engine=runner,
            )  # fmt: skip
    except UserInputError as exc:
        _locate(exc, scenario_file)
        raise
    out.print(result.indices.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if out_dir is not None:
        from sim.outputs.sensitivity_plot import write_sensitivity

        for path in write_sensitivity(result, out_dir):
            out.print(f"wrote {path}", highlight=False)


@app.command()
@guarded
def calibrate(
    scenario_file: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    target: Annotated[
        list[str],
        typer.Option("--target", help="KPI=VALUE or KPI=VALUE+-SE a KPI to match; repeat."),
    ],
    param: ParamOption,
    replications: ReplicationsOption = None,
    days: DaysOption = None,
    max_steps: Annotated[int, typer.Option(help="Most solver steps.")] = 30,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write calibrated.yaml and calibration.json.")
    ] = None,
    workers: WorkersOption = 1,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
) -> None:
    """Fit parameters to target KPIs (least squares on common random numbers)."""
    from sim.experiments.calibrate import calibrate as fit
    from sim.experiments.calibrate import parse_target
    from sim.experiments.evaluate import check_kpis, check_ranges, parse_range

    try:
        scenario, _ = _load(scenario_file)
        scenario = _apply_overrides(scenario, days, None, None, replications)
        parsed = [parse_target(text) for text in target]
        targets = {name: value for name, value, _ in parsed}
        check_kpis(list(targets), "--target")
        ranges = [parse_range(text) for text in param]
        check_ranges(scenario, ranges)
        if max_steps < 1:
            raise UserInputError("must be at least 1", field="--max-steps")
        runner = _engine(workers, engine, scheduler)
        with runner, _progress(f"calibrating x{scenario.replications}") as progress:
            result = fit(
                scenario, ranges, targets, target_se={name: se for name, _, se in parsed},
                replications=scenario.replications,
                workers=workers, max_evaluations=max_steps, progress=progress,
                engine=runner,
            )  # fmt: skip
    except UserInputError as exc:
        _locate(exc, scenario_file)
        raise
    out.print(f"{result.message} ({result.evaluations} points run)", highlight=False)
    out.print(result.parameters.to_string(float_format=lambda v: f"{v:.5g}"))
    out.print(result.residuals.to_string(float_format=lambda v: f"{v:.4g}"))
    if out_dir is not None:
        from sim.outputs.calibration import write_calibration

        for path in write_calibration(result, out_dir):
            out.print(f"wrote {path}", highlight=False)


@app.command()
@guarded
def plot(
    run_dir: Annotated[
        Path, typer.Argument(help="A folder written by 'rescue-sim run --out' or 'sweep --out'.")
    ],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Where to write (default RUN_DIR/figures).")
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline", help="Another run folder: also map how this run's network differs."
        ),
    ] = None,
) -> None:
    """Write the figures of a run, or of a sweep, as PNG files (the folder is verified first)."""
    from sim.outputs.output_folder import check_writable
    from sim.outputs.report import plot_run, plot_sweep
    from sim.outputs.run_folder import folder_kind

    if out_dir is not None:
        check_writable(out_dir)
    if folder_kind(run_dir) == "sweep":
        paths = plot_sweep(run_dir, out_dir)
    else:
        # A folder that is no run (or a baseline that is none) is named there.
        paths = plot_run(run_dir, out_dir, baseline_dir=baseline)
    for path in paths:
        out.print(str(path), highlight=False)


@app.command()
@guarded
def report(
    run_dir: Annotated[Path, typer.Argument(help="A folder written by 'rescue-sim run --out'.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="HTML file (default RUN_DIR/report.html).")
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline", help="Another run folder: also map how this run's network differs."
        ),
    ] = None,
) -> None:
    """Write one self-contained HTML report of a run (figures, KPIs, scenario)."""
    from sim.outputs.design_folder import is_design_folder, write_design_report
    from sim.outputs.output_folder import check_writable
    from sim.outputs.report import write_report
    from sim.outputs.sensitivity_plot import is_sensitivity_folder, write_sensitivity_report

    if is_design_folder(run_dir):  # written by 'rescue-sim optimise --out'
        out.print(str(write_design_report(run_dir, out_file)), highlight=False)
        return
    if is_sensitivity_folder(run_dir):  # written by 'rescue-sim sensitivity --out'
        out.print(str(write_sensitivity_report(run_dir, out_file)), highlight=False)
        return
    if out_file is not None:
        check_writable(out_file, folder=False)
    out.print(str(write_report(run_dir, out_file, baseline_dir=baseline)), highlight=False)


def _debug_first(args: list[str]) -> list[str]:
    """``--debug`` anywhere before a ``--`` is the global option: move it to the front."""
    end = args.index("--") if "--" in args else len(args)
    if "--debug" not in args[:end]:
        return args
    return ["--debug", *(a for k, a in enumerate(args) if a != "--debug" or k >= end)]


def _click_exceptions() -> Any:
    """The exceptions of the click typer runs on: its own copy in recent typer, else click's."""
    import typer.core

    module: Any = getattr(typer.core, "_click", None)
    if module is None:
        import click

        module = click
    return module.exceptions


# Design-spec fields and the options that set them, to name the right one in an error.
_SPEC_OPTIONS = {
    "maximise": "--maximise",
    "minimise": "--minimise",
    "require": "--require",
    "max_stations": "--max-stations",
    "max_vans": "--max-vans",
    "fixed_stations": "--fixed",
    "candidates_csv": "--candidates",
    "stations_model": "--stations",
    "moves": "--moves",
    "max_evaluations": "--budget",
    "time_limit_min": "--time-limit",
    "days": "--days",
    "replications": "--replications",
    "seed": "--seed",
    "confirm_seed": "--confirm-seed",
}
# Shown after an optimisation, beside its objective.
DESIGN_EXTRA_KPIS = ("response_p90_h", "van_utilisation")


@app.command()
@guarded
def optimise(
    scenario_file: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    out_dir: Annotated[
        Path,
        typer.Option("--out", help="The design folder; the same folder again resumes a search."),
    ],
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Design spec YAML: objective, limits, sites, search."),
    ] = None,
    maximise: Annotated[
        str | None, typer.Option(help="A KPI to maximise (default on_time_arrival_rate).")
    ] = None,
    minimise: Annotated[
        str | None, typer.Option(help="'vans', or a KPI to minimise (response_p90_h...).")
    ] = None,
    require: Annotated[
        list[str] | None,
        typer.Option("--require", help="KPI>=VALUE or KPI<=VALUE that must hold; repeat."),
    ] = None,
    max_stations: Annotated[
        int | None, typer.Option(help="Most stations (default: the current number).")
    ] = None,
    max_vans: Annotated[
        int | None, typer.Option(help="Most vans (default: the current fleet).")
    ] = None,
    fixed: Annotated[
        list[str] | None,
        typer.Option("--fixed", help="A current station id that must stay; repeat, or 'all'."),
    ] = None,
    candidates: Annotated[
        Path | None,
        typer.Option(help="CSV of candidate sites: id, lat, lon[, opening_cost_cny]."),
    ] = None,
    stations_model: Annotated[
        str | None,
        typer.Option("--stations", help="First stage for stations: keep, mclp, p_median."),
    ] = None,
    moves: Annotated[
        str | None, typer.Option(help="Moves to try, comma-separated: vans,remove,open,close,move.")
    ] = None,
    budget: Annotated[int | None, typer.Option(help="Most designs to run in the search.")] = None,
    time_limit: Annotated[
        float | None, typer.Option(help="Minutes after which no new round starts.")
    ] = None,
    days: DaysOption = None,
    replications: ReplicationsOption = None,
    seed: SeedOption = None,
    confirm_seed: Annotated[
        int | None, typer.Option(help="Seed of the confirmation runs (default: seed + 1).")
    ] = None,
    workers: WorkersOption = 1,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
) -> None:
    """Optimise where stations go and how many vans each has (docs/network_design.md)."""
    from sim.analysis.kpi_catalogue import HEADLINE_KPIS, format_kpi
    from sim.experiments.design_spec import load_spec, parse_requirement
    from sim.experiments.optimise import optimise as optimise_network
    from sim.model.loading import field_line

    overrides: dict[str, object] = {}
    try:
        scenario, path = _load(scenario_file)
        if maximise is not None:
            overrides.update(minimise=None, maximise=maximise)
        if minimise is not None:
            overrides.update(maximise=None, minimise=minimise)
        if require:
            overrides["require"] = tuple(parse_requirement(text) for text in require)
        if fixed:
            overrides["fixed_stations"] = "all" if fixed == ["all"] else tuple(fixed)
        if moves is not None:
            overrides["moves"] = tuple(m.strip() for m in moves.split(",") if m.strip())
        given = {
            "max_stations": max_stations,
            "max_vans": max_vans,
            "candidates_csv": candidates,
            "stations_model": stations_model,
            "max_evaluations": budget,
            "time_limit_min": time_limit,
            "days": days,
            "replications": replications,
            "seed": seed,
            "confirm_seed": confirm_seed,
        }
        overrides.update({k: v for k, v in given.items() if v is not None})
        spec = load_spec(config, overrides, _SPEC_OPTIONS)
        runner = _engine(workers, engine, scheduler)
    except UserInputError as exc:
        _locate(exc, scenario_file)
        raise

    def log(line: str) -> None:
        err.print(line, highlight=False, markup=False, soft_wrap=True)

    try:
        with runner:
            result = optimise_network(
                scenario, spec, work_dir=out_dir / "work", workers=workers, log=log,
                engine=runner,
            )  # fmt: skip
    except UserInputError as exc:
        if exc.file is None and exc.field in _SPEC_OPTIONS:
            if exc.field in overrides or config is None:
                exc.field = _SPEC_OPTIONS[exc.field]
            else:
                exc.file, exc.line = str(config), field_line(config, exc.field)
        _locate(exc, scenario_file)
        raise
    except KeyboardInterrupt:
        err.print(f"interrupted: run the same command again to resume from {out_dir}/work")
        raise typer.Exit(code=130) from None
    rows = {str(r["kpi"]): r for r in result.kpi_table().to_dict("records")}
    shown = list(
        dict.fromkeys(
            [
                *([spec.objective] if spec.objective != "vans" else []),
                *HEADLINE_KPIS,
                *DESIGN_EXTRA_KPIS,
            ]
        )
    )
    table = Table(
        title=(
            f"{scenario.name}: current vs optimised network, {len(result.optimised_kpis)} paired "
            f"replications on fresh streams (seed {result.confirm_seed})"
        ),
        caption="Δ = optimised - current, paired over replications; * the 95% interval excludes 0",
    )
    for column in ("KPI", "current", "optimised", "Δ", "Δ 95% interval"):
        table.add_column(column, justify="left" if column == "KPI" else "right")
    for name in shown:
        row = rows[name]
        value = {
            k: float(row[k]) for k in ("current", "optimised", "diff", "diff_low", "diff_high")
        }
        diff = format_kpi(name, value["diff"], signed=True) + ("*" if row["significant"] else "")
        colour = {"better": "green", "worse": "red"}.get(str(row["verdict"]), "")
        if colour:
            diff = f"[{colour}]{diff}[/{colour}]"
        low = format_kpi(name, value["diff_low"], signed=True)
        interval = f"{low} / {format_kpi(name, value['diff_high'], signed=True)}"
        label = f"[bold]{name}[/bold]" if name in HEADLINE_KPIS else name
        table.add_row(
            label,
            format_kpi(name, value["current"]),
            format_kpi(name, value["optimised"]),
            diff,
            interval,
        )
    table.add_row(
        "stations",
        f"{int((result.current_vans > 0).sum())}",
        f"{int((result.optimised_vans > 0).sum())}",
        "",
        "",
    )
    table.add_row(
        "vans", f"{int(result.current_vans.sum())}", f"{int(result.optimised_vans.sum())}", "", ""
    )
    out.print(table)
    from sim.outputs.design_folder import write_design

    try:
        write_design(result, out_dir, path)
    except KeyboardInterrupt:
        err.print("interrupted while writing: files already in place are complete")
        raise typer.Exit(code=130) from None
    out.print(
        f"wrote {out_dir}/stations.csv, optimised.yaml, kpis.csv, changes.csv, "
        "changes_by_province.csv, history.csv, figures/, optimise.json "
        f"({result.evaluations} designs in the search; {result.stop_reason})"
    )


def main() -> None:
    """Console-script entry point: every way of ending is one line and an exit code."""
    errors = _click_exceptions()
    no_args = getattr(errors, "NoArgsIsHelpError", ())
    try:
        code = app(args=_debug_first(sys.argv[1:]), standalone_mode=False)
    except no_args as exc:
        exc.show()
        code = exc.exit_code
    except errors.UsageError as exc:  # an unknown option, a value of the wrong type
        where = f"{exc.ctx.command_path}: " if exc.ctx is not None else ""
        say_error(f"{where}{exc.format_message()}")
        code = 2
    except errors.ClickException as exc:
        say_error(exc.format_message())
        code = exc.exit_code
    except errors.Abort:
        err.print("interrupted: nothing was written")
        code = 130
    except UserInputError as exc:  # a user error raised outside a command's own handling
        say_error(str(exc))
        code = 2
    sys.exit(code if isinstance(code, int) else 0)
