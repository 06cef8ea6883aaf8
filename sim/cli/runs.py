"""Commands that run scenarios: ``validate``, ``run``, ``compare`` and ``sweep``.

Each goes the same way (sim.cli.setup, sim.cli.output): the scenario and every option
checked, the network built, the output folder claimed and locked, the work estimated, all
before the first simulation; then the runs on the engine with progress, the table, and
the folder committed in one step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from sim.cli.app import app, err, out
from sim.cli.guard import guarded
from sim.cli.options import (
    ExperimentOptions,
    PolicyOption,
    ScenarioArgument,
    shared_options,
)
from sim.cli.output import claimed, show_written
from sim.cli.progress import monitor
from sim.cli.setup import (
    Experiment,
    check_policy,
    checked_design,
    checked_work,
    load,
    options_experiment,
    options_scenario,
    overridden,
    pointed_at,
    precision_note,
    stop_on_failures,
    stop_on_policy_failure,
)
from sim.cli.tables import DELTA_CAPTION, delta_cells, interval_text, kpi_label, kpi_table
from sim.errors import UserInputError

if TYPE_CHECKING:
    from sim.experiments.runs.sweep_file import SweepFile
    from sim.model.scenario import Scenario

# The KPIs a sweep shows unless --kpi is given: the headline rates, then these.
SWEEP_EXTRA_KPIS = ("response_p90_h", "van_utilisation")


def _description(command: str, file: Path, scenario: Scenario, **more: Any) -> dict[str, Any]:
    """What an experiment's store is kept under: a rerun with another one starts afresh."""
    from sim.experiments.runs.keys import scenario_digest

    return {
        "command": command,
        "file" if command == "sweep" else "scenario_file": str(file),
        "scenario_sha256": scenario_digest(scenario),
        **more,
    }


@app.command()
@guarded
def validate(
    scenario_file: ScenarioArgument,
    force: Annotated[
        bool, typer.Option("--force", help="Describe the scenario even past this machine's limits.")
    ] = False,
) -> None:
    """Check a scenario, describe the network and demand it resolves to, estimate its work."""
    from sim.model.call_volume import expected_calls_per_day
    from sim.model.network import build_network
    from sim.model.reference import PREFECTURE_COUNT

    with pointed_at(scenario_file):
        scenario, path = load(scenario_file)
        network = build_network(scenario)
        estimate = checked_work([(scenario, scenario.replications)], workers=1, force=force)
    from sim.experiments.runs.work_estimate import describe

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


@app.command()
@guarded
@shared_options(out="Write the run folder here (a rerun resumes from it).")
def run(
    scenario_file: Annotated[
        Path | None, typer.Argument(help="Scenario YAML; default: the national Dongfeng scenario.")
    ] = None,
    policy: PolicyOption = None,
    *,
    options: ExperimentOptions,
) -> None:
    """Run a scenario and print its KPIs with 95% intervals."""
    from sim.experiments.runs.run import run as run_scenario
    from sim.experiments.runs.worker import cached_network

    with pointed_at(scenario_file):
        scenario, path = options_scenario(scenario_file, options, policy)
        setup = options_experiment(options, scenario)
        cached_network(scenario)  # network mistakes surface before any work (and it is kept)
        description = _description("run", path, scenario)
        with claimed(options.out_dir, options.overwrite, description) as output:
            checked_work(
                [(scenario, scenario.replications)],
                workers=setup.engine.workers,
                force=options.force,
                out_dir=options.out_dir,
                overridden=overridden(options.days, options.replications),
            )
            with setup.engine, monitor(f"{scenario.name} x{scenario.replications}") as report:
                result = run_scenario(
                    scenario,
                    keep_tables=options.out_dir is not None,
                    description=description,
                    **setup.options(output.store, output.reporting(report)),
                )
                n = len(result.replications)
                stop_on_policy_failure(result.failures, n)
            title = f"{scenario.name} | {result.policy} | {n} replication(s)"
            shown: list[Table | str] = [kpi_table(result.summary, escape(title))] if n else []
            shown += [precision_note([result])] if setup.precision else []
            # The table comes once the folder is written (else an error is the one line),
            # or before the failures.
            if result.failures:
                out.print(*shown, highlight=False)
                stop_on_failures(result.failures, n + len(result.failures), output.kept_store)
            if options.out_dir is not None:
                from sim.outputs.run_folder import write_run

                output.commit(lambda folder: write_run(result, folder, path), options.out_dir)
    out.print(*shown, highlight=False)
    show_written(options.out_dir)


