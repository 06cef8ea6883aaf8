"""The ``rescue-sim`` command line: validate and run scenarios.

User mistakes (a bad scenario, an unknown policy, a missing file) end with one line on
stderr naming file, line and field, and exit code 2; never a traceback.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from sim import __version__
from sim.analysis.kpi_catalogue import CATALOGUE, HEADLINE_KPIS, format_kpi, unknown_kpis
from sim.errors import UserInputError
from sim.model.demand import expected_calls_per_day
from sim.model.loading import field_line, load_scenario
from sim.model.network import build_network
from sim.model.reference import PREFECTURE_COUNT, default_scenario_path
from sim.model.scenario import Scenario

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
WorkersOption = Annotated[int, typer.Option(help="Worker processes for the replications.")]


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
) -> None:
    """Simulate a national roadside truck-rescue network."""


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


def _label(kpi: str) -> str:
    """A KPI's name for a table, in bold for the published headline rates."""
    return f"[bold]{kpi}[/bold]" if kpi in HEADLINE_KPIS else kpi


def _interval(kpi: str, low: float, high: float, separator: str = " - ") -> str:
    return "" if math.isnan(low) else f"{format_kpi(kpi, low)}{separator}{format_kpi(kpi, high)}"


def _kpi_table(summary: pd.DataFrame, title: str) -> Table:
    """The KPIs with their intervals; the published target beside the rates that have one."""
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
) -> None:
    """Run a scenario and print its KPIs with 95% intervals."""
    from sim.experiments.run import run as run_scenario

    try:
        scenario, path = _load(scenario_file)
        scenario = _apply_overrides(scenario, days, seed, policy, replications)
        if workers < 1:
            raise UserInputError("must be at least 1", field="--workers")
        build_network(scenario)  # network mistakes surface before any work
    except UserInputError as exc:
        _fail(str(_locate(exc, scenario_file or default_scenario_path())))
        return
    try:
        with _progress(f"{scenario.name} x{scenario.replications}") as progress:
            result = run_scenario(scenario, workers=workers, progress=progress)
    except KeyboardInterrupt:
        err.print("interrupted: nothing was written")
        raise typer.Exit(code=130) from None
    title = f"{scenario.name} | {result.policy} | {len(result.replications)} replication(s)"
    out.print(_kpi_table(result.summary, title))
    if out_dir is not None:
        from sim.outputs.run_folder import write_run

        try:
            write_run(result, out_dir, path)
        except KeyboardInterrupt:
            err.print("interrupted while writing: files already in place are complete")
            raise typer.Exit(code=130) from None
        out.print(f"wrote {out_dir}/calls.parquet, units.parquet, summary.json")


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
) -> None:
    """Run several policies on the same call streams; paired differences to the first."""
    from sim.experiments.compare import compare as compare_policies
    from sim.model.dispatch import resolve_policy

    try:
        scenario, _ = _load(scenario_file)
        scenario = _apply_overrides(scenario, days, seed, None, replications)
        for name in policy:
            try:
                resolve_policy(name)
            except UserInputError as exc:
                raise UserInputError(exc.message, field="--policy") from None
        if workers < 1:
            raise UserInputError("must be at least 1", field="--workers")
        build_network(scenario)
    except UserInputError as exc:
        _fail(str(_locate(exc, scenario_file)))
        return
    try:
        with _progress(f"{len(policy)} policies x{scenario.replications}") as progress:
            comparison = compare_policies(scenario, policy, workers=workers, progress=progress)
    except KeyboardInterrupt:
        err.print("interrupted: nothing was written")
        raise typer.Exit(code=130) from None
    table_data = comparison.table()
    names = comparison.policies
    table = Table(
        title=f"{scenario.name}: {scenario.replications} paired replications, reference {names[0]}",
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
    if out_dir is not None:
        from sim.outputs.run_folder import write_comparison

        write_comparison(comparison, out_dir)
        out.print(f"wrote {out_dir}/comparison.csv, comparison.json")


# What `sweep` shows per point unless --kpi says otherwise.
SWEEP_KPIS = (*HEADLINE_KPIS, "response_p90_h", "van_utilisation")


@app.command()
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
) -> None:
    """Run a scenario at every combination of parameter values, on common random numbers."""
    from rich.markup import escape

    from sim.experiments.sweep import format_value, parse_parameter
    from sim.experiments.sweep import sweep as sweep_scenario

    shown = list(kpi) if kpi else list(SWEEP_KPIS)
    try:
        scenario, _ = _load(scenario_file)
        scenario = _apply_overrides(scenario, days, seed, None, replications)
        if policy is not None:
            _check_policy(policy)
        if workers < 1:
            raise UserInputError("must be at least 1", field="--workers")
        for name in unknown_kpis(shown):
            known = ", ".join(CATALOGUE)
            raise UserInputError(f"unknown KPI {name!r}; known: {known}", field="--kpi")
        parameters = [parse_parameter(text) for text in vary]
    except UserInputError as exc:
        _fail(str(_locate(exc, scenario_file)))
        return
    n_points = math.prod(len(p.values) for p in parameters)
    runs = n_points * scenario.replications
    try:
        # sweep() checks every point (scenario, network, policy) before the first run.
        with _progress(f"{n_points} points x{scenario.replications}") as progress:
            result = sweep_scenario(
                scenario, parameters, policy=policy, workers=workers, progress=progress
            )
    except UserInputError as exc:
        _fail(str(_locate(exc, scenario_file)))
        return
    except KeyboardInterrupt:
        err.print("interrupted: nothing was written")
        raise typer.Exit(code=130) from None
    columns = ["point", "kpi", "mean", "low", "high"]
    summary = {
        (int(point), str(name)): (mean, low, high)
        for point, name, mean, low, high in result.summary[columns].itertuples(index=False)
    }
    table = Table(
        title=f"{scenario.name}: {n_points} points, {runs} runs on common random numbers",
        caption="mean [95% interval] over replications",
    )
    for path in result.paths:
        table.add_column(path, justify="right")
    for name in shown:
        table.add_column(_label(name), justify="right")
    for k, point in enumerate(result.points):
        cells = [escape(format_value(value)) for value in point.values.values()]
        for name in shown:
            mean, low, high = summary[(k, name)]
            cell = format_kpi(name, mean)
            if not math.isnan(low):
                cell += f" [{_interval(name, low, high, ', ')}]"
            cells.append(cell)
        table.add_row(*cells)
    out.print(table)
    if out_dir is not None:
        from sim.outputs.run_folder import write_sweep

        try:
            write_sweep(result, out_dir)
        except KeyboardInterrupt:
            err.print("interrupted while writing: files already in place are complete")
            raise typer.Exit(code=130) from None
        out.print(f"wrote {out_dir}/sweep.csv, sweep_summary.csv, sweep.json")


