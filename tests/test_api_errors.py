"""The Python API: the project's own errors with the CLI's messages; workers from a script.

Issue 13: ``run(scenario, replications=0)`` raised a KeyError, and the README's snippet
(``run(..., workers=2)``) crashed when saved as a plain script, because the worker
processes ran the script again.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_checks import QUICK, one_error_line, subprocess_env
from typer.testing import CliRunner

from sim import PolicyError, Scenario, UserInputError, load_scenario, run
from sim.cli import app
from sim.errors import OutputError
from sim.experiments.runs.compare import compare
from sim.outputs.run_folder import write_run

runner = CliRunner()


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario(QUICK).with_overrides(horizon={"days": 1, "warmup_days": 0.1})


@pytest.mark.parametrize(
    ("kwargs", "cli", "message"),
    [
        ({"replications": 0}, ["--replications", "0"], "must be at least 1"),
        ({"workers": 0}, ["--workers", "0"], "must be at least 1"),
        ({"replications": 20_000}, ["--replications", "20000"], "must be at most 10,000"),
        ({"policy": "nope"}, ["--policy", "nope"], "unknown policy 'nope'; known: "),
    ],
)
def test_same_message_as_the_cli(
    scenario: Scenario, kwargs: dict[str, object], cli: list[str], message: str
) -> None:
    (name,) = kwargs
    with pytest.raises(UserInputError) as info:
        run(scenario, **kwargs)  # type: ignore[arg-type]
    assert str(info.value).startswith(f"{name}: {message}")
    result = runner.invoke(app, ["run", str(QUICK), "--days", "2", *cli])
    assert result.exit_code == 2, result.output
    line = one_error_line(result.stdout, result.stderr)
    assert line.startswith(f"error: --{name}: {message}")
    assert line.removeprefix("error: --") == str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"replications": 1.5}, "replications: must be a whole number, got 1.5"),
        ({"workers": "2"}, "workers: must be a whole number, got '2'"),
        ({"replications": True}, "replications: must be a whole number, got True"),
        ({"policy": 3}, "policy: expected a policy name or class, got int"),
        ({"policy": dict}, "policy: dict is not a DispatchPolicy subclass"),
    ],
)
def test_wrong_types_are_named(
    scenario: Scenario, kwargs: dict[str, object], expected: str
) -> None:
    with pytest.raises(UserInputError) as info:
        run(scenario, **kwargs)  # type: ignore[arg-type]
    assert str(info.value) == expected


def test_a_path_instead_of_a_scenario() -> None:
    with pytest.raises(UserInputError) as info:
        run(str(QUICK))  # type: ignore[arg-type]
    assert str(info.value) == (
        "scenario: expected a Scenario, got str (load it with sim.load_scenario)"
    )


def test_policy_errors_are_policy_errors(scenario: Scenario) -> None:
    with pytest.raises(PolicyError):
        run(scenario, policy="no_such_module_xyz:Policy")


def test_compare_without_policies(scenario: Scenario) -> None:
    with pytest.raises(UserInputError) as info:
        compare(scenario, [])
    assert str(info.value) == "policies: name at least one policy"


def test_write_run_to_a_file(scenario: Scenario, tmp_path: Path) -> None:
    result = run(scenario, replications=1)
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(OutputError) as info:
        write_run(result, target)
    assert str(info.value) == f"out_dir: {target} is a file, not a folder"
    folder = write_run(result, tmp_path / "run")
    with pytest.raises(OutputError):
        write_run(result, folder)  # holds a run: refused unless overwrite
    write_run(result, folder, overwrite=True)


README_SNIPPET = """\
from sim import load_scenario, run

scenario = load_scenario({quick!r}).with_overrides(horizon={{"days": 1, "warmup_days": 0.1}})
result = run(scenario, replications=2, workers=2)
print("on time", round(result.summary.loc["on_time_arrival_rate", "mean"], 4))
"""


def _script(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "study.py"
    path.write_text(text, encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=subprocess_env(),
        timeout=600,
    )


def test_readme_snippet_as_a_plain_script(tmp_path: Path) -> None:
    proc = _script(tmp_path, README_SNIPPET.format(quick=str(QUICK)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("on time 0.")
    assert proc.stdout.count("on time") == 1  # the workers did not run the script again
    serial = run(
        load_scenario(QUICK).with_overrides(horizon={"days": 1, "warmup_days": 0.1}),
        replications=2,
    )
    expected = round(float(serial.summary["mean"]["on_time_arrival_rate"]), 4)
    assert proc.stdout.strip() == f"on time {expected}"


SCRIPT_POLICY = """\
from sim import load_scenario, run
from sim.model.dispatch.policies import NearestStation


class Mine(NearestStation):
    name = "mine"


def main():
    scenario = load_scenario({quick!r}).with_overrides(
        horizon={{"days": 1, "warmup_days": 0.1}}
    )
    result = run(scenario, replications=2, workers=2, policy=Mine)
    print("ran", result.policy)


