"""Bad scenario input ends with exit code 2 and ONE line naming file, line and field.

docs/architecture.md, principle 11: "Bad user input ends with one line naming file, line
and field, and exit code 2; never a traceback". Every case writes its YAML here, so the
expected 1-based line is known; ``_check_case_text`` guards against a miscounted line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quick.yaml"

runner = CliRunner()


def _write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def _one_error_line(stdout: str, stderr: str) -> str:
    """The single ``error:`` line of a failed command; nothing else may be printed."""
    assert "Traceback" not in stdout + stderr
    assert stdout == "", f"unexpected stdout: {stdout!r}"
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {stderr!r}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def _validate(path: Path | str) -> str:
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    return _one_error_line(result.stdout, result.stderr)


def _expect_location(message: str, path: Path | str, line: int | None, field: str | None) -> None:
    where = f"{path}:{line}: " if line is not None else f"{path}: "
    prefix = f"error: {where}" + (f"{field}: " if field else "")
    assert message.startswith(prefix), f"{message!r} does not start with {prefix!r}"


def _check_case_text(text: str, line: int, field: str | None) -> None:
    """The expected line really holds the field's last key (guards the test itself)."""
    if field is None:
        return
    key = field.rsplit(".", 1)[-1].split("[")[0]
    lines = textwrap.dedent(text).lstrip("\n").splitlines()
    holder = lines[line - 1]
    # A list item's own field may sit on the "- " line of that item.
    assert key in holder or holder.lstrip().startswith("- "), (line, holder, key)


# (id, YAML, 1-based line, dotted field, fragment of the message)
CASES = [
    (
        "yaml_syntax",
        """
        name: broken
        horizon:
          days: 5: 6
        seed: 3
        """,
        3,
        None,
        "YAML syntax",
    ),
    (
        "impossible_date",
        """
        name: calendar
        horizon:
          days: 5
          start_date: 2021-02-30
        """,
        4,
        None,
        "YAML value: day is out of range for month",
    ),
    (
        "not_a_date",
        """
        name: calendar
        horizon:
          days: 5
          start_date: next monday
        """,
        4,
        "horizon.start_date",
        "valid date",
    ),
    (
        "unknown_key_top_level",
        """
        name: typo
        seed: 4
        replicatoins: 3
        """,
        3,
        "replicatoins",
        "unknown field",
    ),
    (
        "unknown_key_nested",
        """
        name: typo
        hotline:
          max_attempts: 3
          agentz: 4
        """,
        4,
        "hotline.agentz",
        "unknown field",
    ),
    (
        "wrong_type",
        """
        name: wrong
        seed: 4
        replications: many
        """,
        3,
        "replications",
        "valid integer",
    ),
    (
        "negative_rate",
        """
        name: negative
        horizon:
          days: 3
        demand:
          calls_per_day: -5
        """,
        5,
        "demand.calls_per_day",
        "greater than 0",
    ),
    (
        "fault_shares_not_one",
        """
        name: shares
        demand:
          calls_per_day: 100
          fault_classes:
            - name: routine
              share: 0.5
              on_site_fix_probability: 0.9
              repair_time_min: {dist: fixed, value: 30}
            - name: general
              share: 0.3
              on_site_fix_probability: 0.9
              repair_time_min: {dist: fixed, value: 60}
        promises:
          repair:
            routine: {hours: 4, from: arrival}
            general: {hours: 24, from: call}
        """,
        4,
        "demand.fault_classes",
        "shares must sum to 1",
    ),
    (
        "segment_shares_not_one",
        """
        name: shares
        demand:
          calls_per_day: 100
          segments:
            - {name: individual, share: 0.5}
            - {name: fleet, share: 0.4}
        """,
        4,
        "demand.segments",
        "shares must sum to 1",
    ),
    (
        "list_item_field",
        """
        name: item
        demand:
          calls_per_day: 100
          segments:
            - name: individual
              share: 0.5
            - name: fleet
              share: 1.5
        """,
        8,
        "demand.segments[1].share",
        "less than or equal to 1",
    ),
    (
        "unknown_distribution_family",
        """
        name: dist
        hotline:
          redial_probability: 0.5
          handling_time_min: {dist: weibull, shape: 2, scale: 6}
        """,
        4,
        "hotline.handling_time_min",
        "unknown distribution family 'weibull'",
    ),
    (
        "distribution_parameter",
        """
        name: dist
        hotline:
          handling_time_min:
            dist: lognormal
            mean: -1
            cv: 0.5
        """,
        5,
        "hotline.handling_time_min.mean",
        "greater than 0",
    ),
    (
        "stations_csv_missing",
        """
        name: csv
        network:
          stations:
            csv: nope.csv
        """,
        4,
        "network.stations.csv",
        "nope.csv",
    ),
    (
        "zero_vans",
        """
        name: vans
        network:
          vans:
            total: 0
        """,
        4,
        "network.vans.total",
        "greater than 0",
    ),
    (
        "unknown_policy",
        """
        name: policy
        seed: 1
        dispatch:
          policy: nearest_statoin
        """,
        4,
        "dispatch.policy",
        "unknown policy 'nearest_statoin'",
    ),
    (
        "policy_module_missing",
        """
        name: policy
        dispatch:
          policy: no_such_module_xyz:MyPolicy
        """,
        3,
        "dispatch.policy",
        "cannot import policy module 'no_such_module_xyz'",
    ),
    (
        "policy_name_missing_in_module",
        """
        name: policy
        dispatch:
          candidates: 4
          policy: sim.model.dispatch:NoSuchPolicy
        """,
        4,
        "dispatch.policy",
        "is not a DispatchPolicy subclass",
    ),
    (
        "policy_not_a_policy",
        """
        name: policy
        dispatch:
          policy: sim.model.scenario:Scenario
        """,
        3,
        "dispatch.policy",
        "is not a DispatchPolicy subclass",
    ),
    (
        "hotline_not_24h",
        """
        name: hotline
        hotline:
          max_attempts: 2
          shifts:
            - {start_h: 8, end_h: 20, agents: 3}
        """,
        4,
        "hotline.shifts",
        "staffed 24 h",
    ),
]


