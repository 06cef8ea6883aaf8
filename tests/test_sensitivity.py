"""Sensitivity: Morris screening ranks a parameter made dominant first; the figure and CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.errors import UserInputError
from sim.experiments.fitting.points import ParameterRange, bind_ranges, evaluate_points, parse_range
from sim.experiments.fitting.sensitivity import Screening, sensitivity
from sim.model.loading import load_scenario
from sim.model.scenario import Scenario
from sim.outputs.sensitivity_plot import sensitivity_figure, write_sensitivity

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quick.yaml"
runner = CliRunner()
KPI = "on_time_arrival_rate"


@pytest.fixture(scope="module")
def quick() -> Scenario:
    return load_scenario(QUICK).with_overrides(horizon={"days": 2, "warmup_days": 0.2})


@pytest.mark.parametrize(
    ("ranges", "dominant"),
    [
        # The detour factor over a wide range, the fleet barely moved.
        (["travel.detour_factor=1.0..3.0", "network.vans.total=105..110"], "travel.detour_factor"),
        # The same parameters, the other way round.
        (["travel.detour_factor=1.30..1.35", "network.vans.total=60..110"], "network.vans.total"),
    ],
)
def test_dominant_parameter_ranks_first(quick: Scenario, ranges: list[str], dominant: str) -> None:
    ranges = [*ranges, "stations.turnout_day_min.mean=14..16"]
    result = sensitivity(quick, [parse_range(r) for r in ranges], [KPI], Screening(trajectories=6))
    table = result.indices.set_index("parameter")
    assert table.loc[dominant, "rank"] == 1
    others = table.drop(index=dominant)
    # First by a margin: its whole interval lies above every other parameter's.
    assert (table.loc[dominant, "mu_star_low"] > others["mu_star_high"]).all()
    assert len(result.points) == 6 * (len(ranges) + 1)


def test_points_share_random_numbers(quick: Scenario) -> None:
    """Every point keeps the scenario's seed: the same point gives the same KPIs."""
    ranges = [ParameterRange("travel.detour_factor", 1.0, 2.0)]
    a, b, c = evaluate_points(quick, ranges, np.array([[1.3], [1.3], [1.8]]), replications=2)
    assert a.equals(b)
    assert not a.equals(c)


def test_parse_range(quick: Scenario) -> None:
    ranges = [parse_range("network.vans.total=60..110"), parse_range("travel.detour_factor=1..2")]
    assert ranges[0] == ParameterRange("network.vans.total", 60, 110)
    # Integer where the scenario holds an integer, however the bounds are written.
    assert [r.integer for r in bind_ranges(quick, ranges)] == [True, False]
    assert bind_ranges(quick, ranges)[0].value(84.6) == 85
    for bad in ("travel.detour_factor=2..1", "x=1-2", "seed=1..5", "x=a..b", "=1..2"):
        with pytest.raises(UserInputError):
            parse_range(bad)


def test_figure_and_files(quick: Scenario, tmp_path: Path) -> None:
    ranges = [parse_range("network.vans.total=60..110"), parse_range("travel.noise_cv=0..0.3")]
    result = sensitivity(quick, ranges, [KPI, "response_p90_h"], Screening(trajectories=2))
    fig = sensitivity_figure(result.indices, KPI)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()][-1] == "network.vans.total"
    assert len(ax.patches) == 2
    paths = write_sensitivity(result, tmp_path)
    assert {p.name for p in paths} == {
        "sensitivity.csv",
        "points.csv",
        f"sensitivity_{KPI}.png",
        "sensitivity_response_p90_h.png",
        "sensitivity.json",
    }
    # `rescue-sim report` on the folder: a figure and the indices for every KPI.
    report = runner.invoke(app, ["report", str(tmp_path)])
    assert report.exit_code == 0, report.output
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    for kpi in (KPI, "response_p90_h"):
        assert f'<figure id="sensitivity_{kpi}"><img' in page
    assert page.count("data:image/png;base64,") == 2
    assert page.count("network.vans.total") == 2 and "travel.noise_cv" in page
    assert "2 parameters" in page and "morris" in page


def test_cli_bad_range_is_one_line() -> None:
    result = runner.invoke(
        app, ["sensitivity", str(QUICK), "--days", "2", "--param", "network.vans.total=10..110"]
    )
    assert result.exit_code == 2
    assert "--param network.vans.total: at the low bounds" in result.output
    assert "Traceback" not in result.output
