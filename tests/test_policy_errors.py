"""A planner's policy that raises: one line naming the policy, the call and the exception.

Issue 13: a custom policy raising in ``__init__`` or during dispatch gave a raw traceback
naming neither the policy nor the call. Now it is exit code 2 and one line; ``--debug``
(or ``RESCUE_SIM_DEBUG=1``) prints the traceback first, the policy's own frame in it.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from cli_checks import QUICK, one_error_line, without_progress
from typer.testing import CliRunner

from sim import load_scenario, run
from sim.cli import app
from sim.errors import PolicyFailure

runner = CliRunner()
SMALL = ["--days", "2", "--replications", "1"]

POLICIES = """
from sim.model.dispatch.policies import NearestStation


class BoomAssign(NearestStation):
    name = "boom_assign"

    def assign(self, order, view):
        raise ValueError(f"no station for call {order.call}")


class BoomInit(NearestStation):
    name = "boom_init"

    def __init__(self, **options):
        raise RuntimeError("cannot start")


class BoomNext(NearestStation):
    name = "boom_next"

    def next_order(self, van, view):
        raise KeyError("queue gone")


class BoomSetup(NearestStation):
    name = "boom_setup"

    def setup(self, view):
        raise ZeroDivisionError("no vans to divide")


class Fussy(NearestStation):
    name = "fussy"

    def __init__(self, reserve: int = 1):
        super().__init__()
        if reserve < 0:
            raise ValueError("reserve must not be negative")
"""


@pytest.fixture
def policies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module of failing policies, importable here and in worker processes."""
    (tmp_path / "failing_policies.py").write_text(POLICIES, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))  # workers start with the parent's sys.path
    return "failing_policies"


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["run", str(QUICK), *SMALL, *args], env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_raises_in_assign(policies: str, workers: str) -> None:
    # Two replications, so that two workers really run them.
    args = ("--policy", f"{policies}:BoomAssign", "--workers", workers, "--replications", "2")
    code, stdout, stderr = _run(*args)
    assert code == 2, stderr
    message = one_error_line(stdout, stderr)
    found = re.fullmatch(
        rf"error: policy '{policies}:BoomAssign' raised in assign\(\) on call (\d+) "
        r"\(replication 0\): ValueError: no station for call (\d+) "
        r"\(--debug shows the traceback\)",
        message,
    )
    assert found, message
    assert found.group(1) == found.group(2)  # the call named is the one the policy saw


def test_raises_in_init(policies: str) -> None:
    code, stdout, stderr = _run("--policy", f"{policies}:BoomInit")
    assert code == 2, stderr
    assert one_error_line(stdout, stderr) == (
        f"error: policy '{policies}:BoomInit' could not be made: RuntimeError: cannot start "
        "(--debug shows the traceback)"
    )


def test_raises_in_next_order(policies: str) -> None:
    code, stdout, stderr = _run("--policy", f"{policies}:BoomNext")
    assert code == 2, stderr
    message = one_error_line(stdout, stderr)
    assert re.fullmatch(
        rf"error: policy '{policies}:BoomNext' raised in next_order\(\) for van \d+"
        r"(, free after call \d+)? \(replication 0\): KeyError: 'queue gone' "
        r"\(--debug shows the traceback\)",
        message,
    ), message


def test_raises_in_setup(policies: str) -> None:
    code, stdout, stderr = _run("--policy", f"{policies}:BoomSetup")
    assert code == 2, stderr
    assert one_error_line(stdout, stderr) == (
        f"error: policy '{policies}:BoomSetup' raised in setup() (replication 0): "
        "ZeroDivisionError: no vans to divide (--debug shows the traceback)"
    )


def test_bad_options_name_the_scenario_line(policies: str, tmp_path: Path) -> None:
    scenario = tmp_path / "fussy.yaml"
    scenario.write_text(
        textwrap.dedent(
            f"""\
            name: fussy
            dispatch:
              policy: {policies}:Fussy
              options: {{reserve: -1}}
            """
        ),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["run", str(scenario), *SMALL])
    assert result.exit_code == 2, result.output
    assert one_error_line(result.stdout, result.stderr) == (
        f"error: {scenario}:4: dispatch.options: policy '{policies}:Fussy' could not be made "
        "with options {'reserve': -1}: ValueError: reserve must not be negative "
        "(--debug shows the traceback)"
    )


@pytest.mark.parametrize(
    ("flag", "env"),
    [(["--debug"], None), ([], {"RESCUE_SIM_DEBUG": "1"})],
    ids=["--debug", "RESCUE_SIM_DEBUG"],
)
def test_debug_shows_the_policys_traceback(
    policies: str, flag: list[str], env: dict[str, str] | None
) -> None:
    result = runner.invoke(
        app, [*flag, "run", str(QUICK), *SMALL, "--policy", f"{policies}:BoomAssign"], env=env
    )
    assert result.exit_code == 2, result.output
    lines = without_progress(result.stderr)  # a progress line may come first on a busy machine
    assert lines[0] == "Traceback (most recent call last):"
    assert re.search(r'failing_policies\.py", line \d+, in assign', result.stderr)
    assert lines[-1].startswith(f"error: policy '{policies}:BoomAssign' raised in assign()")
    assert not lines[-1].endswith("(--debug shows the traceback)")


def test_python_api_raises_policy_failure(policies: str) -> None:
    import failing_policies

    scenario = load_scenario(QUICK).with_overrides(horizon={"days": 1, "warmup_days": 0.1})
    with pytest.raises(PolicyFailure) as info:
        run(scenario, replications=1, policy=failing_policies.BoomAssign)
    assert "failing_policies:BoomAssign' raised in assign() on call" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)
