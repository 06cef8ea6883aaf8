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

from sim.errors import UserInputError
from sim.model.demand import expected_calls_per_day
from sim.model.network import build_network
from sim.model.reference import PREFECTURE_COUNT, default_scenario_path
from sim.model.scenario import Scenario, field_line, load_scenario

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
        from sim.outputs.run_folder import write_comparison

        write_comparison(comparison, out_dir)
        out.print(f"wrote {out_dir}/comparison.csv, comparison.json")


# What `sweep` shows per point unless --kpi says otherwise.
SWEEP_KPIS = (*HEADLINE, "response_p90_h", "van_utilisation")


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

    from sim.analysis.kpis import KPI_HIGHER_IS_BETTER
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
        for name in shown:
            if name not in KPI_HIGHER_IS_BETTER:
                known = ", ".join(KPI_HIGHER_IS_BETTER)
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
    summary = result.summary.set_index(["point", "kpi"])
    table = Table(
        title=f"{scenario.name}: {n_points} points, {runs} runs on common random numbers",
        caption="mean [95% interval] over replications",
    )
    for path in result.paths:
        table.add_column(path, justify="right")
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
    from sim.outputs.design_folder import is_design_folder, write_design_report
    from sim.outputs.report import write_report

    if is_design_folder(run_dir):  # written by 'rescue-sim optimise --out'
        out.print(str(write_design_report(run_dir, out_file)), highlight=False)
        return
    _require_run_folder(run_dir)
    out.print(str(write_report(run_dir, out_file)), highlight=False)


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
DESIGN_KPIS = (*HEADLINE, "response_p90_h", "van_utilisation")


@app.command()
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
) -> None:
    """Optimise where stations go and how many vans each has (docs/network_design.md)."""
    from sim.experiments.design_spec import load_spec, parse_requirement
    from sim.experiments.optimise import optimise as optimise_network

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
        if workers < 1:
            raise UserInputError("must be at least 1", field="--workers")
    except UserInputError as exc:
        _fail(str(_locate(exc, scenario_file)))
        return

    def log(line: str) -> None:
        err.print(line, highlight=False, markup=False, soft_wrap=True)

    try:
        result = optimise_network(
            scenario, spec, work_dir=out_dir / "work", workers=workers, log=log
        )
    except UserInputError as exc:
        if exc.file is None and exc.field in _SPEC_OPTIONS:
            if exc.field in overrides or config is None:
                exc.field = _SPEC_OPTIONS[exc.field]
            else:
                exc.file, exc.line = str(config), field_line(config, exc.field)
        _fail(str(_locate(exc, scenario_file)))
        return
    except KeyboardInterrupt:
        err.print(f"interrupted: run the same command again to resume from {out_dir}/work")
        raise typer.Exit(code=130) from None
    rows = {str(r["kpi"]): r for r in result.kpi_table().to_dict("records")}
    shown = list(
        dict.fromkeys([*([spec.objective] if spec.objective != "vans" else []), *DESIGN_KPIS])
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
        diff = _fmt(name, value["diff"], True) + ("*" if row["significant"] else "")
        colour = {"better": "green", "worse": "red"}.get(str(row["verdict"]), "")
        if colour:
            diff = f"[{colour}]{diff}[/{colour}]"
        interval = f"{_fmt(name, value['diff_low'], True)} / {_fmt(name, value['diff_high'], True)}"
        label = f"[bold]{name}[/bold]" if name in HEADLINE else name
        table.add_row(
            label, _fmt(name, value["current"]), _fmt(name, value["optimised"]), diff, interval
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
    """Console-script entry point."""
    try:
        app()
    except UserInputError as exc:  # a user error raised outside a command's own handling
        err.print(f"error: {exc}", highlight=False, soft_wrap=True, markup=False)
        sys.exit(2)
