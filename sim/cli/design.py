"""The network design command: ``optimise``.

It goes the way ``run`` goes (sim.cli.runs): the scenario, the spec and every option
checked and the network built, the output folder claimed and locked (sim.cli.output),
all before the first simulation; then every run of the search on the engine, into the
folder's result store, so that the same command again resumes; the folder committed in
one step at the end.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from sim.cli.app import app, err, out
from sim.cli.guard import guarded
from sim.cli.options import ExperimentOptions, ScenarioArgument, out_option, shared_options
from sim.cli.output import claimed, described, show_written
from sim.cli.setup import checked_work, engine_from_options, load, locate
from sim.cli.tables import DELTA_CAPTION, delta_cells, kpi_label
from sim.errors import UserInputError

if TYPE_CHECKING:
    from sim.experiments.design.frontier import FrontierResult
    from sim.experiments.design.optimise import OptimiseResult
    from sim.experiments.design.spec import DesignSpec
    from sim.model.scenario import Scenario

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
# frontier sets the objective with --kpi.
_FRONTIER_OPTIONS = {**_SPEC_OPTIONS, "maximise": "--kpi"}
# Shown after an optimisation, beside its objective.
DESIGN_EXTRA_KPIS = ("response_p90_h", "van_utilisation")
# Spec fields that only bound the search: a rerun with another budget resumes its store.
_SEARCH_BOUNDS = ("max_evaluations", "time_limit_min")


# Options optimise and frontier share, said once.
StationsModelOption = Annotated[
    str | None, typer.Option("--stations", help="First stage for stations: keep, mclp, p_median.")
]
MaxStationsOption = Annotated[
    int | None, typer.Option(help="Most stations (default: the current number).")
]
ConfirmSeedOption = Annotated[
    int | None, typer.Option(help="Seed of the confirmation runs (default: seed + 1).")
]


@app.command()
@guarded
@shared_options(
    "days", "replications", "seed", "workers", "overwrite", "force", "engine", "scheduler"
)
def optimise(
    scenario_file: ScenarioArgument,
    out_dir: Annotated[
        Path,
        out_option("The design folder; the same folder again resumes a search."),
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
    max_stations: MaxStationsOption = None,
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
    stations_model: StationsModelOption = None,
    moves: Annotated[
        str | None, typer.Option(help="Moves to try, comma-separated: vans,remove,open,close,move.")
    ] = None,
    budget: Annotated[int | None, typer.Option(help="Most designs to run in the search.")] = None,
    time_limit: Annotated[
        float | None, typer.Option(help="Minutes after which no new round starts.")
    ] = None,
    confirm_seed: ConfirmSeedOption = None,
    *,
    options: ExperimentOptions,
) -> None:
    """Optimise where stations go and how many vans each has (docs/network_design.md)."""
    from sim.experiments.design.optimise import optimise as optimise_network
    from sim.experiments.design.optimise import search_runs
    from sim.experiments.design.spec import parse_requirement

    overrides: dict[str, object] = {}
    with _design_errors(scenario_file, config, overrides):
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
            "confirm_seed": confirm_seed,
        }
        setup = _setup("optimise", scenario_file, config, overrides, given, options)
        with claimed(out_dir, options.overwrite, setup.description) as output:
            _check_search_work(search_runs(setup.prepared, setup.spec), setup, options)
            with setup.runner:
                result = optimise_network(
                    setup.scenario, setup.spec, store=output.store, workers=options.workers,
                    log=_log, engine=setup.runner, report=output.reporting(lambda state: None),
                    description=setup.description,
                )  # fmt: skip
            out.print(_design_table(result, setup.spec.objective))
            from sim.outputs.design_folder import write_design

            output.commit(lambda folder: write_design(result, folder, setup.path), out_dir)
    show_written(out_dir, f" ({result.evaluations} designs in the search; {result.stop_reason})")


@app.command()
@guarded
@shared_options(
    "days", "replications", "seed", "workers", "overwrite", "force", "engine", "scheduler"
)
def frontier(
    scenario_file: ScenarioArgument,
    vans: Annotated[
        str,
        typer.Option("--vans", help="Fleet sizes: FIRST..LAST:STEP (1400..2600:200) or a list."),
    ],
    out_dir: Annotated[
        Path,
        out_option("The frontier folder; the same folder again resumes."),
    ],
    kpi: Annotated[
        str, typer.Option("--kpi", help="The KPI to maximise at each fleet size.")
    ] = "on_time_arrival_rate",
    targets: Annotated[
        str, typer.Option("--targets", help="Targets of the KPI, comma-separated.")
    ] = "0.90,0.93,0.95,0.97",
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Design spec YAML: limits, sites, search (per point)."),
    ] = None,
    stations_model: StationsModelOption = None,
    max_stations: MaxStationsOption = None,
    budget: Annotated[
        int | None, typer.Option(help="Most designs to run in each point's search.")
    ] = None,
    time_limit: Annotated[
        float | None, typer.Option(help="Minutes after which a point's search starts no round.")
    ] = None,
    confirm_seed: ConfirmSeedOption = None,
    *,
    options: ExperimentOptions,
) -> None:
    """The cost-service frontier: the best network of each fleet size, with intervals
    (docs/network_design.md)."""
    from sim.experiments.design.frontier import frontier as frontier_of
    from sim.experiments.design.frontier import frontier_runs, parse_fleets, parse_targets

    overrides: dict[str, object] = {"maximise": kpi, "minimise": None}
    given = {
        "max_stations": max_stations,
        "stations_model": stations_model,
        "max_evaluations": budget,
        "time_limit_min": time_limit,
        "confirm_seed": confirm_seed,
    }
    with _design_errors(scenario_file, config, overrides, _FRONTIER_OPTIONS):
        fleets = parse_fleets(vans)
        wanted = parse_targets(targets, kpi)
        more = {"fleets": fleets, "targets": list(wanted)}
        setup = _setup("frontier", scenario_file, config, overrides, given, options, more)
        with claimed(out_dir, options.overwrite, setup.description) as output:
            _check_search_work(frontier_runs(setup.prepared, setup.spec, fleets), setup, options)
            with setup.runner:
                result = frontier_of(
                    setup.scenario, fleets, setup.spec, targets=wanted, store=output.store,
                    workers=options.workers, log=_log, engine=setup.runner,
                    report=output.reporting(lambda state: None), description=setup.description,
                )  # fmt: skip
            out.print(_answers_table(result))
            from sim.outputs.frontier_folder import write_frontier

            output.commit(lambda folder: write_frontier(result, folder, setup.path), out_dir)
    show_written(out_dir, f" ({len(result.points)} fleet sizes)")


def _check_search_work(
    runs: list[tuple[Scenario, int]], setup: _Setup, options: ExperimentOptions
) -> None:
    """The work of every run a search may make, checked before stage 1; a too large one
    names the option or the spec's line that set the horizon or the replications."""
    set_by = {"horizon.days": setup.spec.days, "replications": setup.spec.replications}
    checked_work(
        runs, workers=setup.runner.workers, force=options.force, keep_tables=False,
        overridden={k: k.split(".")[-1] for k, v in set_by.items() if v is not None},
    )  # fmt: skip