CASE_TEXT = {case[0]: case[1] for case in CASES}


@pytest.mark.parametrize(
    ("text", "line", "field", "fragment"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_scenario_is_one_line(
    tmp_path: Path, text: str, line: int, field: str | None, fragment: str
) -> None:
    _check_case_text(text, line, field)
    path = _write(tmp_path, text)
    message = _validate(path)
    _expect_location(message, path, line, field)
    assert fragment in message


def test_missing_scenario_file(tmp_path: Path) -> None:
    path = tmp_path / "no_such_scenario.yaml"
    message = _validate(path)
    _expect_location(message, path, None, None)
    assert "not found" in message


def test_warmup_not_shorter_than_days(tmp_path: Path) -> None:
    text = """
    name: warmup
    horizon:
      days: 5
      warmup_days: 5
    """
    path = _write(tmp_path, text)
    message = _validate(path)
    assert message.startswith((f"error: {path}:2: horizon: ", f"error: {path}:4: horizon."))
    assert "warmup_days must be shorter than days" in message


def test_warmup_error_names_the_warmup_field(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        name: warmup
        horizon:
          days: 5
          warmup_days: 5
        """,
    )
    _expect_location(_validate(path), path, 4, "horizon.warmup_days")


def test_unknown_province_is_one_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        name: province
        geography:
          provinces: [河南]
        """,
    )
    message = _validate(path)
    assert message.startswith(f"error: {path}")
    assert "geography" in message


def test_unknown_province_names_line_and_field(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        name: province
        geography:
          provinces: [河南]
        """,
    )
    _expect_location(_validate(path), path, 3, "geography.provinces[0]")


def test_one_unknown_province_among_known_ones_is_an_error(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        name: province
        geography:
          provinces: [河南省, 河北]
        """,
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    message = _one_error_line(result.stdout, result.stderr)
    assert "河北" in message


def test_network_build_error_names_the_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        name: too_few
        geography:
          provinces: [河南省]
        network:
          stations:
            generate:
              count: 5
              coverage_target: 1.0
        """,
    )
    message = _validate(path)
    _expect_location(message, path, 7, "network.stations.generate.count")


# --------------------------------------------------------------------------- rich markup


def test_path_with_brackets_is_printed_verbatim(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\nfoo: 1\n", name="[draft]/scenario.yaml")
    _expect_location(_validate(path), path, 2, "foo")


def test_markup_like_value_does_not_crash(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\nhotline:\n  handling_time_min: {dist: '[/b]'}\n")
    message = _validate(path)
    _expect_location(message, path, 3, "hotline.handling_time_min")


# --------------------------------------------------------------------------- run command


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("name: bad\nhotline:\n  agentz: 3\n", id="validation_error"),
        pytest.param(
            "name: bad\ngeography:\n  provinces: [河南省]\nnetwork:\n  stations:\n"
            "    generate: {count: 3, coverage_target: 1.0}\n",
            id="network_error",
        ),
    ],
)
def test_run_with_bad_scenario_writes_nothing(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    out_dir = tmp_path / "run_out"
    result = runner.invoke(app, ["run", str(path), "--out", str(out_dir)])
    assert result.exit_code == 2, result.output
    message = _one_error_line(result.stdout, result.stderr)
    assert message.startswith(f"error: {path}")
    assert not out_dir.exists()


def test_run_with_unknown_policy_option(tmp_path: Path) -> None:
    out_dir = tmp_path / "run_out"
    result = runner.invoke(app, ["run", "--policy", "nope", str(QUICK), "--out", str(out_dir)])
    assert result.exit_code == 2, result.output
    message = _one_error_line(result.stdout, result.stderr)
    assert "unknown policy 'nope'" in message
    assert "nearest_station" in message  # the known names are listed
    assert not out_dir.exists()


# --------------------------------------------------------------------------- subprocess


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        pytest.param(CASE_TEXT["yaml_syntax"], 3, None, id="yaml_syntax"),
        pytest.param(
            CASE_TEXT["fault_shares_not_one"], 4, "demand.fault_classes", id="fault_shares"
        ),
        pytest.param(
            CASE_TEXT["policy_module_missing"], 3, "dispatch.policy", id="policy_module_missing"
        ),
        pytest.param(None, None, None, id="missing_file"),
    ],
)
def test_validate_in_subprocess(
    tmp_path: Path, text: str | None, line: int | None, field: str | None
) -> None:
    path = _write(tmp_path, text) if text is not None else tmp_path / "absent.yaml"
    env = {**os.environ, "COLUMNS": "40"}  # a narrow terminal must not wrap the line
    proc = subprocess.run(
        [sys.executable, "-m", "sim", "validate", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    message = _one_error_line(proc.stdout, proc.stderr)
    _expect_location(message, path, line, field)
