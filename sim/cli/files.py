"""Commands that read or write single files and finished folders: ``fit-demand``,
``travel-matrix``, ``plot`` and ``report``.

Each claims its output before any work, as ``run`` claims its folder: ``plot``'s folder
through :class:`~sim.outputs.output_folder.OutputFolder`, the others' files through
:class:`~sim.outputs.output_file.OutputFile` (a regular file or nothing, never a FIFO or
a device; locked; written beside its place and renamed into it). An existing output is
replaced only with ``--overwrite``, except the figures and the report that ``plot`` and
``report`` wrote before in their default places inside the folder they read: those are
the commands' own, and a rerun renews them (that folder's manifest lists only its own
files, so it verifies as before).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from sim.cli.app import app, out
from sim.cli.guard import guarded
from sim.cli.options import BaselineOption, OverwriteFileOption, OverwriteOption
from sim.cli.setup import load, locate
from sim.errors import UserInputError


@app.command("fit-demand")
@guarded
def fit_demand(
    trace: Annotated[
        Path,
        typer.Argument(
            help="Trace CSV (time or t_call_h, lat, lon[, fault, segment...]), as --trace "
            "reads it, or a run's calls.parquet."
        ),
    ],
    out_file: Annotated[
        Path,
        typer.Option(
            "--out", help="YAML file for the demand section (weights: NAME.prefectures.csv)."
        ),
    ],
    scenario_file: Annotated[
        Path | None, typer.Option("--scenario", help="Base scenario for fields not fitted.")
    ] = None,
    days: Annotated[
        float | None, typer.Option(help="Days observed (default: up to the last call's day).")
    ] = None,
    start_weekday: Annotated[
        int | None,
        typer.Option(
            help="Weekday of hour 0, Monday 0 (default: Monday; with timestamps, the weekday "
            "of the first call's day)."
        ),
    ] = None,
    overwrite: OverwriteFileOption = False,
) -> None:
    """Fit demand (volume, hour and weekday profiles, places, faults, segments) from a trace."""
    from sim.analysis.fit_demand import fit_demand as fit
    from sim.analysis.fit_demand import read_trace
    from sim.outputs.demand_part import weights_path, write_demand_fit
    from sim.outputs.output_file import OutputFile

    try:
        if start_weekday is not None and not 0 <= start_weekday < 7:
            raise UserInputError("must be 0 (Monday) to 6", field="--start-weekday")
        if days is not None:
            from sim.experiments.runs.arguments import check_days

            days = check_days(days, "--days")
        base, _ = load(scenario_file)
        # Both files are claimed before the trace is read: the weights beside the YAML
        # (where it really goes, if --out is a symbolic link), which names them.
        with OutputFile.claim(out_file, overwrite=overwrite) as part:
            linked = part.target != Path(os.path.abspath(out_file))
            csv = weights_path(part.target if linked else out_file)
            with OutputFile.claim(csv, overwrite=overwrite) as weights:
                result = fit(read_trace(trace, base), days=days, start_weekday=start_weekday)
                paths = write_demand_fit(result, base, part, weights, str(trace))
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
    overwrite: OverwriteFileOption = False,
) -> None:
    """Write the road travel matrix the scenario's travel model implies (docs/travel.md)."""
    from sim.model.network import build_network
    from sim.model.travel import TravelModel
    from sim.model.travel_matrix import candidate_pool, implied_matrix
    from sim.outputs.output_file import OutputFile
    from sim.outputs.travel_matrix_file import check_matrix_name, write_travel_matrix

    try:
        check_matrix_name(out_file)
        scenario, _ = load(scenario_file)
        if per_prefecture is not None and per_prefecture < 1:
            raise UserInputError("must be at least 1", field="--per-prefecture")
        network = build_network(scenario)
    except UserInputError as exc:
        locate(exc, scenario_file)
        raise
    with OutputFile.claim(out_file, overwrite=overwrite) as claimed:
        k = per_prefecture or candidate_pool(scenario.dispatch.candidates, network.n_stations)
        frame = implied_matrix(network, TravelModel(scenario.travel), k)
        write_travel_matrix(frame, claimed)
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
        Path | None,
        typer.Option(
            "--out",
            help="Folder to write (default RUN_DIR/figures, which replaces the figures a "
            "previous plot wrote there).",
        ),
    ] = None,
    baseline: BaselineOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Write the figures of a run, or of a sweep, as PNG files (the folder is verified first)."""
    from sim.outputs.report import plot_run, plot_sweep
    from sim.outputs.run_folder import folder_kind

    if folder_kind(run_dir) == "sweep":
        paths = plot_sweep(run_dir, out_dir, overwrite=overwrite)
    else:
        # A folder that is no run (or a baseline that is none) is named there.
        paths = plot_run(run_dir, out_dir, baseline_dir=baseline, overwrite=overwrite)
    for path in paths:
        out.print(str(path), highlight=False)


@app.command()
@guarded
def report(
    run_dir: Annotated[Path, typer.Argument(help="A folder written by 'rescue-sim run --out'.")],
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="HTML file (default RUN_DIR/report.html, which replaces the report written "
            "there before).",
        ),
    ] = None,
    baseline: BaselineOption = None,
    overwrite: OverwriteFileOption = False,
) -> None:
    """Write one self-contained HTML report of a run (figures, KPIs, scenario)."""
    from sim.outputs.design_folder import design_report_html, is_design_folder
    from sim.outputs.report import claimed_page, write_report
    from sim.outputs.sensitivity_plot import is_sensitivity_folder, sensitivity_report_html

    page_of: Callable[[Path], str] | None = None
    if is_design_folder(run_dir):  # written by 'rescue-sim optimise --out'
        page_of = design_report_html
    elif is_sensitivity_folder(run_dir):  # written by 'rescue-sim sensitivity --out'
        page_of = sensitivity_report_html
    if page_of is None:
        written = write_report(run_dir, out_file, baseline_dir=baseline, overwrite=overwrite)
    else:
        with claimed_page(run_dir, out_file, overwrite) as page:
            data = page_of(run_dir).encode("utf-8")
            written = page.write(lambda tmp: tmp.write_bytes(data))
    out.print(str(written), highlight=False)