def _log(line: str) -> None:
    err.print(line, highlight=False, markup=False, soft_wrap=True)


@dataclass
class _Setup:
    scenario: Scenario
    path: Path
    prepared: Scenario  # the scenario the search starts from (optimise.prepare)
    spec: DesignSpec
    runner: Any
    description: dict[str, Any]


def _setup(
    command: str,
    scenario_file: Path,
    config: Path | None,
    overrides: dict[str, object],
    given: Mapping[str, object],
    options: ExperimentOptions,
    more: dict[str, Any] | None = None,
) -> _Setup:
    """What optimise and frontier check before any work: the scenario, the spec (``config``
    with ``overrides`` and the options ``given`` on top), the engine, the network; and the
    description their store is kept under (search bounds aside: a rerun with another
    budget resumes)."""
    from sim.experiments.design.optimise import prepare
    from sim.experiments.design.spec import load_spec
    from sim.experiments.runs.worker import cached_network

    scenario, path = load(scenario_file)
    given = {
        **given,
        "days": options.days,
        "replications": options.replications,
        "seed": options.seed,
    }
    overrides.update({k: v for k, v in given.items() if v is not None})
    spec = load_spec(
        config, overrides, _FRONTIER_OPTIONS if command == "frontier" else _SPEC_OPTIONS
    )
    runner = engine_from_options(options.workers, options.engine, options.scheduler)
    prepared = prepare(scenario, spec)
    cached_network(prepared)  # network mistakes surface before any work
    kept = {k: v for k, v in spec.model_dump(mode="json").items() if k not in _SEARCH_BOUNDS}
    description = described(command, path, scenario, spec=kept, **(more or {}))
    return _Setup(scenario, path, prepared, spec, runner, description)


