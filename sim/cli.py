"""The ``rescue-sim`` command line: validate and run scenarios.

User mistakes (a bad scenario, an unknown policy, a missing file, an output place that
cannot be written, work past this machine's limits) end with one line on stderr naming
file, line and field, and exit code 2; never a traceback (see :mod:`sim.cli_guard`).
Everything is checked before the first simulation: the scenario, the options, the output
folder (claimed and locked) and the work estimate.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from sim.cli_guard import guarded, leaves, say_error, set_debug
from sim.errors import UserInputError
from sim.experiments.arguments import (
    check_days,
    check_policy,
    check_replications,
    check_seed,
    check_workers,
)
from sim.model.demand import expected_calls_per_day
from sim.model.network import build_network
from sim.model.reference import PREFECTURE_COUNT, default_scenario_path
from sim.model.scenario import Scenario, field_line, load_scenario

if TYPE_CHECKING:
    from sim.experiments.estimate import WorkEstimate
    from sim.outputs.output_folder import OutputFolder

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
WorkersOption = Annotated[int, typer.Option(help="Worker processes for the replications.")]
OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace an output folder that already holds files.")
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Run even if the work estimate exceeds this machine.")
]


@app.callback()
def _options(
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
    field = exc.field or ""
    if exc.file is None and field.split(".")[0].split("[")[0] in Scenario.model_fields:
        exc.file = str(scenario_path)
        exc.line = field_line(scenario_path, field)
    return exc


@contextmanager
def _progress(description: str) -> Iterator[Callable[[float], None]]:
    """A progress bar on stderr (only on a terminal); yields a callback taking 0..1."""
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task(description, total=1.0)
        yield lambda fraction: bar.update(task, completed=fraction)


def _load(path: Path | None) -> tuple[Scenario, Path]:
    scenario_path = path if path is not None else default_scenario_path()
    return load_scenario(scenario_path), scenario_path


def _check_policy(name: str) -> None:
    check_policy(name, "--policy")


def _claim(out_dir: Path | None, overwrite: bool) -> OutputFolder | None:
    """Check and lock the output folder before any work (None: nothing is written)."""
    if out_dir is None:
        return None
    from sim.outputs.output_folder import OutputFolder

    folder = OutputFolder.claim(out_dir, overwrite=overwrite)
    leaves(f"nothing was written; {out_dir} is as it was")
    return folder


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


def _apply_overrides(
    scenario: Scenario,
    days: float | None,
    seed: int | None,
    policy: str | None,
    replications: int | None,
) -> Scenario:
    changes: dict[str, object] = {}
    if days is not None:
        days = check_days(days, "--days")
        warmup = min(scenario.horizon.warmup_days, days / 10)
        changes["horizon"] = {"days": days, "warmup_days": warmup}
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
    try:
        scenario, path = _load(scenario_file)
        network = build_network(scenario)
        estimate = _check_work([(scenario, scenario.replications)], workers=1, force=force)
    except UserInputError as exc:
        _locate(exc, scenario_file)
        raise
    from sim.experiments.estimate import describe

    n_pref = int(network.areas["is_prefecture"].sum())
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
    table.add_row("demand areas", f"{len(network.areas)}")
    table.add_row("expected calls per day", f"{expected_calls_per_day(scenario):,.0f}")
    agents = scenario.hotline.agents_by_hour
    table.add_row("hotline agents on duty", f"{min(agents)}-{max(agents)}")
    horizon = scenario.horizon
    start = "" if horizon.start_date is None else f" from {horizon.start_date:%a %Y-%m-%d}"
    table.add_row("horizon", f"{horizon.days:g} days{start} (warm-up {horizon.warmup_days:g})")
    table.add_row("replications", f"{scenario.replications}")
    table.add_row("dispatch policy", scenario.dispatch.policy)
    table.add_row("surges", escape(", ".join(s.name for s in scenario.surges)) or "none")
    for what, value in describe(estimate).items():
        table.add_row(what, value)
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
@guarded
def run(
    scenario_file: Annotated[
        Path | None, typer.Argument(help="Scenario YAML; default: the national Dongfeng scenario.")
    ] = None,
    days: DaysOption = None,
    replications: ReplicationsOption = None,
    seed: SeedOption = None,
    policy: PolicyOption = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write the run folder here.")
    ] = None,
    workers: WorkersOption = 1,
    overwrite: OverwriteOption = False,
    force: ForceOption = False,
) -> None:
    """Run a scenario and print its KPIs with 95% intervals."""
    from sim.experiments.run import run as run_scenario

    folder = None
    try:
        scenario, path = _load(scenario_file)
        scenario = _apply_overrides(scenario, days, seed, policy, replications)
        workers = check_workers(workers, "--workers")
        build_network(scenario)  # network mistakes surface before any work
        folder = _claim(out_dir, overwrite)
        _check_work(
            [(scenario, scenario.replications)],
            workers=workers,
            force=force,
            out_dir=out_dir,
            overridden=_overridden(days, replications),
        )
        with _progress(f"{scenario.name} x{scenario.replications}") as progress:
            result = run_scenario(scenario, workers=workers, progress=progress)
        if folder is not None:
            from sim.outputs.run_folder import write_run

            write_run(result, folder, path)
            leaves(f"{out_dir} was written in full")
    except UserInputError as exc:
        _locate(exc, scenario_file or default_scenario_path())
        raise
    finally:
        if folder is not None:
            folder.abort()  # after a commit only the lock is left to release
    title = f"{scenario.name} | {result.policy} | {len(result.replications)} replication(s)"
    out.print(_kpi_table(result.summary, escape(title)))
    if out_dir is not None:
        out.print(f"wrote {out_dir}/calls.parquet, units.parquet, summary.json, manifest.json")


def _fmt(kpi: str, value: float, signed: bool = False) -> str:
    """A KPI value for a table: rates in percent (differences in points), others as numbers."""
    if math.isnan(value):
        return "-"
    rate = kpi.endswith("_rate") or kpi in {"service_level", "van_utilisation", "agent_utilisation"}
    if rate:
        return f"{value * 100:+.2f} pt" if signed else f"{value:.1%}"
    return f"{value:+,.3f}" if signed else f"{value:,.2f}"


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
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write comparison.csv/json here.")
    ] = None,
    workers: WorkersOption = 1,
    overwrite: OverwriteOption = False,
    force: ForceOption = False,
) -> None:
    """Run several policies on the same call streams; paired differences to the first."""
    from sim.experiments.compare import compare as compare_policies

    folder = None
    try:
        scenario, _ = _load(scenario_file)
        scenario = _apply_overrides(scenario, days, seed, None, replications)
        for name in policy:
            _check_policy(name)
        workers = check_workers(workers, "--workers")
        build_network(scenario)
        folder = _claim(out_dir, overwrite)
        _check_work(
            [(scenario, scenario.replications)] * len(policy),
            workers=workers,
            force=force,
            overridden=_overridden(days, replications),
        )
        with _progress(f"{len(policy)} policies x{scenario.replications}") as progress:
            comparison = compare_policies(scenario, policy, workers=workers, progress=progress)
        if folder is not None:
            from sim.outputs.run_folder import write_comparison

            write_comparison(comparison, folder)
            leaves(f"{out_dir} was written in full")
    except UserInputError as exc:
        _locate(exc, scenario_file)
        raise
    finally:
        if folder is not None:
            folder.abort()
    table_data = comparison.table()
    names = comparison.policies
    table = Table(
        title=escape(
            f"{scenario.name}: {scenario.replications} paired replications, reference {names[0]}"
        ),
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
    if out_dir is not None:
        out.print(f"wrote {out_dir}/comparison.csv, comparison.json, manifest.json")


# What `sweep` shows per point unless --kpi says otherwise.
SWEEP_KPIS = (*HEADLINE, "response_p90_h", "van_utilisation")


@app.command()
@guarded
def sweep(
    scenario_file: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    vary: Annotated[
        list[str],
        typer.Option(
            "--vary",
            help="PATH=V1,V2,... a field as in the YAML and its values; repeat for a grid.",
        ),
    ],
    kpi: Annotated[
        list[str] | None, typer.Option("--kpi", help="A KPI to show; repeat (all are written).")
    ] = None,
    replications: ReplicationsOption = None,
    days: DaysOption = None,
    seed: SeedOption = None,
    policy: PolicyOption = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write sweep.csv, sweep_summary.csv and sweep.json here."),
    ] = None,
    workers: WorkersOption = 1,
    overwrite: OverwriteOption = False,
    force: ForceOption = False,
) -> None:
    """Run a scenario at every combination of parameter values, on common random numbers."""
    from sim.analysis.kpis import KPI_HIGHER_IS_BETTER
    from sim.experiments.sweep import format_value, grid, parse_parameter
    from sim.experiments.sweep import sweep as sweep_scenario

    shown = list(kpi) if kpi else list(SWEEP_KPIS)
    folder = None
    try:
        scenario, _ = _load(scenario_file)
        scenario = _apply_overrides(scenario, days, seed, None, replications)
        if policy is not None:
            _check_policy(policy)
        workers = check_workers(workers, "--workers")
        for name in shown:
            if name not in KPI_HIGHER_IS_BETTER:
                known = ", ".join(KPI_HIGHER_IS_BETTER)
                raise UserInputError(f"unknown KPI {name!r}; known: {known}", field="--kpi")
        parameters = [parse_parameter(text) for text in vary]
        # Every point is checked (scenario, network, policy) and its work estimated here.
        points = grid(scenario, parameters, policy=policy)
        folder = _claim(out_dir, overwrite)
        _check_work(
            [(point.scenario, scenario.replications) for point in points],
            workers=workers,
            force=force,
            keep_tables=False,
            overridden=_overridden(days, replications),
        )
        with _progress(f"{len(points)} points x{scenario.replications}") as progress:
            result = sweep_scenario(
                scenario, parameters, policy=policy, workers=workers, progress=progress
            )
        if folder is not None:
            from sim.outputs.run_folder import write_sweep

            write_sweep(result, folder)
            leaves(f"{out_dir} was written in full")
    except UserInputError as exc:
        _locate(exc, scenario_file)
        raise
    finally:
        if folder is not None:
            folder.abort()
    n_points = len(points)
    runs = n_points * scenario.replications
    summary = result.summary.set_index(["point", "kpi"])
    table = Table(
        title=escape(f"{scenario.name}: {n_points} points, {runs} runs on common random numbers"),
        caption="mean [95% interval] over replications",
    )
    for path in result.paths:
        table.add_column(escape(path), justify="right")
    for name in shown:
        table.add_column(f"[bold]{name}[/bold]" if name in HEADLINE else name, justify="right")
    for k, point in enumerate(result.points):
        cells = [escape(format_value(value)) for value in point.values.values()]
        for name in shown:
            row = summary.loc[(k, name)]
            cell = _fmt(name, row["mean"])
            if not math.isnan(row["low"]):
                cell += f" [{_fmt(name, row['low'])}, {_fmt(name, row['high'])}]"
            cells.append(cell)
        table.add_row(*cells)
    out.print(table)
    if out_dir is not None:
        out.print(f"wrote {out_dir}/sweep.csv, sweep_summary.csv, sweep.json, manifest.json")


@app.command()
@guarded
def plot(
    run_dir: Annotated[
        Path, typer.Argument(help="A folder written by 'rescue-sim run --out' or 'sweep --out'.")
    ],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Where to write (default RUN_DIR/figures).")
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
        paths = plot_run(run_dir, out_dir)  # a folder that is no run is named there
    for path in paths:
        out.print(str(path), highlight=False)


@app.command()
@guarded
def report(
    run_dir: Annotated[Path, typer.Argument(help="A folder written by 'rescue-sim run --out'.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="HTML file (default RUN_DIR/report.html).")
    ] = None,
) -> None:
    """Write one self-contained HTML report of a run (figures, KPIs, scenario)."""
    from sim.outputs.output_folder import check_writable
    from sim.outputs.report import write_report

    if out_file is not None:
        check_writable(out_file, folder=False)
    out.print(str(write_report(run_dir, out_file)), highlight=False)


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
