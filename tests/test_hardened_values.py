"""Values that mean nothing, refused (issue 27): one line naming the option, exit 2, before
any run, and nothing on disk.

A sweep never runs a point under one policy and labels it with another; calibrate's
targets, sensitivity's sample sizes, --precision and --require are checked against what
they can mean; a design too large to build is refused from its shape, before any point is
made.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from cli_checks import QUICK, one_error_line, tree
from typer.testing import CliRunner

import sim.experiments.runs.executor as engine_module
from sim.cli import app
from sim.errors import UserInputError
from sim.experiments.runs.sweep import sweep_points
from sim.experiments.runs.sweep_file import read_sweep_file
from sim.model.loading import load_scenario

runner = CliRunner()


@pytest.fixture
def no_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("a simulation started")

    monkeypatch.setattr(engine_module.Experiment, "execute", fail)


def _write(tmp_path: Path, text: str, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def _refused(args: list[str], out: Path) -> str:
    """The one error line of a command refused with exit 2, having written nothing."""
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert tree(out) == {}
    return one_error_line(result.stdout, result.stderr)


# ------------------------------------------------------------------ item 1: policy labels

POLICIES = "policies: [nearest_station, nearest_idle_van]\n"
POLICY_FACTOR = "  dispatch.policy: [nearest_station, nearest_idle_van]\n"


@pytest.mark.parametrize(
    ("top", "factor"), [(POLICIES, ""), ("", POLICY_FACTOR)], ids=["policies", "factor"]
)
def test_policy_with_a_sweep_file_that_sweeps_policies_is_refused(
    tmp_path: Path, top: str, factor: str, no_simulation: None
) -> None:
    study = _write(
        tmp_path,
        f"base: {QUICK}\nreplications: 2\n{top}factors:\n{factor}  network.vans.total: [70, 140]\n",
    )
    line = _refused(
        ["sweep", str(study), "--days", "2", "--policy", "nearest_station"], tmp_path / "out"
    )
    assert line == (
        "error: --policy: study.yaml sweeps dispatch.policy: drop --policy, or its policies"
    )
    # The Python API refuses the same way, before any point is made.
    with pytest.raises(UserInputError) as caught:
        read_sweep_file(study).points(load_scenario(QUICK), "nearest_station")
    assert str(caught.value) == line.removeprefix("error: ")


def test_without_policy_each_point_is_labelled_with_the_policy_that_ran(tmp_path: Path) -> None:
    study = read_sweep_file(
        _write(tmp_path, f"base: {QUICK}\n{POLICIES}factors:\n  network.vans.total: [140]\n")
    )
    base = load_scenario(QUICK).with_overrides(
        horizon={"days": 1, "warmup_days": 0.1}, replications=1
    )
    parameters, points = study.points(base)
    result = sweep_points(base, parameters, points)
    labels = [point.values["dispatch.policy"] for point in result.points]
    assert labels == ["nearest_station", "nearest_idle_van"]
    assert [r.policy for r in result.results] == labels


# ------------------------------------------------------------------ item 6: values

PARAM = ["--param", "hotline.redial_probability=0.2..0.8", "--days", "2"]


@pytest.mark.parametrize(
    ("targets", "line"),
    [
        (
            ["on_time_arrival_rate=1.5"],
            "--target on_time_arrival_rate: 1.5 is not a share: give a value between 0 and 1",
        ),
        (
            ["on_time_arrival_rate=-0.2"],
            "--target on_time_arrival_rate: -0.2 is not a share: give a value between 0 and 1",
        ),
        (
            ["response_p90_h=-1"],
            "--target response_p90_h: -1 h is a negative time: give 0 or more",
        ),
        (
            ["on_time_arrival_rate=0.9+-0"],
            "--target on_time_arrival_rate: the standard error must be positive "
            "(leave out +-SE for none)",
        ),
        (
            ["on_time_arrival_rate=0.9+--0.01"],
            "--target: 'on_time_arrival_rate=0.9+--0.01': needs a finite value and SE >= 0",
        ),
        (
            ["on_time_arrival_rate=0.9", "on_time_arrival_rate=0.8"],
            "--target on_time_arrival_rate: given twice; give each KPI once",
        ),
    ],
    ids=["above-1", "below-0", "negative-hours", "zero-se", "negative-se", "twice"],
)
def test_calibrate_refuses_targets_a_kpi_cannot_take(
    tmp_path: Path, targets: list[str], line: str, no_simulation: None
) -> None:
    given = [part for text in targets for part in ("--target", text)]
    assert _refused(["calibrate", str(QUICK), *given, *PARAM], tmp_path / "out") == (
        f"error: {line}"
    )


def test_calibrate_api_refuses_the_same_targets() -> None:
    from sim.experiments.fitting.calibrate import calibrate
    from sim.experiments.fitting.points import parse_range

    ranges = [parse_range("hotline.redial_probability=0.2..0.8")]
    for targets, se in (({"on_time_arrival_rate": 1.5}, None), ({"response_p90_h": -1.0}, None)):
        with pytest.raises(UserInputError, match=r"^--target "):
            calibrate(load_scenario(QUICK), ranges, targets, target_se=se)
    with pytest.raises(UserInputError, match="standard error"):
        calibrate(
            load_scenario(QUICK),
            ranges,
            {"on_time_arrival_rate": 0.9},
            target_se={"on_time_arrival_rate": -0.1},
        )
