"""Commands that read or write single files and finished folders: ``fit-demand``,
``travel-matrix``, ``plot``, ``report`` and ``replay``.

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

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sim.cli.app import app, err, out
from sim.cli.guard import guarded
from sim.cli.options import BaselineOption, OverwriteFileOption, OverwriteOption, out_option
from sim.cli.setup import load, locate
from sim.errors import UserInputError

if TYPE_CHECKING:
    import numpy as np

    from sim.model.network import Network
    from sim.model.travel import TravelModel


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
        out_option("YAML file for the demand section (weights: NAME.prefectures.csv)."),
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
    out_file: Annotated[Path, out_option("Matrix file: .parquet or .csv.")],
    per_prefecture: Annotated[
        int | None,
        typer.Option(help="Stations per prefecture, nearest first (default: the candidate pool)."),
    ] = None,
    osm: Annotated[
        Path | None,
        typer.Option(
            help="OpenStreetMap extract (.osm.pbf): route on its roads instead; pairs with "
            "no route are listed in OUT's stem + .unreachable.csv."
        ),
    ] = None,
    road_classes: Annotated[
        str | None,
        typer.Option(help="With --osm: highway classes read, comma-separated.", show_default=False),
    ] = None,
    road_speeds: Annotated[
        str | None,
        typer.Option(
            help="With --osm: free-flow km/h by class, e.g. motorway=80,trunk=60 (others: "
            "docs/travel.md).",
            show_default=False,
        ),
    ] = None,
    overwrite: OverwriteFileOption = False,
) -> None:
    """Write the road travel matrix the scenario's travel model implies, or its roads'
    (--osm) (docs/travel.md)."""
    from sim.model.demand_points import read_demand_points
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
        road = (osm, road_classes, road_speeds)
        csv = scenario.demand.spatial.csv
        # With --osm, the demand CSV's points are destinations too (checked before the read).
        points = read_demand_points(csv)[:2] if osm is not None and csv is not None else None
    except UserInputError as exc:
        locate(exc, scenario_file)
        raise
    k = per_prefecture or candidate_pool(scenario.dispatch.candidates, network.n_stations)
    if osm is not None or road_classes is not None or road_speeds is not None:
        _road_matrix(road, network, TravelModel(scenario.travel), k, (out_file, overwrite), points)
        return
    with OutputFile.claim(out_file, overwrite=overwrite) as claimed:
        frame = implied_matrix(network, TravelModel(scenario.travel), k)
        write_travel_matrix(frame, claimed)
    out.print(
        f"wrote {out_file}: {len(frame):,} rows ({network.n_areas} prefectures x "
        f"{min(k, network.n_stations)} nearest stations x "
        f"{frame['from_hour'].nunique()} hour bands)",
        highlight=False,
    )


def _road_matrix(
    road: tuple[Path | None, str | None, str | None],
    network: Network,
    travel: TravelModel,
    per_area: int,
    target: tuple[Path, bool],
    points: tuple[np.ndarray, np.ndarray] | None,
) -> None:
    """``travel-matrix --osm``: everything checked and both files claimed before the read.

    ``road``: the --osm, --road-classes and --road-speeds options; ``target``: the --out
    file and --overwrite; ``points``: the demand CSV's latitudes and longitudes, if any."""
    from sim.model import roads
    from sim.model.travel_matrix import POINT_PREFIX
    from sim.outputs.output_file import OutputFile
    from sim.outputs.travel_matrix_file import write_travel_matrix

    osm, road_classes, road_speeds = road
    out_file, overwrite = target
    if osm is None:
        raise UserInputError(
            "needs --osm", field="--road-classes" if road_classes else "--road-speeds"
        )
    try:
        classes = roads.check_classes((road_classes or ",".join(roads.DEFAULT_CLASSES)).split(","))
    except ValueError as exc:
        raise UserInputError(str(exc), field="--road-classes") from None
    try:
        speeds = roads.parse_speeds(road_speeds or "")
    except ValueError as exc:
        raise UserInputError(str(exc), field="--road-speeds") from None
    lat, lon = roads.scenario_places(network, points)
    what = "stations and prefecture seats" + (", and demand points" if points else "")
    try:
        roads.check_covers(osm, lat, lon, what)
    except roads.ExtractError as exc:
        raise UserInputError(str(exc), file=osm, field="--osm") from None
    listed = out_file.with_suffix(".unreachable.csv")
    with (
        OutputFile.claim(out_file, overwrite=overwrite) as claimed,
        OutputFile.claim(listed, overwrite=overwrite) as claimed_list,
    ):
        try:
            graph = roads.read_roads(osm, roads.Box.around(lat, lon), classes, _say)
            router = roads.Router(graph, speeds)
            frame, unreachable = roads.road_matrix(network, travel, router, per_area, _say, points)
        except roads.ExtractError as exc:
            raise UserInputError(str(exc), file=osm, field="--osm") from None
        claimed_list.write(lambda tmp: unreachable.to_csv(tmp, index=False))
        write_travel_matrix(frame, claimed)
    pairs = "station-prefecture and station-point" if points else "station-prefecture"
    err.print(f"{len(unreachable):,} {pairs} pairs have no route: see {listed}")
    to_point = frame["destination"].str.startswith(POINT_PREFIX)
    to_points = f", {frame['destination'][to_point].nunique():,} demand points" if points else ""
    out.print(
        f"wrote {out_file}: {len(frame):,} rows "
        f"({frame['destination'][~to_point].nunique()} prefectures{to_points}, "
        f"{frame['from_hour'].nunique()} hour bands) from {graph.n_edges:,} road edges of {osm}",
        highlight=False,
    )


