"""Property: a sweep file, or the options of optimise, calibrate and sensitivity, drawn
from mutations and odd values, are accepted or refused in one line (issue 27).

The same draws on every machine (the ``repeatable`` profile of tests/conftest.py). What
is checked is every check made before the first run: an accepted command reaches its
first simulation, which raises :class:`Accepted` here instead of running (a real run of
each would take minutes; tests/test_input_fuzz.py runs mutated scenarios for real). Every
other outcome is exit 0, or exit 2 with one ``error:`` line, no traceback.
The work estimate uses fixed costs per call, so that what it refuses is the same
everywhere.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_checks import QUICK, one_error_line
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_input_fuzz import _byte_mutation, yaml_mutation
from test_work_estimate import COST
from typer.testing import CliRunner

import sim.experiments.runs.executor as engine_module
import sim.experiments.runs.work_estimate as estimate
from sim.cli.app import main

pytestmark = pytest.mark.slow  # some 50 s: 330 commands

runner = CliRunner()
LIMITS = {"RESCUE_SIM_TIME_LIMIT": "20s", "RESCUE_SIM_MEMORY_LIMIT": "1G"}


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


class Accepted(Exception):
    """Raised where the first simulation would start: every check has passed."""


@pytest.fixture(scope="module")
def accepting() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:

        def accepted(*args: object, **kwargs: object) -> None:
            raise Accepted("every check passed")

        patch.setattr(engine_module.Experiment, "execute", accepted)
        patch.setattr(estimate, "measure_costs", lambda: COST)
        patch.setattr(estimate, "is_calibrated", lambda: True)
        yield


def _main(args: list[str]) -> tuple[int, str, str]:
    """``rescue-sim ARGS`` in this process through the console script's entry point
    (which makes a usage error, a value of the wrong type, one line too)."""
    with runner.isolation(env=LIMITS) as (stdout, stderr, _):
        argv, sys.argv = sys.argv, ["rescue-sim", *args]
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.argv = argv
        return code, stdout.getvalue().decode(), stderr.getvalue().decode()


def _outcome(args: list[str]) -> str:
    """``accepted``, ``ran`` or ``refused``; anything else fails the property."""
    code, stdout, stderr = _main(args)
    detail = f"{args}: exit {code}\n{stderr}"
    if code == 1 and "internal error: Accepted: every check passed" in stderr:
        return "accepted"
    assert code in (0, 2), detail
    assert "Traceback" not in stdout + stderr, detail
    if code == 2:
        event(one_error_line(stdout, stderr).split(":")[1])
        return "refused"
    return "ran"


# --------------------------------------------------------------------------- sweep files

SWEEP_FILE = textwrap.dedent(
    f"""\
    base: {QUICK}
    replications: 2
    policies: [nearest_station, nearest_idle_van]
    factors:
      network.vans.total: [70, 140]
      hotline.redial_probability: {{low: 0.2, high: 0.8}}
      hotline.shifts[1].agents: {{low: 2, high: 6, integer: true}}
    sample:
      method: sobol
      points: 4
      seed: 1
    """
)


@st.composite
def mutated_sweep_file(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 4)) == 0:
        return _byte_mutation(draw, SWEEP_FILE.encode("utf-8"))
    return str(draw(yaml_mutation(SWEEP_FILE))).encode("utf-8")


@_settings(150)
@given(data=mutated_sweep_file(), policy=st.sampled_from([None, "nearest_station"]))
def test_mutated_sweep_files(
    tmp_path: Path, accepting: None, data: bytes, policy: str | None
) -> None:
    study = tmp_path / "study.yaml"
    study.write_bytes(data)
    args = ["sweep", str(study), "--days", "1.05"]
    outcome = _outcome([*args, *(["--policy", policy] if policy else [])])
    # The first simulation is a sentinel: a file gets past every check or is refused.
    assert outcome in ("accepted", "refused")
    event(outcome)


# --------------------------------------------------------------------------- options

# Values as a user might type them: good, out of range, not numbers, not finite.
NUMBERS = ["0", "1", "2", "-1", "3000", "1e308", "nan", "inf", "x", ""]
KPIS = ["on_time_arrival_rate", "response_p90_h", "van_utilisation", "speed", ""]
BOUNDS = ["0.9", "1.5", "-0.2", "nan", "1e308", "x", ""]
PARAMS = [
    "hotline.redial_probability=0.2..0.8",
    "network.vans.total=70..140",
    "hotline.redial_probability=0.8..0.2",
    "hotline.redial_probability=0.2..1.5",
    "network.vans.total=x..y",
    "nosuch.field=1..2",
    "hotline.redial_probability",
    "demand.calls_per_day=100..1e9",
]


def _options(draw: st.DrawFn, choices: dict[str, list[str]]) -> list[str]:
    """Each option given or not (mostly not: one bad value refuses the whole command),
    with its first value (a good one) half the time, else any of its list."""
    args: list[str] = []
    for option, values in choices.items():
        if draw(st.integers(0, 3)) == 0:
            good = draw(st.booleans())
            args += [option, values[0] if good else draw(st.sampled_from(values))]
    return args


def _kpi_bound(draw: st.DrawFn, signs: list[str]) -> str:
    return (
        draw(st.sampled_from(KPIS)) + draw(st.sampled_from(signs)) + draw(st.sampled_from(BOUNDS))
    )


@st.composite
def optimise_options(draw: st.DrawFn) -> list[str]:
    args = ["--days", "1.05" if draw(st.booleans()) else draw(st.sampled_from(NUMBERS))]
    args += _options(
        draw,
        {
            "--replications": ["2", *NUMBERS],
            "--seed": NUMBERS,
            "--budget": ["2", *NUMBERS],
            "--time-limit": ["1", *NUMBERS],
            "--max-stations": ["60", "10", *NUMBERS],
            "--max-vans": ["110", *NUMBERS],
            "--maximise": KPIS,
            "--minimise": ["vans", *KPIS],
            "--moves": ["vans", "vans,open", "teleport", "", "vans,,close"],
            "--stations": ["keep", "mclp", "p_median", "x"],
            "--fixed": ["all", "nowhere"],
            "--confirm-seed": ["5", *NUMBERS],
        },
    )
    for _ in range(draw(st.integers(0, 2))):
        args += ["--require", _kpi_bound(draw, [">=", ">=", "<=", "=", ">"])]
    return args


@st.composite
def calibrate_options(draw: st.DrawFn) -> list[str]:
    args = ["--days", "1.05" if draw(st.booleans()) else draw(st.sampled_from(NUMBERS))]
    for good in PARAMS[: draw(st.integers(1, 2))]:  # two good ones are two fields
        args += ["--param", good if draw(st.booleans()) else draw(st.sampled_from(PARAMS))]
    for _ in range(draw(st.integers(1, 2))):
        se = draw(st.sampled_from(["", "+-0.01", "+-0", "+--1", "+-nan", "+-x"]))
        odd = _kpi_bound(draw, ["=", ">="]) + se
        args += ["--target", "on_time_arrival_rate=0.9" if draw(st.integers(0, 2)) else odd]
    return args + _options(
        draw, {"--replications": ["2", *NUMBERS], "--max-points": ["5", *NUMBERS]}
    )


@st.composite
def sensitivity_options(draw: st.DrawFn) -> list[str]:
    args = ["--days", "1.05" if draw(st.booleans()) else draw(st.sampled_from(NUMBERS))]
    for good in PARAMS[: draw(st.integers(1, 2))]:  # two good ones are two fields
        args += ["--param", good if draw(st.booleans()) else draw(st.sampled_from(PARAMS))]
    return args + _options(
        draw,
        {
            "--method": ["morris", "sobol", "x"],
            "--trajectories": ["2", "10", *NUMBERS],
            "--samples": ["16", "64", "3", "1048576", *NUMBERS],
            "--replications": ["2", *NUMBERS],
            "--kpi": KPIS,
        },
    )


@_settings(60)
@given(args=optimise_options())
def test_optimise_options(tmp_path: Path, accepting: None, args: list[str]) -> None:
    outcome = _outcome(["optimise", str(QUICK), *args, "--out", str(tmp_path / "o"), "--overwrite"])
    assert outcome in ("accepted", "refused")  # the first simulation is a sentinel
    event(outcome)


@_settings(60)
@given(args=calibrate_options())
def test_calibrate_options(tmp_path: Path, accepting: None, args: list[str]) -> None:
    outcome = _outcome(["calibrate", str(QUICK), *args])
    assert outcome in ("accepted", "refused")  # the first simulation is a sentinel
    event(outcome)


@_settings(60)
@given(args=sensitivity_options())
def test_sensitivity_options(tmp_path: Path, accepting: None, args: list[str]) -> None:
    outcome = _outcome(["sensitivity", str(QUICK), *args])
    assert outcome in ("accepted", "refused")  # the first simulation is a sentinel
    event(outcome)