@contextmanager
def _design_errors(
    scenario_file: Path,
    config: Path | None,
    overrides: dict[str, object],
    names: Mapping[str, str] = _SPEC_OPTIONS,
) -> Iterator[None]:
    """A spec mistake named by its option, or by its line of ``config``; others located."""
    from sim.model.loading import field_line

    try:
        yield
    except UserInputError as exc:
        field = exc.field
        if exc.file is None and field is not None and field in names:
            if field in overrides or config is None:
                exc.field = names[field]
            else:
                exc.file, exc.line = str(config), field_line(config, field)
        locate(exc, scenario_file)
        raise


def _answers_table(result: FrontierResult) -> Table:
    """The fewest vans for each target, with the KPI, the cost and the step from the smaller."""
    from sim.analysis.kpi_catalogue import format_kpi

    kpi = result.kpi
    table = Table(
        title=(
            f"{result.scenario.name}: fewest vans for each target of {kpi} (95% lower bound "
            f"at or above it), {result.confirm_replications} replications on fresh streams "
            f"(seed {result.confirm_seed})"
        ),
        caption=DELTA_CAPTION.format(what="this fleet - the next smaller fleet"),
    )
    for column in ("target", "vans", kpi, "cost CNY/year", "Δ from smaller", "Δ 95% interval"):
        table.add_column(column, justify="left" if column == "target" else "right")
    for row in result.answers().to_dict("records"):
        if row["vans"] is None or row["vans"] != row["vans"]:  # NaN: no fleet meets it
            table.add_row(format_kpi(kpi, row["target"]), "not reached", "", "", "", "")
            continue
        first = row.get("diff") is None or row["diff"] != row["diff"]  # the smallest fleet
        diff, interval = ("", "") if first else delta_cells(kpi, row)
        table.add_row(
            format_kpi(kpi, row["target"]),
            str(int(row["vans"])),
            f"{format_kpi(kpi, row['mean'])} [{format_kpi(kpi, row['low'])}, "
            f"{format_kpi(kpi, row['high'])}]",
            f"{row['cost_cny_per_year'] / 1e6:,.1f} M",
            diff,
            interval,
        )
    return table


def _design_table(result: OptimiseResult, objective: str) -> Table:
    """The current and the optimised network side by side on the confirmation streams."""
    from sim.analysis.kpi_catalogue import HEADLINE_KPIS, format_kpi

    scenario = result.scenario
    rows = {str(r["kpi"]): r for r in result.kpi_table().to_dict("records")}
    shown = list(
        dict.fromkeys(
            [
                *([objective] if objective != "vans" else []),
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
        caption=DELTA_CAPTION.format(what="optimised - current"),
    )
    for column in ("KPI", "current", "optimised", "Δ", "Δ 95% interval"):
        table.add_column(column, justify="left" if column == "KPI" else "right")
    for name in shown:
        row = rows[name]
        diff, interval = delta_cells(name, row)
        table.add_row(
            kpi_label(name),
            format_kpi(name, float(row["current"])),
            format_kpi(name, float(row["optimised"])),
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
    return table