{call}
"""


def _forks() -> bool:
    """Whether the local engine forks its workers (Linux): they inherit the script."""
    from sim.experiments.runs.executor import _start_method

    return _start_method() == "fork"


def test_policy_class_in_a_guarded_script(tmp_path: Path) -> None:
    text = SCRIPT_POLICY.format(quick=str(QUICK), call='if __name__ == "__main__":\n    main()')
    proc = _script(tmp_path, text)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ran mine\n"


@pytest.mark.skipif(
    not _forks(), reason="local workers are forked here: the script's class is theirs too"
)
def test_policy_class_in_an_unguarded_script_works_in_forked_workers(tmp_path: Path) -> None:
    proc = _script(tmp_path, SCRIPT_POLICY.format(quick=str(QUICK), call="main()"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ran mine\n"


@pytest.mark.skipif(_forks(), reason="local workers are forked here (see the test above)")
def test_policy_class_in_an_unguarded_script_names_the_fix(tmp_path: Path) -> None:
    proc = _script(tmp_path, SCRIPT_POLICY.format(quick=str(QUICK), call="main()"))
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("sim.errors.UserInputError: workers: worker processes could not start")
    assert 'if __name__ == "__main__":' in last
    assert "ran" not in proc.stdout


# Issue 27: wrong types and values given to the Python API raised TypeError, KeyError,
# AttributeError or ValueError; now the project's errors, with the command line's words.
def _api_cases(scenario: Scenario) -> dict[str, tuple[Callable[[], object], str]]:
    from sim.experiments.runs.precision import PrecisionTarget
    from sim.experiments.runs.run import run_all, run_jobs
    from sim.experiments.runs.sweep import Parameter, sweep

    target = [PrecisionTarget("on_time_arrival_rate", 0.01)]
    vans = [Parameter("network.vans.total", (70,))]
    return {
        "sweep-text": (
            lambda: sweep(scenario, "network.vans.total=70"),  # type: ignore[arg-type]
            "parameters: expected a list of Parameter(path, values) or PATH=V1,V2 texts, got str",
        ),
        "sweep-base": (
            lambda: sweep(str(QUICK), vans),  # type: ignore[arg-type]
            "base: expected a Scenario, got str (load it with sim.load_scenario)",
        ),
        "sweep-values": (
            lambda: sweep(scenario, [Parameter("network.vans.total", 70)]),  # type: ignore[arg-type]
            "parameters[0]: expected Parameter(path, values): a dotted path and a list of values",
        ),
        "precision-kpi": (
            lambda: run(scenario, precision=[PrecisionTarget("speed", 0.01)]),
            "precision: unknown KPI 'speed'; known: ",
        ),
        "precision-type": (
            lambda: run(scenario, precision=0.01),
            "precision: expected PrecisionTarget values or KPI=HALFWIDTH texts, got float",
        ),
        "max-replications-0": (
            lambda: run(scenario, precision=target, max_replications=0),
            "max_replications: must be at least 1",
        ),
        "max-replications-below": (
            lambda: run(scenario, replications=5, precision=target, max_replications=3),
            "max_replications: must be at least the replications to start with (5)",
        ),
        "store-type": (
            lambda: run(scenario, store=3),
            "store: expected a ResultStore or its folder, got int",
        ),
        "store-file": (
            lambda: run(scenario, store=QUICK),
            f"store: {QUICK} is a file: a result store is a folder",
        ),
        "engine-name": (
            lambda: run(scenario, engine="spark"),
            "engine: unknown engine 'spark'; known: local, dask",
        ),
        "engine-type": (
            lambda: run(scenario, engine=3),
            "engine: expected an engine or its name (local, dask), got int",
        ),
        "run-all-pairs": (
            lambda: run_all([scenario], 2),  # type: ignore[list-item]
            "runs[0]: expected a (scenario, policy) pair, got Scenario",
        ),
        "run-jobs-replication": (
            lambda: run_jobs([(scenario, -1, None)]),
            "jobs[0]: must be at least 0",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "sweep-text", "sweep-base", "sweep-values", "precision-kpi", "precision-type",
        "max-replications-0", "max-replications-below", "store-type", "store-file",
        "engine-name", "engine-type", "run-all-pairs", "run-jobs-replication",
    ],
)  # fmt: skip
def test_wrong_arguments_raise_the_projects_errors(scenario: Scenario, case: str) -> None:
    call, expected = _api_cases(scenario)[case]
    with pytest.raises(UserInputError) as info:
        call()
    assert str(info.value).startswith(expected), str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "cli"),
    [
        ({"precision": ["speed=0.01"]}, ["--precision", "speed=0.01"]),
        (
            {"replications": 5, "precision": ["on_time_arrival_rate=0.01"], "max_replications": 3},
            ["--replications", "5", "--precision", "on_time_arrival_rate=0.01",
             "--max-replications", "3"],
        ),
        ({"engine": "spark"}, ["--engine", "spark"]),
    ],
    ids=["precision", "max-replications", "engine"],
)  # fmt: skip
def test_the_api_and_the_cli_say_the_same(
    scenario: Scenario, kwargs: dict[str, Any], cli: list[str]
) -> None:
    with pytest.raises(UserInputError) as info:
        run(scenario, **kwargs)
    result = runner.invoke(app, ["run", str(QUICK), "--days", "2", *cli])
    assert result.exit_code == 2, result.output
    line = one_error_line(result.stdout, result.stderr)
    assert info.value.message in line
    assert line == f"error: --{info.value.field.replace('_', '-')}: {info.value.message}"
