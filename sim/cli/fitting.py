"""Commands that fit parameters to KPIs: ``sensitivity`` and ``calibrate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sim.cli.app import app, out
from sim.cli.guard import guarded
from sim.cli.options import (
    DaysOption,
    EngineOption,
    ParamOption,
    ReplicationsOption,
    SchedulerOption,
    WorkersOption,
)
from sim.cli.progress import fraction_done
from sim.cli.setup import engine_from_options, load, locate, with_overrides
from sim.errors import UserInputError


@app.command()
@guarded
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
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
) -> None:
    """Rank parameters by their effect on KPIs (Morris mu* or Sobol indices, SALib)."""
    from sim.analysis.kpi_catalogue import HEADLINE_KPIS
    from sim.experiments.fitting.points import check_kpis, check_ranges, parse_range
    from sim.experiments.fitting.sensitivity import sensitivity as analyse

    kpis = list(kpi) if kpi else list(HEADLINE_KPIS[:2])
    try:
        scenario, _ = load(scenario_file)
        scenario = with_overrides(scenario, days, None, None, replications)
        if method not in ("morris", "sobol"):
            raise UserInputError("must be morris or sobol", field="--method")
        if trajectories < 2 or samples < 2:
            raise UserInputError("must be at least 2", field="--trajectories/--samples")
        check_kpis(kpis)
        ranges = [parse_range(text) for text in param]
        check_ranges(scenario, ranges)
        runner = engine_from_options(workers, engine, scheduler)
        with runner, fraction_done(f"{method} x{scenario.replications}") as progress:
            result = analyse(
                scenario, ranges, kpis, method="sobol" if method == "sobol" else "morris",
                trajectories=trajectories, samples=samples,
                replications=scenario.replications, workers=workers, progress=progress,
                engine=runner,
            )  # fmt: skip
    except UserInputError as exc:
        locate(exc, scenario_file)
        raise
    out.print(result.indices.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if out_dir is not None:
        from sim.outputs.sensitivity_plot import write_sensitivity

        for path in write_sensitivity(result, out_dir):
            out.print(f"wrote {path}", highlight=False)


@app.command()
@guarded
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
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
) -> None:
    """Fit parameters to target KPIs (least squares on common random numbers)."""
    from sim.experiments.fitting.calibrate import calibrate as fit
    from sim.experiments.fitting.calibrate import parse_target
    from sim.experiments.fitting.points import check_kpis, check_ranges, parse_range

    try:
        scenario, _ = load(scenario_file)
        scenario = with_overrides(scenario, days, None, None, replications)
        parsed = [parse_target(text) for text in target]
        targets = {name: value for name, value, _ in parsed}
        check_kpis(list(targets), "--target")
        ranges = [parse_range(text) for text in param]
        check_ranges(scenario, ranges)
        if max_steps < 1:
            raise UserInputError("must be at least 1", field="--max-steps")
        runner = engine_from_options(workers, engine, scheduler)
        with runner, fraction_done(f"calibrating x{scenario.replications}") as progress:
            result = fit(
                scenario, ranges, targets, target_se={name: se for name, _, se in parsed},
                replications=scenario.replications,
                workers=workers, max_evaluations=max_steps, progress=progress,
                engine=runner,
            )  # fmt: skip
    except UserInputError as exc:
        locate(exc, scenario_file)
        raise
    out.print(f"{result.message} ({result.evaluations} points run)", highlight=False)
    out.print(result.parameters.to_string(float_format=lambda v: f"{v:.5g}"))
    out.print(result.residuals.to_string(float_format=lambda v: f"{v:.4g}"))
    if out_dir is not None:
        from sim.outputs.calibration import write_calibration

        for path in write_calibration(result, out_dir):
            out.print(f"wrote {path}", highlight=False)
