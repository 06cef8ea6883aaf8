"""Commands that fit parameters to KPIs: ``sensitivity`` and ``calibrate``.

Both go the way ``run`` goes (sim.cli.setup, sim.cli.output): the scenario, the ranges and
every option checked, the output folder claimed and locked, the work estimated, all before
the first simulation; every point's runs on the engine through the folder's result store
(a rerun after an interruption runs only what is missing); the folder committed in one
step at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sim.cli.app import app, out
from sim.cli.guard import guarded
from sim.cli.options import (
    ExperimentOptions,
    ParamOption,
    ScenarioArgument,
    shared_options,
)
from sim.cli.output import claimed, described, show_written
from sim.cli.progress import fraction_done, monitor
from sim.cli.setup import (
    checked_design,
    checked_work,
    engine_from_options,
    load,
    overridden,
    pointed_at,
    with_overrides,
)
from sim.errors import UserInputError

if TYPE_CHECKING:
    from sim.experiments.fitting.points import ParameterRange
    from sim.experiments.fitting.sensitivity import Method
    from sim.experiments.runs.progress import ProgressState
    from sim.model.scenario import Scenario


# The shared options sensitivity and calibrate take (the same for both).
_FITTING_OPTIONS = ("days", "replications", "workers", "overwrite", "force", "engine", "scheduler")


@app.command()
@guarded
@shared_options(
    *_FITTING_OPTIONS,
    out="Write sensitivity.csv, points.csv, figures here (a rerun resumes).",
)
def sensitivity(
    scenario_file: ScenarioArgument,
    param: ParamOption,
    kpi: Annotated[
        list[str] | None, typer.Option("--kpi", help="A KPI to analyse; repeat.")
    ] = None,
    method: Annotated[str, typer.Option(help="morris, or sobol for Sobol indices.")] = "morris",
    trajectories: Annotated[int, typer.Option(help="Morris trajectories.")] = 10,
    samples: Annotated[int, typer.Option(help="Sobol base samples (a power of 2).")] = 64,
    *,
    options: ExperimentOptions,
) -> None:
    """Rank parameters by their effect on KPIs (Morris mu* or Sobol indices, SALib)."""
    from sim.analysis.kpi_catalogue import HEADLINE_KPIS
    from sim.experiments.fitting.points import bind_ranges, check_kpis, point_scenario
    from sim.experiments.fitting.sensitivity import Screening, unit_to_values
    from sim.experiments.fitting.sensitivity import sensitivity as analyse
    from sim.experiments.runs.run import Execution

    kpis = list(kpi) if kpi else list(HEADLINE_KPIS[:2])
    with pointed_at(scenario_file):
        if method not in ("morris", "sobol"):
            raise UserInputError("must be morris or sobol", field="--method")
        chosen: Method = "sobol" if method == "sobol" else "morris"
        screening = Screening(chosen, trajectories=trajectories, samples=samples)
        check_kpis(kpis)
        scenario, path, ranges = _scenario_and_ranges(scenario_file, param, options)
        runner = engine_from_options(options.workers, options.engine, options.scheduler)
        shape = {"trajectories": trajectories} if method == "morris" else {"samples": samples}
        # The design's size and work from its shape, then the points, known before any
        # run: the work is counted on them too.
        checked_design(
            scenario, screening.points(len(ranges)), workers=runner.workers, force=options.force,
            field=screening.size_option, overridden=overridden(options.days, options.replications),
        )  # fmt: skip
        bound = bind_ranges(scenario, ranges)
        unit = screening.design(bound)
        points = [point_scenario(scenario, bound, row) for row in unit_to_values(bound, unit)]
        description = described(
            "sensitivity", path, scenario, method=method, parameters=list(param), **shape
        )
        with claimed(options.out_dir, options.overwrite, description) as output:
            _check_work(points, scenario.replications, runner.workers, options)
            label = f"{method}: {len(points)} points x{scenario.replications}"
            with runner, monitor(label) as report:
                runs = Execution(
                    options.workers, runner, output.store, report=output.reporting(report),
                    description=description,
                )  # fmt: skip
                result = analyse(
                    scenario, ranges, kpis, screening, replications=scenario.replications,
                    execution=runs,
                )  # fmt: skip
            out.print(result.indices.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
            if options.out_dir is not None:
                from sim.outputs.sensitivity_plot import write_sensitivity

                output.commit(lambda folder: write_sensitivity(result, folder), options.out_dir)
    show_written(options.out_dir)


@app.command()
@guarded
@shared_options(
    *_FITTING_OPTIONS,
    out="Write calibrated.yaml and calibration.json here (a rerun resumes).",
)
def calibrate(
    scenario_file: ScenarioArgument,
    target: Annotated[
        list[str],
        typer.Option("--target", help="KPI=VALUE or KPI=VALUE+-SE a KPI to match; repeat."),
    ],
    param: ParamOption,
    max_points: Annotated[
        int,
        typer.Option(
            "--max-points",
            "--max-steps",
            help="Most points run, exactly: the start, its moved points, then the solver's "
            "trial and moved points, each of --replications runs (--max-steps: older name).",
        ),
    ] = 30,
    *,
    options: ExperimentOptions,
) -> None:
    """Fit parameters to target KPIs (least squares on common random numbers)."""
    from sim.experiments.fitting.calibrate import calibrate as fit
    from sim.experiments.fitting.calibrate import check_calibration, parse_targets
    from sim.experiments.fitting.points import check_kpis
    from sim.experiments.runs.run import Execution

    with pointed_at(scenario_file):
        targets, target_se = parse_targets(target)
        check_kpis(list(targets), "--target")
        scenario, path, ranges = _scenario_and_ranges(scenario_file, param, options)
        # The scenario's own replications, when --replications is not given: its line named.
        where = "--replications" if options.replications is not None else "replications"
        check_calibration(scenario.replications, max_points, len(ranges), where)
        runner = engine_from_options(options.workers, options.engine, options.scheduler)
        description = described(
            "calibrate", path, scenario, targets=targets, target_se=target_se,
            parameters=list(param),
        )  # fmt: skip
        with claimed(options.out_dir, options.overwrite, description) as output:
            # At most max_points points, none heavier than the heaviest corner of the ranges.
            heaviest = [_heaviest(scenario, ranges)] * max_points
            _check_work(heaviest, scenario.replications, runner.workers, options)
            label = f"calibrating: at most {max_points} points x{scenario.replications}"
            with runner, fraction_done(label) as progress:
                # Progress follows the fit's points; the report of its runs stays quiet.
                runs = Execution(
                    options.workers, runner, output.store, progress, output.reporting(_quiet),
                    description,
                )  # fmt: skip
                result = fit(
                    scenario, ranges, targets, target_se=target_se,
                    replications=scenario.replications, max_evaluations=max_points,
                    execution=runs,
                )  # fmt: skip
            out.print(f"{result.message} ({result.evaluations} points run)", highlight=False)
            out.print(result.parameters.to_string(float_format=lambda v: f"{v:.5g}"))
            out.print(result.residuals.to_string(float_format=lambda v: f"{v:.4g}"))
            if options.out_dir is not None:
                from sim.outputs.calibration import write_calibration

                output.commit(lambda folder: write_calibration(result, folder), options.out_dir)
    show_written(options.out_dir)


def _scenario_and_ranges(
    scenario_file: Path, param: list[str], options: ExperimentOptions
) -> tuple[Scenario, Path, list[ParameterRange]]:
    """The scenario with --days and --replications laid on it, and the checked --param ranges."""
    from sim.experiments.fitting.points import check_ranges, parse_range

    scenario, path = load(scenario_file)
    scenario = with_overrides(scenario, options.days, None, None, options.replications)
    ranges = [parse_range(text) for text in param]
    check_ranges(scenario, ranges)
    return scenario, path, ranges


def _check_work(
    points: list[Scenario],
    replications: int,
    workers: int,
    options: ExperimentOptions,
) -> None:
    """The work of ``replications`` runs at each point (KPIs kept, no tables), checked."""
    checked_work(
        [(point, replications) for point in points],
        workers=workers,
        force=options.force,
        keep_tables=False,
        overridden=overridden(options.days, options.replications),
    )


def _heaviest(scenario: Scenario, ranges: list[ParameterRange]) -> Scenario:
    """Of the scenario and the two corners of the ranges, the one with the most calls."""
    from sim.experiments.fitting.points import bind_ranges, point_scenario
    from sim.model.call_volume import expected_calls_per_day

    bound = bind_ranges(scenario, ranges)
    corners = [point_scenario(scenario, bound, [r.low for r in bound])]
    corners.append(point_scenario(scenario, bound, [r.high for r in bound]))
    return max([scenario, *corners], key=lambda s: expected_calls_per_day(s) * s.horizon.days)


def _quiet(state: ProgressState) -> None:
    """No report of the runs: calibrate shows its progress in points."""