def _say(text: str) -> None:
    """A progress line on stderr."""
    err.print(text, highlight=False)


@app.command()
@guarded
def plot(
    run_dir: Annotated[
        Path, typer.Argument(help="A folder written by 'rescue-sim run --out' or 'sweep --out'.")
    ],
    out_dir: Annotated[
        Path | None,
        out_option(
            "Folder to write (default RUN_DIR/figures, which replaces the figures a "
            "previous plot wrote there)."
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


# Folders that are no run, each told by the file that marks it (its module's MARKER),
# with the module that writes its page: imported only for such a folder, since they
# import the optimiser or SciPy, more than a run's report takes to write.
OTHER_REPORTS = (
    ("optimise.json", "sim.outputs.design_folder", "design_report_html"),  # optimise --out
    ("frontier.json", "sim.outputs.frontier_folder", "frontier_report_html"),  # frontier --out
    ("sensitivity.json", "sim.outputs.sensitivity_plot", "sensitivity_report_html"),
)


def _other_report(folder: Path) -> Callable[[Path], str] | None:
    """What writes the page of a folder that ``optimise``, ``frontier`` or
    ``sensitivity`` wrote; None for any other folder (a run's)."""
    for marker, module, function in OTHER_REPORTS:
        if (folder / marker).is_file():
            page_of: Callable[[Path], str] = getattr(importlib.import_module(module), function)
            return page_of
    return None


@app.command()
@guarded
def report(
    run_dir: Annotated[Path, typer.Argument(help="A folder written by 'rescue-sim run --out'.")],
    out_file: Annotated[
        Path | None,
        out_option(
            "HTML file (default RUN_DIR/report.html, which replaces the report written "
            "there before)."
        ),
    ] = None,
    baseline: BaselineOption = None,
    overwrite: OverwriteFileOption = False,
) -> None:
    """Write one self-contained HTML report of a run (figures, KPIs, scenario)."""
    from sim.outputs.report import claimed_page, write_report

    page_of = _other_report(run_dir)
    if page_of is None:
        written = write_report(run_dir, out_file, baseline_dir=baseline, overwrite=overwrite)
    else:
        with claimed_page(run_dir, out_file, overwrite) as page:
            data = page_of(run_dir).encode("utf-8")
            written = page.write(lambda tmp: tmp.write_bytes(data))
    out.print(str(written), highlight=False)


@app.command()
@guarded
def replay(
    run_dir: Annotated[Path, typer.Argument(help="A folder written by 'rescue-sim run --out'.")],
    out_file: Annotated[Path, out_option("HTML file to write (day.html).")],
    replication: Annotated[
        int | None, typer.Option(help="Replication to replay (default: the first).")
    ] = None,
    start: Annotated[
        float | None,
        typer.Option(help="Day to start at, from the run's start (default: the busiest day)."),
    ] = None,
    hours: Annotated[float, typer.Option(help="Hours to replay.")] = 24.0,
    region: Annotated[
        str | None,
        typer.Option(help="Only this province: adcode, Chinese name or pinyin (e.g. Henan)."),
    ] = None,
    overwrite: OverwriteFileOption = False,
) -> None:
    """Write an animated replay of a day of a run: one self-contained HTML page."""
    from sim.outputs.report import write_replay

    written = write_replay(
        run_dir,
        out_file,
        replication=replication,
        start_day=start,
        hours=hours,
        region=region,
        overwrite=overwrite,
    )
    out.print(f"wrote {written}", highlight=False)