@app.command("fit-demand")
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
        _fail(str(exc))
        return
    cpd = result.calls_per_day
    out.print(
        f"{result.n_calls} calls over {result.days:g} days: "
        f"{cpd.value:,.1f} calls/day (95% interval {cpd.low:,.1f} - {cpd.high:,.1f})"
    )
    out.print(f"wrote {paths[0]}, {paths[1]}", highlight=False)


ParamOption = Annotated[
    list[str], typer.Option("--param", help="PATH=LOW..HIGH a field as in the YAML; repeat.")
]


@app.command()
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
) -> None:
    """Rank parameters by their effect on KPIs (Morris mu* or Sobol indices, SALib)."""
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
        with _progress(f"{method} x{scenario.replications}") as progress:
            result = analyse(
                scenario, ranges, kpis, method="sobol" if method == "sobol" else "morris",
                trajectories=trajectories, samples=samples,
                replications=scenario.replications, workers=workers, progress=progress,
            )  # fmt: skip
    except UserInputError as exc:
        _fail(str(_locate(exc, scenario_file)))
        return
    out.print(result.indices.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if out_dir is not None:
        from sim.outputs.sensitivity_plot import write_sensitivity

        for path in write_sensitivity(result, out_dir):
            out.print(f"wrote {path}", highlight=False)


@app.command()
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
        with _progress(f"calibrating x{scenario.replications}") as progress:
            result = fit(
                scenario, ranges, targets, target_se={name: se for name, _, se in parsed},
                replications=scenario.replications,
                workers=workers, max_evaluations=max_steps, progress=progress,
            )  # fmt: skip
    except UserInputError as exc:
        _fail(str(_locate(exc, scenario_file)))
        return
    out.print(f"{result.message} ({result.evaluations} points run)", highlight=False)
    out.print(result.parameters.to_string(float_format=lambda v: f"{v:.5g}"))
    out.print(result.residuals.to_string(float_format=lambda v: f"{v:.4g}"))
    if out_dir is not None:
        from sim.outputs.calibration import write_calibration

        for path in write_calibration(result, out_dir):
            out.print(f"wrote {path}", highlight=False)


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
