"""The network design command: ``optimise``.

It goes the way ``run`` goes (sim.cli.runs): the scenario, the spec and every option
checked and the network built, the output folder claimed and locked (sim.cli.output),
all before the first simulation; then every run of the search on the engine, into the
folder's result store, so that the same command again resumes; the folder committed in
one step at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from sim.cli.app import app, err, out
from sim.cli.guard import guarded
from sim.cli.options import ExperimentOptions, ScenarioArgument, shared_options
from sim.cli.output import claimed, show_written
from sim.cli.setup import checked_work, engine_from_options, load, locate
from sim.cli.tables import DELTA_CAPTION, delta_cells, kpi_label
from sim.errors import UserInputError

if TYPE_CHECKING:
    from sim.experiments.design.optimise import OptimiseResult

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
# Spec fields that only bound the search: a rerun with another budget resumes its store.
_SEARCH_BOUNDS = ("max_evaluations", "time_limit_min")


@app.command()
@guarded
@shared_options(
    "days", "replications", "seed", "workers", "overwrite", "force", "engine", "scheduler"
)
def optimise(
    scenario_file: ScenarioArgument,
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
    confirm_seed: Annotated[
        int | None, typer.Option(help="Seed of the confirmation runs (default: seed + 1).")
    ] = None,
    *,
    options: ExperimentOptions,
) -> None:
    """Optimise where stations go and how many vans each has (docs/network_design.md)."""
    from sim.experiments.design.optimise import optimise as optimise_network
    from sim.experiments.design.optimise import prepare, search_runs
    from sim.experiments.design.spec import load_spec, parse_requirement
    from sim.experiments.runs.keys import scenario_digest
    from sim.experiments.runs.worker import cached_network
    from sim.model.loading import field_line

    overrides: dict[str, object] = {}
    try:
        scenario, path = load(scenario_file)
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
            "days": options.days,
            "replications": options.replications,
            "seed": options.seed,
            "confirm_seed": confirm_seed,
        }
        overrides.update({k: v for k, v in given.items() if v is not None})
        spec = load_spec(config, overrides, _SPEC_OPTIONS)
        runner = engine_from_options(options.workers, options.engine, options.scheduler)
        prepared = prepare(scenario, spec)
        cached_network(prepared)  # network mistakes surface before any work
        description: dict[str, Any] = {
            "command": "optimise",
            "scenario_file": str(path),
            "scenario_sha256": scenario_digest(scenario),
            "spec": {
                k: v for k, v in spec.model_dump(mode="json").items() if k not in _SEARCH_BOUNDS
            },
        }

        def log(line: str) -> None:
            err.print(line, highlight=False, markup=False, soft_wrap=True)

        with claimed(out_dir, options.overwrite, description) as output:
            # The spec's field that set a scenario's: named as its option or config line.
            set_by = {"horizon.days": spec.days, "replications": spec.replications}
            checked_work(
                search_runs(prepared, spec), workers=runner.workers, force=options.force,
                keep_tables=False,
                overridden={k: k.split(".")[-1] for k, v in set_by.items() if v is not None},
            )  # fmt: skip
            with runner:
                result = optimise_network(
                    scenario, spec, store=output.store, workers=options.workers, log=log,
                    engine=runner, report=output.reporting(lambda state: None),
                    description=description,
                )  # fmt: skip
            out.print(_design_table(result, spec.objective))
            from sim.outputs.design_folder import write_design

            output.commit(lambda folder: write_design(result, folder, path), out_dir)
    except UserInputError as exc:
        if exc.file is None and exc.field in _SPEC_OPTIONS:
            if exc.field in overrides or config is None:
                exc.field = _SPEC_OPTIONS[exc.field]
            else:
                exc.file, exc.line = str(config), field_line(config, exc.field)
        locate(exc, scenario_file)
        raise
    show_written(out_dir, f" ({result.evaluations} designs in the search; {result.stop_reason})")


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
