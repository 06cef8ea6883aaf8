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
from test_work_estimate import COST
from typer.testing import CliRunner

import sim.experiments.runs.executor as engine_module
from sim.cli import app
from sim.errors import UserInputError
from sim.experiments.runs.precision import PrecisionCheck, PrecisionTarget, next_replications
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


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        (
            ["--method", "sobol", "--samples", "3"],
            "--samples: must be a power of 2, at least 16: fewer give indices outside [0, 1] "
            "from sampling noise alone",
        ),
        (
            ["--method", "sobol", "--samples", "24"],
            "--samples: Sobol' samples are balanced only in powers of two: use 16 or 32",
        ),
        (["--trajectories", "1"], "--trajectories: must be a whole number, at least 2"),
    ],
    ids=["sobol-3", "sobol-24", "morris-1"],
)
def test_sensitivity_refuses_too_few_or_unbalanced_samples(
    tmp_path: Path, extra: list[str], line: str, no_simulation: None
) -> None:
    args = ["sensitivity", str(QUICK), *PARAM, *extra]
    assert _refused(args, tmp_path / "out") == f"error: {line}"


def test_screening_api_refuses_the_same_samples() -> None:
    from sim.experiments.fitting.sensitivity import Screening

    with pytest.raises(UserInputError, match=r"^--samples: must be a power of 2"):
        Screening("sobol", samples=3)
    with pytest.raises(UserInputError, match=r"^--trajectories: "):
        Screening("morris", trajectories=1)


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ("1e-300", "a half-width of 1e-300 is below 1e-09, which no number of replications meets"),
        ("0", "the half-width must be positive"),
        ("-0.01", "the half-width must be positive"),
        ("inf", "the half-width must be positive"),
        ("nan", "the half-width must be positive"),
    ],
)
def test_precision_refuses_a_half_width_no_run_can_meet(
    tmp_path: Path, value: str, line: str, no_simulation: None
) -> None:
    args = ["run", str(QUICK), "--days", "2", "--precision", f"on_time_arrival_rate={value}"]
    assert _refused(args, tmp_path / "out") == (f"error: --precision: on_time_arrival_rate: {line}")
    with pytest.raises(UserInputError) as caught:
        PrecisionTarget("on_time_arrival_rate", float(value))
    assert str(caught.value) == f"--precision: on_time_arrival_rate: {line}"


def test_a_huge_shortfall_does_not_overflow_the_next_step() -> None:
    # A target made before the check (bypassing it) that asks far more than any run gives:
    # the next step is at most a doubling, never an OverflowError.
    target = object.__new__(PrecisionTarget)
    object.__setattr__(target, "kpi", "on_time_arrival_rate")
    object.__setattr__(target, "half_width", 1e-300)
    assert next_replications(2, [PrecisionCheck(target, 0.05, 2)], cap=100) == 4


def test_optimise_refuses_requirements_no_value_meets(tmp_path: Path, no_simulation: None) -> None:
    line = "on_time_arrival_rate>=0.95 and on_time_arrival_rate<=0.9 cannot both hold"
    args = ["optimise", str(QUICK), "--days", "2"]
    args += ["--require", "on_time_arrival_rate>=0.95", "--require", "on_time_arrival_rate<=0.90"]
    assert _refused(args, tmp_path / "out") == f"error: --require: {line}"
    spec = _write(
        tmp_path,
        """
        maximise: on_time_arrival_rate
        require:
          - {kpi: on_time_arrival_rate, at_least: 0.95}
          - {kpi: on_time_arrival_rate, at_most: 0.90}
        """,
        "design.yaml",
    )
    refused = _refused(["optimise", str(QUICK), "--config", str(spec)], tmp_path / "out")
    assert refused == f"error: {spec}:2: require: {line}"


# ------------------------------------------------------------------ item 5: design sizes

CAP = "more than the 10,000 a design may have (each is held in memory before the first run; "
CAP += "--force does not lift this)"


def test_a_huge_sobol_screening_is_refused_before_its_points_are_made(
    tmp_path: Path, no_simulation: None
) -> None:
    args = ["sensitivity", str(QUICK), *PARAM, "--method", "sobol", "--samples", "1048576"]
    for force in ([], ["--force"]):
        assert _refused([*args, *force], tmp_path / "out") == (
            f"error: --samples: 3,145,728 points, {CAP}"
        )