@app.command()
@guarded
@shared_options(out="Write comparison.csv/json here.")
def compare(
    scenario_file: ScenarioArgument,
    policy: Annotated[
        list[str],
        typer.Option("--policy", help="A policy to compare; repeat; the first is the reference."),
    ],
    *,
    options: ExperimentOptions,
) -> None:
    """Run several policies on the same call streams; paired differences to the first."""
    from sim.analysis.kpi_catalogue import format_kpi
    from sim.experiments.runs.compare import compare as compare_policies
    from sim.experiments.runs.worker import cached_network

    with pointed_at(scenario_file):
        scenario, path = options_scenario(scenario_file, options)
        for name in policy:
            check_policy(name)
        setup = options_experiment(options, scenario)
        cached_network(scenario)
        description = _description("compare", path, scenario)
        with claimed(options.out_dir, options.overwrite, description) as output:
            checked_work(
                [(scenario, scenario.replications)] * len(policy),
                workers=setup.engine.workers,
                force=options.force,
                overridden=overridden(options.days, options.replications),
            )
            with (
                setup.engine,
                monitor(f"{len(policy)} policies x{scenario.replications}") as report,
            ):
                comparison = compare_policies(
                    scenario,
                    policy,
                    keep_tables=False,
                    description=description,
                    **setup.options(output.store, output.reporting(report)),
                )
                results = list(comparison.results.values())
                failures = [f for r in results for f in r.failures]
                stop_on_policy_failure(failures, sum(len(r.replications) for r in results))
            runs = sum(len(r.replications) + len(r.failures) for r in results)
            stop_on_failures(failures, runs, output.kept_store)
            if options.out_dir is not None:
                from sim.outputs.run_folder import write_comparison

                output.commit(lambda folder: write_comparison(comparison, folder), options.out_dir)
    names = comparison.policies
    table = Table(
        title=escape(
            f"{scenario.name}: {len(results[0].replications)} paired replications, "
            f"reference {names[0]}"
        ),
        caption=DELTA_CAPTION.format(what="policy - reference"),
    )
    for column in ("KPI", "mean", "95% interval", "Δ", "Δ 95% interval"):
        table.add_column(column, justify="left" if column == "KPI" else "right")
        if column == "KPI":
            # A policy's name is never cut short on a narrow terminal: it is what the row is.
            table.add_column("policy", no_wrap=True, min_width=max(map(len, names)))
    for kpi, rows in comparison.table().groupby("kpi", sort=False):
        name = str(kpi)
        for k, (_, row) in enumerate(rows.iterrows()):
            diff, diff_interval = delta_cells(name, row) if k > 0 else ("", "")
            table.add_row(
                "" if k else kpi_label(name),
                str(row["policy"]),
                format_kpi(name, row["mean"]),
                interval_text(name, row["low"], row["high"]),
                diff,
                diff_interval,
            )
        table.add_section()
    out.print(table)
    if setup.precision:
        out.print(precision_note(results), highlight=False)
    show_written(options.out_dir)


