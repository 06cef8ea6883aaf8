"""The warm-up is whole days: a KPI window (warm-up to horizon) never starts mid-day."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.model.loading import load_scenario
from sim.model.scenario import Horizon

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (0.0, 0.0),
        (0.2, 0.0),
        (0.4999, 0.0),
        (0.5, 1.0),
        (0.6, 1.0),
        (1.5, 2.0),
        (2.5, 3.0),
        (2.0, 2.0),
    ],
)
def test_a_fraction_of_a_day_rounds_to_the_nearest_day_halves_up(given: float, kept: float) -> None:
    horizon = Horizon(days=10, warmup_days=given)
    assert horizon.warmup_days == kept
    assert horizon.warmup_h % 24 == 0.0


def test_notebook_warmup_of_half_a_day_still_runs() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "quick.yaml").with_overrides(
        horizon={"days": 3, "warmup_days": 0.5}
    )
    assert scenario.horizon.warmup_h == 24.0


def test_a_warmup_that_rounds_up_to_the_horizon_is_one_line_naming_the_field(
    tmp_path: Path,
) -> None:
    path = tmp_path / "warmup.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            name: warmup
            horizon:
              days: 1
              warmup_days: 0.6
            """
        ),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0]
    assert lines[0].startswith(f"error: {path}:4: horizon.warmup_days: ")
    assert "rounded to whole days: 1" in lines[0]


# --days (and the optimiser's and the regression helpers' days) shortens the horizon by
# one rule (sim.experiments.runs.arguments.shortened_horizon): the scenario's warm-up is
# kept, never silently cut (before, quick.yaml with --days 4 lost its one-day warm-up).


def test_a_shortened_horizon_keeps_the_scenarios_warmup() -> None:
    from sim.experiments.runs.arguments import shortened_horizon

    quick = load_scenario(ROOT / "scenarios" / "quick.yaml")
    assert quick.horizon.warmup_days == 1.0
    for days in (1.5, 2, 4, 7):
        shortened = quick.with_overrides(horizon=shortened_horizon(quick, days))
        assert shortened.horizon.days == days
        assert shortened.horizon.warmup_days == 1.0
    national = load_scenario(ROOT / "scenarios" / "dongfeng_light_truck.yaml")
    shortened = national.with_overrides(horizon=shortened_horizon(national, 3))
    assert shortened.horizon.warmup_days == national.horizon.warmup_days == 2.0


def test_days_within_the_warmup_are_one_line_naming_the_option() -> None:
    quick = ROOT / "scenarios" / "quick.yaml"
    result = runner.invoke(app, ["run", str(quick), "--days", "1", "--replications", "1"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: --days: 1 day(s) leave nothing after the scenario's warm-up")


def test_a_run_shortened_by_days_observes_only_after_the_warmup(tmp_path: Path) -> None:
    import pandas as pd

    quick = ROOT / "scenarios" / "quick.yaml"
    out = tmp_path / "q"
    result = runner.invoke(
        app, ["run", str(quick), "--days", "4", "--replications", "1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    import json

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["scenario"]["horizon"]["warmup_days"] == 1.0
    calls = pd.read_parquet(out / "calls.parquet")
    per_day = calls["t_call_h"].max() / 24
    assert 3.9 < per_day <= 4.0