def test_a_huge_vary_grid_is_refused_before_its_points_are_made(
    tmp_path: Path, no_simulation: None
) -> None:
    values = ",".join(str(n) for n in range(1, 401))
    args = ["sweep", str(QUICK), "--days", "2", "--force"]
    args += ["--vary", f"network.vans.total={values}", "--vary", f"hotline.max_attempts={values}"]
    assert _refused(args, tmp_path / "out") == f"error: --vary: 160,000 points, {CAP}"


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (
            "factors:\n"
            + "".join(
                f"  {path}: [{','.join(str(n) for n in range(1, 1001))}]\n"
                for path in ("network.vans.total", "hotline.max_attempts", "demand.calls_per_day")
            ),
            "2: factors: 1,000,000,000 points",
        ),
        (
            "factors:\n  hotline.redial_probability: {low: 0.1, high: 0.9}\n"
            "sample: {method: sobol, points: 1099511627776}\n",
            "4: sample.points: 1,099,511,627,776 points",
        ),
    ],
    ids=["grid-1e9", "sobol-2^40"],
)
def test_a_huge_sweep_file_design_is_refused_before_its_points_are_made(
    tmp_path: Path, body: str, line: str, no_simulation: None
) -> None:
    study = _write(tmp_path, f"base: {QUICK}\n{body}")
    assert _refused(["sweep", str(study), "--days", "2"], tmp_path / "out") == (
        f"error: {study}:{line}, {CAP}"
    )
    # The Python API refuses the same way (no MemoryError while the design is drawn).
    with pytest.raises(UserInputError) as caught:
        read_sweep_file(study).points(load_scenario(QUICK))
    assert str(caught.value) == f"{study}:{line}, {CAP}"


def test_a_sweep_file_larger_than_a_scenario_may_be_is_refused(
    tmp_path: Path, no_simulation: None
) -> None:
    text = f"base: {QUICK}\nfactors:\n  network.vans.total: [70, 140]\n"
    padding = "# " + "x" * 98 + "\n"
    study = _write(tmp_path, text + padding * 100_001)
    size = study.stat().st_size
    assert _refused(["sweep", str(study), "--days", "2"], tmp_path / "out") == (
        f"error: {study}: {size:,} bytes is too large for a sweep file (at most 10,000,000)"
    )


def test_a_vary_grid_too_long_to_run_is_refused_before_its_points_are_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_simulation: None
) -> None:
    import sim.experiments.runs.sweep as sweep_module
    import sim.experiments.runs.work_estimate as estimate

    cost = COST  # fixed costs per call: the estimate is the same on every machine
    monkeypatch.setattr(estimate, "measure_costs", lambda: cost)
    monkeypatch.setattr(estimate, "is_calibrated", lambda: True)
    monkeypatch.setenv("RESCUE_SIM_TIME_LIMIT", "60s")

    def no_points(*args: object, **kwargs: object) -> None:
        raise AssertionError("points were made")

    monkeypatch.setattr(sweep_module, "make_points", no_points)
    values = ",".join(str(n) for n in range(60, 2060))
    args = ["sweep", str(QUICK), "--days", "2", "--workers", "1"]
    args += ["--vary", f"network.vans.total={values}"]
    line = _refused(args, tmp_path / "out")
    assert line.startswith("error: --vary: about 1,560,000 calls (6000 replication(s) of 260)")
    assert "more than the 1.0 min limit (RESCUE_SIM_TIME_LIMIT)" in line