@app.command()
@guarded
@shared_options(out="Write sweep.csv, sweep_summary.csv and sweep.json here (a rerun resumes).")
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
    policy: PolicyOption = None,
    *,
    options: ExperimentOptions,
) -> None:
    """Run a scenario at every point of a grid or a sampled design, on common random numbers."""
    from sim.analysis.kpi_catalogue import CATALOGUE, HEADLINE_KPIS, unknown_kpis
    from sim.experiments.runs.sweep import (
        check_policy_not_swept,
        grid,
        grid_size,
        parse_parameter,
        sweep_points,
    )
    from sim.experiments.runs.sweep_file import is_sweep_file, read_sweep_file
    from sim.model.loading import field_line

    shown = list(kpi) if kpi else [*HEADLINE_KPIS, *SWEEP_EXTRA_KPIS]
    design = read_sweep_file(scenario_file) if is_sweep_file(scenario_file) else None
    base = scenario_file if design is None else design.base
    with pointed_at(base):
        if design is not None and vary:
            raise UserInputError("a sweep file gives the factors: drop --vary", field="--vary")
        from_file = (
            design is not None and options.replications is None and design.replications is not None
        )
        if from_file:
            assert design is not None
            options = replace(options, replications=design.replications)
        given = _as_given(scenario_file if from_file else None, design)
        with given([]):
            scenario, _ = options_scenario(base, options)
        if policy is not None:
            check_policy(policy)
        setup = options_experiment(options, scenario)
        for name in unknown_kpis(shown):
            known = ", ".join(CATALOGUE)
            raise UserInputError(f"unknown KPI {name!r}; known: {known}", field="--kpi")
        named = overridden(options.days, None if from_file else options.replications)
        # The design's size and work, from its shape: before any point is made.
        if design is not None:
            check_policy_not_swept([*design.grid, *design.ranges], policy, design.policy_clash)
            size, size_field = design.size, design.size_field
            where: dict[str, Any] = {
                "file": design.path,
                "line": field_line(design.path, size_field),
            }
        else:
            parameters = [parse_parameter(text) for text in vary or ()]
            size, size_field, where = grid_size(parameters), "--vary", {}
        with given([]):
            checked_design(
                scenario, size, workers=setup.engine.workers, force=options.force,
                field=size_field, overridden=named, **where,
            )  # fmt: skip
        # Every point (scenario, network, policy) is checked here, before the first run.
        if design is not None:
            parameters, points = design.points(scenario, policy)
        else:
            points = grid(scenario, parameters, policy=policy)
        description = _description(
            "sweep", scenario_file, scenario, points=[point.values for point in points]
        )
        with claimed(options.out_dir, options.overwrite, description) as output:
            swept = [parameter.path for parameter in parameters]
            with given(swept):
                checked_work(
                    [(point.scenario, scenario.replications) for point in points],
                    workers=setup.engine.workers,
                    force=options.force,
                    keep_tables=False,
                    # A swept field (--days's own too) is named as swept.
                    overridden={k: v for k, v in named.items() if k not in swept},
                )
            with setup.engine, monitor(f"{len(points)} points x{scenario.replications}") as report:
                result = sweep_points(
                    scenario,
                    parameters,
                    points,
                    policy=policy,
                    description=description,
                    **setup.options(output.store, output.reporting(report)),
                )
                finished = sum(len(r.replications) for r in result.results)
                stop_on_policy_failure(result.failures, finished)
            runs = sum(len(r.replications) + len(r.failures) for r in result.results)
            # With every run failed there is no table, only the failures; with none, the
            # table comes once the folder is written (else an error is the one line).
            table = _sweep_table(result, scenario, shown, runs, setup) if finished else None
            if result.failures:
                out.print(table or "")
                stop_on_failures(result.failures, runs, output.kept_store, result.point_label)
            if options.out_dir is not None:
                from sim.outputs.run_folder import write_sweep

                output.commit(lambda folder: write_sweep(result, folder), options.out_dir)
    if table is not None:
        out.print(table)
    show_written(options.out_dir)


def _as_given(
    sweep_file: Path | None, design: SweepFile | None
) -> Callable[[list[str]], AbstractContextManager[None]]:
    """Inside ``given(swept)``, an error of a field the sweep set names where the user set
    it: the replications of ``sweep_file`` (when it set them) its line, a swept field
    ``--vary`` or the sweep file's factor line, not the base scenario's line or an option."""

    @contextmanager
    def given(swept: list[str]) -> Iterator[None]:
        try:
            yield
        except UserInputError as exc:
            replications = exc.field in ("replications", "--replications") and exc.file is None
            if sweep_file is not None and replications:
                from sim.model.loading import field_line

                exc.file, exc.line = str(sweep_file), field_line(sweep_file, "replications")
                exc.field = "replications"
            elif exc.field in swept and exc.file is None:
                if design is None:
                    exc.field = "--vary"
                else:
                    exc.file, exc.line = str(design.path), design.factor_line(exc.field)
                    exc.field = f"factors.{exc.field}"
            raise

    return given


def _sweep_table(
    result: Any,
    scenario: Scenario,
    shown: list[str],
    runs: int,
    setup: Experiment,
) -> Table:
    """One row per point: its swept values, then each shown KPI's mean [95% interval]."""
    from sim.analysis.kpi_catalogue import format_kpi
    from sim.experiments.runs.sweep import format_value

    precision = setup.precision
    summary = result.summary.set_index(["point", "kpi"])
    intervals = summary[["mean", "low", "high"]].to_dict("index")
    table = Table(
        title=escape(
            f"{scenario.name}: {len(result.points)} points, {runs} runs on common random numbers"
        ),
        caption="mean [95% interval] over replications",
    )
    for path in result.paths:
        table.add_column(escape(path), justify="right")
    if precision:
        table.add_column("n", justify="right")
    for name in shown:
        table.add_column(kpi_label(name), justify="right")
    for k, point in enumerate(result.points):
        cells = [escape(format_value(value)) for value in point.values.values()]
        point_result = result.results[k]
        if precision:
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
                cell += f" [{interval_text(name, low, high, ', ')}]"
            cells.append(cell)
        table.add_row(*cells)
    if precision:
        targets = ", ".join(f"{t.kpi} <= {t.half_width:g}" for t in precision)
        table.caption = (
            f"{table.caption}; n: replications run until every 95% half-width met {targets}"
            f" (* not met at the cap of {setup.max_replications})"
        )
    return table
