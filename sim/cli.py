"""The ``rescue-sim`` command line: validate and run scenarios.

User mistakes (a bad scenario, an unknown policy, a missing file) end with one line on
stderr naming file, line and field, and exit code 2; never a traceback.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sim.errors import UserInputError
from sim.model.demand import expected_calls_per_day
from sim.model.network import build_network
from sim.model.reference import PREFECTURE_COUNT, default_scenario_path
from sim.model.scenario import Scenario, field_line, load_scenario

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

# Published targets (seed 002): shown beside the simulated rates.
HEADLINE = ("on_time_arrival_rate", "on_time_repair_rate", "complaint_closure_rate")


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

# Seconds between two progress lines when stderr is not a terminal.
PROGRESS_INTERVAL_S = 5.0


def _fail(message: str) -> None:
    err.print(f"error: {message}", highlight=False, soft_wrap=True, markup=False)
    raise typer.Exit(code=2)


def _locate(exc: UserInputError, scenario_path: Path) -> UserInputError:
    """Point an error found after validation (building the network) at its scenario line."""
    if exc.file is None and exc.field is not None and not exc.field.startswith("--"):
        exc.file = str(scenario_path)
        exc.line = field_line(scenario_path, exc.field)
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
        try:
            yield lines
        finally:
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
    from sim.analysis.kpis import KPI_HIGHER_IS_BETTER
    from sim.experiments.engine import make_engine
    from sim.experiments.precision import parse_precision

    if workers < 1:
        raise UserInputError("must be at least 1", field="--workers")
    targets = [parse_precision(text, list(KPI_HIGHER_IS_BETTER)) for text in precision or ()]
    if targets and max_replications < max(2, replications):
        raise UserInputError(
            f"must be at least the replications to start with ({max(2, replications)})",
            field="--max-replications",
        )
    return _Experiment(make_engine(engine, workers, scheduler), targets, max_replications)


def _store(out_dir: Path | None) -> ResultStore | None:
    from sim.experiments.store import ResultStore

    return ResultStore.in_folder(out_dir) if out_dir is not None else None


def _interrupted(store: ResultStore | None) -> None:
    if store is None:
        err.print("interrupted: nothing was written", highlight=False)
    else:
        err.print(
            f"interrupted: finished runs are kept in {store.root}; run the same command "
            "again to run only what is missing",
            highlight=False,
            soft_wrap=True,
        )
    raise typer.Exit(code=130)


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
    scenario_path = path if path is not None else default_scenario_path()
    return load_scenario(scenario_path), scenario_path


def _check_policy(name: str) -> None:
    from sim.errors import PolicyError
    from sim.model.dispatch import resolve_policy

    try:
        resolve_policy(name)
    except PolicyError as exc:
        raise PolicyError(exc.message, field="--policy") from None


def _apply_overrides(
    scenario: Scenario,
    days: float | None,
    seed: int | None,
    policy: str | None,
    replications: int | None,
) -> Scenario:
    changes: dict[str, object] = {}
    if days is not None:
        if days <= 0:
            raise UserInputError("must be positive", field="--days")
        warmup = min(scenario.horizon.warmup_days, days / 10)
        changes["horizon"] = {"days": days, "warmup_days": warmup}
    if seed is not None:
        if seed < 0:
            raise UserInputError("must not be negative", field="--seed")
        changes["seed"] = seed
    if policy is not None:
        _check_policy(policy)
        changes["dispatch"] = {**scenario.dispatch.model_dump(), "policy": policy, "options": {}}
    if replications is not None:
        if replications < 1:
            raise UserInputError("must be at least 1", field="--replications")
        changes["replications"] = replications
    return scenario.with_overrides(**changes) if changes else scenario


@app.command()
def validate(
    scenario_file: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
) -> None:
    """Check a scenario and describe the network and demand it resolves to."""
    try:
        scenario, path = _load(scenario_file)
        network = build_network(scenario)
    except UserInputError as exc:
        _fail(str(_locate(exc, scenario_file)))
        return
    n_pref = int(network.areas["is_prefecture"].sum())
    table = Table(title=f"{scenario.name}: {path}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("stations", f"{network.n_stations}")
    table.add_row("vans", f"{network.n_vans}")
    table.add_row(
        "prefectures covered",
        f"{network.prefecture_coverage():.1%} of {n_pref}"
        + ("" if n_pref == PREFECTURE_COUNT else f" (national total {PREFECTURE_COUNT})"),
    )
    table.add_row("demand areas", f"{len(network.areas)}")
    table.add_row("expected calls per day", f"{expected_calls_per_day(scenario):,.0f}")
    agents = scenario.hotline.agents_by_hour
    table.add_row("hotline agents on duty", f"{min(agents)}-{max(agents)}")
    horizon = scenario.horizon
    start = "" if horizon.start_date is None else f" from {horizon.start_date:%a %Y-%m-%d}"
    table.add_row("horizon", f"{horizon.days:g} days{start} (warm-up {horizon.warmup_days:g})")
    table.add_row("replications", f"{scenario.replications}")
    table.add_row("dispatch policy", scenario.dispatch.policy)
    table.add_row("surges", ", ".join(s.name for s in scenario.surges) or "none")
    out.print(table)
    out.print("scenario is valid")


def _kpi_table(summary: pd.DataFrame, title: str) -> Table:
    table = Table(title=title)
    table.add_column("KPI")
    table.add_column("mean", justify="right")
    table.add_column("95% interval", justify="right")
    for kpi, row in summary.iterrows():
        name = str(kpi)
        interval = (
            ""
            if math.isnan(row["low"])
            else f"{_fmt(name, row['low'])} - {_fmt(name, row['high'])}"
        )
        label = f"[bold]{name}[/bold]" if name in HEADLINE else name
        table.add_row(label, _fmt(name, row["mean"]), interval)
    return table


@app.command()
def run(
    scenario_file: Annotated[
        Path | None, typer.Argument(help="Scenario YAML; default: the national Dongfeng scenario.")
    ] = None,
    days: DaysOption = None,
    replications: ReplicationsOption = None,
    seed: SeedOption = None,
    policy: PolicyOption = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write the run folder here (a rerun resumes from it)."),
    ] = None,
    workers: WorkersOption = 1,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
    precision: PrecisionOption = None,
    max_replications: MaxReplicationsOption = 100,
) -> None:
    """Run a scenario and print its KPIs with 95% intervals."""
    from sim.experiments.run import run as run_scenario
    from sim.experiments.worker import cached_network

    try:
        scenario, path = _load(scenario_file)
        scenario = _apply_overrides(scenario, days, seed, policy, replications)
        setup = _experiment(
            workers, engine, scheduler, precision, max_replications, scenario.replications
        )
        cached_network(scenario)  # network mistakes surface before any work (and it is kept)
    except UserInputError as exc:
        _fail(str(_locate(exc, scenario_file or default_scenario_path())))
        return
    store = _store(out_dir)
    try:
        with setup.engine, _monitor(f"{scenario.name} x{scenario.replications}") as report:
            result = run_scenario(
                scenario,
                keep_tables=out_dir is not None,
                description={"command": "run", "scenario_file": str(path)},
                **setup.options(store, report),
            )
    except UserInputError as exc:
        _fail(str(exc))
        return
    except KeyboardInterrupt:
        _interrupted(store)
    n = len(result.replications)
    title = f"{scenario.name} | {result.policy} | {n} replication(s)"
    if n:
        out.print(_kpi_table(result.summary, title))
    if setup.precision:
        out.print(_precision_note([result]), highlight=False)
    if result.failures:
        _failed(result.failures, n + len(result.failures), store)
    if out_dir is not None:
        from sim.outputs.run_folder import write_run

        try:
            write_run(result, out_dir, path)
        except KeyboardInterrupt:
            err.print("interrupted while writing: files already in place are complete")
            raise typer.Exit(code=130) from None
        out.print(f"wrote {out_dir}/calls.parquet, units.parquet, summary.json")


def _fmt(kpi: str, value: float, signed: bool = False) -> str:
    """A KPI value for a table: rates in percent (differences in points), others as numbers."""
    if math.isnan(value):
        return "-"
    rate = kpi.endswith("_rate") or kpi in {"service_level", "van_utilisation", "agent_utilisation"}
    if rate:
        return f"{value * 100:+.2f} pt" if signed else f"{value:.1%}"
    return f"{value:+,.3f}" if signed else f"{value:,.2f}"


@app.command()
def compare(
    scenario_file: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    policy: Annotated[
        list[str],
        typer.Option("--policy", help="A policy to compare; repeat; the first is the reference."),
    ],
    replications: ReplicationsOption = None,
    days: DaysOption = None,
    seed: SeedOption = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write comparison.csv/json here.")
    ] = None,
    workers: WorkersOption = 1,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
    precision: PrecisionOption = None,
    max_replications: MaxReplicationsOption = 100,
) -> None:
    """Run several policies on the same call streams; paired differences to the first."""
    from sim.experiments.compare import compare as compare_policies
    from sim.experiments.worker import cached_network
    from sim.model.dispatch import resolve_policy

    try:
        scenario, _ = _load(scenario_file)
        scenario = _apply_overrides(scenario, days, seed, None, replications)
        for name in policy:
            try:
                resolve_policy(name)
            except UserInputError as exc:
                raise UserInputError(exc.message, field="--policy") from None
        setup = _experiment(
            workers, engine, scheduler, precision, max_replications, scenario.replications
        )
        cached_network(scenario)
    except UserInputError as exc:
        _fail(str(_locate(exc, scenario_file)))
        return
    store = _store(out_dir)
    try:
        label = f"{len(policy)} policies x{scenario.replications}"
        with setup.engine, _monitor(label) as report:
            comparison = compare_policies(
                scenario,
                policy,
                keep_tables=False,
                description={"command": "compare", "scenario_file": str(scenario_file)},
                **setup.options(store, report),
            )
    except UserInputError as exc:
        _fail(str(exc))
        return
    except KeyboardInterrupt:
        _interrupted(store)
    results = list(comparison.results.values())
    failures = [f for r in results for f in r.failures]
    if failures:
        runs = sum(len(r.replications) + len(r.failures) for r in results)
        _failed(failures, runs, store)
    table_data = comparison.table()
    names = comparison.policies
    table = Table(
        title=f"{scenario.name}: {len(results[0].replications)} paired replications, "
        f"reference {names[0]}",
        caption="Δ = policy - reference, paired over replications; * the 95% interval excludes 0",
    )
    for column in ("KPI", "policy", "mean", "95% interval", "Δ", "Δ 95% interval"):
        table.add_column(column, justify="left" if column in ("KPI", "policy") else "right")
    for kpi, rows in table_data.groupby("kpi", sort=False):
        name = str(kpi)
        for k, (_, row) in enumerate(rows.iterrows()):
            label = "" if k else (f"[bold]{name}[/bold]" if name in HEADLINE else name)
            interval = (
                ""
                if math.isnan(row["low"])
                else f"{_fmt(name, row['low'])} - {_fmt(name, row['high'])}"
            )
            diff = diff_interval = ""
            if k > 0:
                colour = {"better": "green", "worse": "red"}.get(row["verdict"], "")
                diff = _fmt(name, row["diff"], True) + ("*" if row["significant"] else "")
                if colour:
                    diff = f"[{colour}]{diff}[/{colour}]"
                if not math.isnan(row["diff_low"]):
                    low = _fmt(name, row["diff_low"], True)
                    diff_interval = f"{low} / {_fmt(name, row['diff_high'], True)}"
            table.add_row(
                label, str(row["policy"]), _fmt(name, row["mean"]), interval, diff, diff_interval
            )
        table.add_section()
    out.print(table)
    if setup.precision:
        out.print(_precision_note(results), highlight=False)
    if out_dir is not None:
        from sim.outputs.run_folder import write_comparison

        write_comparison(comparison, out_dir)
        out.print(f"wrote {out_dir}/comparison.csv, comparison.json")


# What `sweep` shows per point unless --kpi says otherwise.
SWEEP_KPIS = (*HEADLINE, "response_p90_h", "van_utilisation")


@app.command()
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
    policy: PolicyOption = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write sweep.csv, sweep_summary.csv and sweep.json here (a rerun resumes).",
        ),
    ] = None,
    workers: WorkersOption = 1,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
    precision: PrecisionOption = None,
    max_replications: MaxReplicationsOption = 100,
) -> None:
    """Run a scenario at every point of a grid or a sampled design, on common random numbers."""
    from rich.markup import escape

    from sim.analysis.kpis import KPI_HIGHER_IS_BETTER
    from sim.experiments.sweep import format_value, grid, parse_parameter, sweep_points
    from sim.experiments.sweep_file import is_sweep_file, read_sweep_file

    shown = list(kpi) if kpi else list(SWEEP_KPIS)
    located = scenario_file
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
        if policy is not None:
            _check_policy(policy)
        setup = _experiment(
            workers, engine, scheduler, precision, max_replications, scenario.replications
        )
        for name in shown:
            if name not in KPI_HIGHER_IS_BETTER:
                known = ", ".join(KPI_HIGHER_IS_BETTER)
                raise UserInputError(f"unknown KPI {name!r}; known: {known}", field="--kpi")
        # Every point (scenario, network, policy) is checked here, before the first run.
        if design is not None:
            parameters, points = design.points(scenario, policy)
        else:
            parameters = [parse_parameter(text) for text in vary or ()]
            points = grid(scenario, parameters, policy=policy)
    except UserInputError as exc:
        _fail(str(_locate(exc, located)))
        return
    n_points = len(points)
    store = _store(out_dir)
    try:
        label = f"{n_points} points x{scenario.replications}"
        with setup.engine, _monitor(label) as report:
            result = sweep_points(
                scenario,
                parameters,
                points,
                policy=policy,
                description={
                    "command": "sweep",
                    "file": str(scenario_file),
                    "points": [point.values for point in points],
                },
                **setup.options(store, report),
            )
    except UserInputError as exc:
        _fail(str(exc))
        return
    except KeyboardInterrupt:
        _interrupted(store)
    runs = sum(len(r.replications) + len(r.failures) for r in result.results)
    summary = result.summary.set_index(["point", "kpi"])
    intervals = summary[["mean", "low", "high"]].to_dict("index")
    table = Table(
        title=f"{scenario.name}: {n_points} points, {runs} runs on common random numbers",
        caption="mean [95% interval] over replications",
    )
    for path in result.paths:
        table.add_column(path, justify="right")
    if setup.precision:
        table.add_column("n", justify="right")
    for name in shown:
        table.add_column(f"[bold]{name}[/bold]" if name in HEADLINE else name, justify="right")
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
            cell = _fmt(name, mean)
            if not math.isnan(low):
                cell += f" [{_fmt(name, low)}, {_fmt(name, high)}]"
            cells.append(cell)
        table.add_row(*cells)
    if setup.precision:
        targets = ", ".join(f"{t.kpi} <= {t.half_width:g}" for t in setup.precision)
        table.caption = (
            f"{table.caption}; n: replications run until every 95% half-width met {targets}"
            f" (* not met at the cap of {max_replications})"
        )
    out.print(table)
    if result.failures:
        _failed(result.failures, runs, store, result.point_label)
    if out_dir is not None:
        from sim.outputs.run_folder import write_sweep

        try:
            write_sweep(result, out_dir)
        except KeyboardInterrupt:
            err.print("interrupted while writing: files already in place are complete")
            raise typer.Exit(code=130) from None
        out.print(f"wrote {out_dir}/sweep.csv, sweep_summary.csv, sweep.json")


def _require_run_folder(run_dir: Path) -> None:
    """Stop with exit 2 unless ``run_dir`` holds what ``rescue-sim run --out`` writes."""
    if not run_dir.is_dir():
        _fail(f"{run_dir}: run folder not found")
    for name in ("summary.json", "calls.parquet", "units.parquet"):
        if not (run_dir / name).is_file():
            _fail(f"{run_dir}: not a run folder: {name} is missing")


@app.command()
def plot(
    run_dir: Annotated[
        Path, typer.Argument(help="A folder written by 'rescue-sim run --out' or 'sweep --out'.")
    ],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Where to write (default RUN_DIR/figures).")
    ] = None,
) -> None:
    """Write the figures of a run, or of a sweep, as PNG files."""
    from sim.outputs.report import plot_run, plot_sweep

    if (run_dir / "sweep.json").is_file() and (run_dir / "sweep_summary.csv").is_file():
        paths = plot_sweep(run_dir, out_dir)
    else:
        _require_run_folder(run_dir)
        paths = plot_run(run_dir, out_dir)
    for path in paths:
        out.print(str(path), highlight=False)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A folder written by 'rescue-sim run --out'.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="HTML file (default RUN_DIR/report.html).")
    ] = None,
) -> None:
    """Write one self-contained HTML report of a run (figures, KPIs, scenario)."""
    from sim.outputs.report import write_report

    _require_run_folder(run_dir)
    out.print(str(write_report(run_dir, out_file)), highlight=False)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except UserInputError as exc:  # a user error raised outside a command's own handling
        err.print(f"error: {exc}", highlight=False, soft_wrap=True, markup=False)
        sys.exit(2)