@pytest.fixture
def fixed_costs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fixed costs per call and limits: an estimate is the same on every machine."""
    import sim.experiments.runs.work_estimate as estimate

    monkeypatch.setattr(estimate, "measure_costs", lambda: COST)
    monkeypatch.setattr(estimate, "is_calibrated", lambda: True)
    monkeypatch.setenv("RESCUE_SIM_TIME_LIMIT", "1d")
    monkeypatch.setenv("RESCUE_SIM_MEMORY_LIMIT", "64G")


def test_optimise_past_the_time_limit_is_refused_before_stage_1(
    tmp_path: Path, fixed_costs: None, no_simulation: None
) -> None:
    args = ["optimise", str(QUICK), "--days", "3000", "--replications", "1000"]
    line = _refused(args, tmp_path / "out")
    assert line.startswith("error: --replications: about 12,480,000,000 calls (32000 repl")
    assert line.endswith("make the run smaller, or pass --force to run it anyway")
    # Set in a design spec instead, the spec's line is named.
    spec = _write(tmp_path, "days: 3000\nreplications: 1000\n", "spec.yaml")
    line = _refused(["optimise", str(QUICK), "--config", str(spec)], tmp_path / "out")
    assert line.startswith(f"error: {spec}:2: replications: about 12,480,000,000 calls")
    # --force lets it by: the search starts (and here meets no_simulation).
    result = runner.invoke(app, [*args, "--force", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "a simulation started" in result.stderr


def test_a_frontier_past_the_time_limit_is_refused_before_its_first_point(
    tmp_path: Path, fixed_costs: None, no_simulation: None
) -> None:
    # Three fleet sizes of optimise's work each (its search and a confirmation per point).
    args = ["frontier", str(QUICK), "--vans", "60..100:20", "--days", "3000"]
    args += ["--replications", "1000"]
    line = _refused(args, tmp_path / "out")
    assert line.startswith("error: --replications: about 36,")
    assert line.endswith("make the run smaller, or pass --force to run it anyway")
    result = runner.invoke(app, [*args, "--force", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "a simulation started" in result.stderr


def test_a_sweep_file_past_the_alias_limit_is_refused(tmp_path: Path, no_simulation: None) -> None:
    # Nested aliases ("billion laughs"): 8 ** 7 values once expanded, from a few lines.
    levels = ["  - &l0 [0, 0, 0, 0, 0, 0, 0, 0]"]
    for k in range(1, 7):
        levels.append(f"  - &l{k} [" + ", ".join([f"*l{k - 1}"] * 8) + "]")
    text = f"base: {QUICK}\ndescription:\n" + "\n".join(levels)
    study = _write(tmp_path, text + "\nfactors:\n  network.vans.total: [70, 140]\n")
    line = _refused(["sweep", str(study), "--days", "2"], tmp_path / "out")
    assert line == f"error: {study}: more than 1,000,000 values once YAML aliases are expanded"
    with pytest.raises(UserInputError) as caught:
        read_sweep_file(study)
    assert str(caught.value) == line.removeprefix("error: ")


# ------------------------------------------------------------------ item 7: what was given


@pytest.fixture
def one_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    """A time limit of a minute: 2 points of 3000 days (1.2 million calls) are past it."""
    monkeypatch.setenv("RESCUE_SIM_TIME_LIMIT", "60s")


SWEEP_BODY = "factors:\n  network.vans.total: [70, 140]\n"


def test_a_sweep_files_replications_past_the_limit_name_its_line(
    tmp_path: Path, no_simulation: None
) -> None:
    study = _write(tmp_path, f"base: {QUICK}\nreplications: 100000\n{SWEEP_BODY}")
    assert _refused(["sweep", str(study), "--days", "2"], tmp_path / "out") == (
        f"error: {study}:2: replications: must be at most 10,000"
    )


@pytest.mark.parametrize(
    "vary", ["horizon.days=2,3000", "demand.calls_per_day=130,10000000"], ids=["days", "calls"]
)
def test_work_made_large_by_a_vary_value_names_vary(
    tmp_path: Path, vary: str, fixed_costs: None, no_simulation: None, one_minute: None
) -> None:
    # Not --days (given, but swept), nor the base scenario's line of the swept field.
    args = ["sweep", str(QUICK), "--days", "2", "--replications", "3", "--vary", vary]
    line = _refused(args, tmp_path / "out")
    assert line.startswith("error: --vary: about "), line
    assert line.endswith("make the run smaller, or pass --force to run it anyway")


def test_work_made_large_by_a_sweep_files_factor_names_its_line(
    tmp_path: Path, fixed_costs: None, no_simulation: None, one_minute: None
) -> None:
    study = _write(
        tmp_path, f"base: {QUICK}\nreplications: 3\n{SWEEP_BODY}  horizon.days: [2, 3000]\n"
    )
    line = _refused(["sweep", str(study), "--days", "2"], tmp_path / "out")
    assert line.startswith(f"error: {study}:5: factors.horizon.days: about "), line


def test_fit_demand_names_the_trace_row_of_a_time_past_any_horizon(tmp_path: Path) -> None:
    trace = _write(tmp_path, "t_call_h,lat,lon\n1.0,34.7,113.6\n1e308,34.8,113.7\n", "t.csv")
    assert _refused(["fit-demand", str(trace)], tmp_path / "demand.yaml") == (
        f"error: {trace}:3: t_call_h: past hour 87840 of day 0 (3660 days): '1e308'"
    )
    for days, line in [("nan", "must be positive"), ("inf", "must be at most 3,660")]:
        args = ["fit-demand", str(trace), "--days", days]
        assert _refused(args, tmp_path / "demand.yaml") == f"error: --days: {line}"
