"""Commands that read or write single files and finished folders: ``fit-demand``,
``travel-matrix``, ``plot`` and ``report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sim.cli.app import app, out
from sim.cli.guard import guarded
from sim.cli.setup import load, locate
from sim.errors import UserInputError


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
    from sim.outputs.demand_part import write_demand_fit

    try:
        if not 0 <= start_weekday < 7:
            raise UserInputError("must be 0 (Monday) to 6", field="--start-weekday")
        if days is not None and days <= 0:
            raise UserInputError("must be positive", field="--days")
        base, _ = load(scenario_file)
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
        scenario, _ = load(scenario_file)
        if per_prefecture is not None and per_prefecture < 1:
            raise UserInputError("must be at least 1", field="--per-prefecture")
        network = build_network(scenario)
    except UserInputError as exc:
        locate(exc, scenario_file)
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
