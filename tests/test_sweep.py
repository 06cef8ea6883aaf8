"""Sweeps: a scenario at every point of a grid, on common random numbers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.errors import ScenarioError, UserInputError
from sim.experiments.runs.compare import paired_difference
from sim.experiments.runs.run import run
from sim.experiments.runs.sweep import Parameter, SweepResult, grid, parse_parameter, sweep
from sim.model.loading import load_scenario, with_fields
from sim.model.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quick.yaml"
runner = CliRunner()


@pytest.fixture(scope="module")
def quick() -> Scenario:
    return load_scenario(QUICK).with_overrides(
        horizon={"days": 2, "warmup_days": 0.2}, replications=4
    )


@pytest.fixture(scope="module")
def fleet(quick: Scenario) -> SweepResult:
    return sweep(quick, [Parameter("network.vans.total", (70, 140))], keep_tables=True)


# --------------------------------------------------------------------------- parameters


def test_values_are_read_as_yaml_scalars() -> None:
    assert parse_parameter("network.vans.total=1800, 2000") == Parameter(
        "network.vans.total", (1800, 2000)
    )
    assert parse_parameter("hotline.redial_probability=0.2,0.8").values == (0.2, 0.8)
    assert parse_parameter("dispatch.policy=nearest_station,priority").values == (
        "nearest_station",
        "priority",
    )
    assert parse_parameter("geography.include_municipalities=true,false").values == (True, False)


@pytest.mark.parametrize("text", ["network.vans.total", "=1,2", "a.b=", "a.b=1,,2", "a.b=[1, 2]"])
def test_a_malformed_parameter_names_the_option(text: str) -> None:
    with pytest.raises(UserInputError) as caught:
        parse_parameter(text)
    assert caught.value.field == "--vary"


def test_fields_are_set_by_their_path_as_in_the_yaml(quick: Scenario) -> None:
    changed = with_fields(quick, {"network.vans.total": 77, "hotline.shifts[0].agents": 9})
    assert changed.network.vans.total == 77
    assert changed.hotline.shifts[0].agents == 9
    assert changed.hotline.shifts[1:] == quick.hotline.shifts[1:]
    assert quick.network.vans.total != 77  # the base is left alone


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"network.vanz.total": 1}, "network.vanz.total", "network has no field 'vanz'"),
        ({"hotline.shifts[9].agents": 1}, "hotline.shifts[9].agents", "has no item [9]"),
        ({"network.vans.total": -3}, "network.vans.total", "greater than 0"),
        ({"dispatch.policy": "fastest"}, "dispatch.policy", "unknown policy 'fastest'"),
        ({"demand.segments[0].share": 0.9}, "demand.segments", "shares must sum to 1"),
    ],
)
def test_a_bad_path_or_value_names_the_field(
    quick: Scenario, values: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(ScenarioError) as caught:
        with_fields(quick, values)
    assert caught.value.field == field
    assert message in caught.value.message


def test_the_grid_is_every_combination_first_parameter_slowest(quick: Scenario) -> None:
    points = grid(
        quick,
        [Parameter("network.vans.total", (80, 100)), Parameter("hotline.max_attempts", (1, 2, 3))],
    )
    assert [tuple(p.values.values()) for p in points] == [
        (80, 1), (80, 2), (80, 3), (100, 1), (100, 2), (100, 3)
    ]  # fmt: skip
    assert all(p.scenario.seed == quick.seed for p in points)
    assert points[4].scenario.network.vans.total == 100
    assert points[4].scenario.hotline.max_attempts == 2


def test_a_point_whose_network_cannot_be_built_fails_before_any_run(quick: Scenario) -> None:
    with pytest.raises(UserInputError) as caught:
        grid(quick, [Parameter("network.vans.total", (100, 40))])
    assert caught.value.field == "--vary network.vans.total=40: network.vans.total"
    assert "40 vans" in caught.value.message


def test_an_error_in_a_swept_file_names_that_file(tmp_path: Path, quick: Scenario) -> None:
    bad = tmp_path / "stations.csv"
    bad.write_text("name,lat\nA,30.0\n", encoding="utf-8")
    with pytest.raises(UserInputError) as caught:
        grid(
            quick,
            [
                Parameter("network.stations.generate", (None,)),
                Parameter("network.stations.csv", (str(bad),)),
            ],
        )
    assert caught.value.file == str(bad)
    assert str(caught.value).startswith(f"{bad}")
    assert "None" not in str(caught.value)


def test_relative_files_are_taken_from_the_current_folder(
    quick: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT / "scenarios")
    (point,) = grid(quick, [Parameter("demand.spatial.csv", ("data/overloaded_demand.csv",))])
    assert point.scenario.demand.spatial.csv == ROOT / "scenarios/data/overloaded_demand.csv"


@pytest.mark.parametrize(
    ("parameters", "field", "message"),
    [
        ([Parameter("replications", (1, 2))], "--vary replications", "--replications"),
        ([Parameter("seed", (1, 2))], "--vary seed", "share their random numbers"),
        ([Parameter("network.vans.total", ())], "--vary network.vans.total", "no values"),
        ([Parameter("network.vans.total", (90, 90))], "--vary network.vans.total", "twice"),
        (
            [Parameter("network.vans", ({},)), Parameter("network.vans.total", (90,))],
            "--vary network.vans.total",
            "already varied as part of network.vans",
        ),
        (
            [Parameter("hotline.shifts[0].agents", (1,)), Parameter("hotline.shifts", ((),))],
            "--vary hotline.shifts",
            "contains hotline.shifts[0].agents",
        ),
    ],
)
def test_a_grid_that_cannot_be_swept_is_refused(
    quick: Scenario, parameters: list[Parameter], field: str, message: str
) -> None:
    with pytest.raises(UserInputError) as caught:
        grid(quick, parameters)
    assert caught.value.field == field
    assert message in caught.value.message


def test_policy_options_are_checked_before_any_run(quick: Scenario) -> None:
    with_options = with_fields(
        quick, {"dispatch.policy": "preparedness", "dispatch.options": {"coverage_km": 60.0}}
    )
    # Another policy starts from no options, as --policy does: nothing to refuse.
    points = grid(with_options, [Parameter("dispatch.policy", ("preparedness", "priority"))])
    assert points[0].scenario.dispatch.options == {"coverage_km": 60.0}
    assert points[1].scenario.dispatch.options == {}
    with pytest.raises(UserInputError) as caught:
        grid(quick, [Parameter("dispatch.options", ({"radius": 3},))])
    assert caught.value.field == "--vary dispatch.options={'radius': 3}: dispatch.options"
    with pytest.raises(UserInputError) as caught:
        grid(with_options, [Parameter("dispatch.options.coverage_km", (60.0, -1.0))])
    assert caught.value.field == "--vary dispatch.options.coverage_km=-1.0: dispatch.options"
    assert "coverage_km must be positive" in caught.value.message


def test_a_policy_is_given_once(quick: Scenario) -> None:
    (point,) = grid(quick, [Parameter("network.vans.total", (90,))], policy="priority")
    assert point.scenario.network.vans.total == 90
    with pytest.raises(UserInputError) as caught:
        grid(quick, [Parameter("dispatch.policy", ("priority",))], policy="priority")
    assert caught.value.field == "--policy"


# --------------------------------------------------------------------------- results


def test_rows_are_flat_parameters_beside_kpis(fleet: SweepResult) -> None:
    rows = fleet.rows
    assert list(rows.columns[:3]) == ["point", "network.vans.total", "replication"]
    assert len(rows) == 2 * 4
    assert list(rows["network.vans.total"]) == [70] * 4 + [140] * 4
    assert list(rows["replication"]) == [0, 1, 2, 3] * 2
    assert rows["on_time_arrival_rate"].between(0, 1).all()
    summary = fleet.summary
    assert set(summary["kpi"]) == set(rows.columns[3:])
    one = summary[(summary["point"] == 1) & (summary["kpi"] == "van_utilisation")].iloc[0]
    assert one["mean"] == pytest.approx(rows.loc[rows["point"] == 1, "van_utilisation"].mean())
    assert one["n"] == 4


def test_a_point_is_the_run_of_its_scenario(quick: Scenario, fleet: SweepResult) -> None:
    alone = run(with_fields(quick, {"network.vans.total": 140}))
    pd.testing.assert_frame_equal(
        fleet.results[1].kpis_by_replication, alone.kpis_by_replication, check_exact=True
    )


def test_points_share_their_calls(fleet: SweepResult) -> None:
    """Common random numbers: every fleet size answers the very same calls."""
    small, large = (result.calls for result in fleet.results)
    assert len(small) > 400 and set(small["replication"]) == {0, 1, 2, 3}
    columns = ["replication", "call_id", "t_call_h", "lat", "lon", "fault"]
    pd.testing.assert_frame_equal(small[columns], large[columns], check_exact=True)
    # ... and serves them differently.
    assert not small["arrived_h"].equals(large["arrived_h"])


def test_a_sweep_keeps_only_the_kpis_unless_asked(quick: Scenario, fleet: SweepResult) -> None:
    lean = sweep(quick, [Parameter("network.vans.total", (70, 140))])
    pd.testing.assert_frame_equal(lean.rows, fleet.rows, check_exact=True)
    for result in lean.results:
        assert result.calls.empty and result.units.empty
        assert list(result.calls.columns) == list(fleet.results[0].calls.columns)


def test_doubling_the_fleet_raises_on_time_arrival(fleet: SweepResult) -> None:
    """Paired over replications, as the common random numbers allow."""
    diff = paired_difference("on_time_arrival_rate", fleet.results[1], fleet.results[0])
    assert diff.low > 0, diff
    util = paired_difference("van_utilisation", fleet.results[1], fleet.results[0])
    assert util.high < 0, util


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores for two workers")
def test_sweep_results_do_not_depend_on_workers(quick: Scenario, fleet: SweepResult) -> None:
    parallel = sweep(quick, [Parameter("network.vans.total", (70, 140))], workers=2)
    pd.testing.assert_frame_equal(parallel.rows, fleet.rows, check_exact=True)


def test_a_swept_policy(quick: Scenario) -> None:
    result = sweep(
        quick,
        [Parameter("dispatch.policy", ("nearest_station", "nearest_idle_van"))],
        replications=2,
    )
    assert [r.policy for r in result.results] == ["nearest_station", "nearest_idle_van"]
    assert (
        list(result.rows["dispatch.policy"]) == ["nearest_station"] * 2 + ["nearest_idle_van"] * 2
    )


# --------------------------------------------------------------------------- command line


def test_sweep_command_prints_and_writes(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    result = runner.invoke(
        app,
        [
            "sweep", str(QUICK), "--vary", "network.vans.total=70,140", "--days", "2",
            "--replications", "2", "--kpi", "on_time_arrival_rate", "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "network.vans.total" in result.stdout and "on_time_arrival_rate" in result.stdout
    assert "140" in result.stdout
    rows = pd.read_csv(out / "sweep.csv")
    assert len(rows) == 4
    assert list(rows.columns[:3]) == ["point", "network.vans.total", "replication"]
    summary = pd.read_csv(out / "sweep_summary.csv")
    assert set(summary["point"]) == {0, 1}
    payload = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert payload["parameters"] == {"network.vans.total": [70, 140]}
    assert payload["points"] == [{"network.vans.total": 70}, {"network.vans.total": 140}]
    assert payload["replications"] == 2


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--vary", "network.vanz.total=1,2"], "error: --vary network.vanz.total=1: network.vanz"),
        (["--vary", "network.vans.total"], "error: --vary: 'network.vans.total': write PATH="),
        (["--vary", "network.vans.total=90", "--kpi", "speed"], "error: --kpi: unknown KPI"),
        (["--vary", "network.vans.total=90", "--workers", "0"], "error: --workers: must be"),
    ],
)
def test_sweep_command_refuses_bad_input_in_one_line(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    out = tmp_path / "sweep"
    result = runner.invoke(app, ["sweep", str(QUICK), *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(expected), result.stderr
    assert not out.exists()  # no partial output
