"""Bad input found by issue 13: one line naming file, line (or CSV row) and field, exit 2.

An empty scenario, a binary or non-UTF-8 file, YAML aliases that expand without end,
sizes no network has (days: 100000, calls_per_day: 1e9, a station count of 1e8), a
station CSV with a repeated id, and options the CLI refuses. Nothing is written.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_checks import QUICK, one_error_line, subprocess_env, tree
from typer.testing import CliRunner

import sim.experiments.runs.executor as engine_module
from sim.cli import app
from sim.model.schema import MAX_SCENARIO_BYTES

runner = CliRunner()


def _write(tmp_path: Path, data: str | bytes, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        data = textwrap.dedent(data).lstrip("\n").encode("utf-8")
    path.write_bytes(data)
    return path


def _refused(args: list[str], env: dict[str, str] | None = None) -> str:
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    return one_error_line(result.stdout, result.stderr)


@pytest.fixture
def no_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("a simulation started")

    monkeypatch.setattr(engine_module.Experiment, "execute", fail)


# --------------------------------------------------------------------------- scenario files


@pytest.mark.parametrize("text", ["", "\n\n", "# a comment only\n", "---\n"])
def test_empty_scenario_is_refused(tmp_path: Path, text: str, no_simulation: None) -> None:
    path = _write(tmp_path, text.encode())
    out = tmp_path / "out"
    for args in (["validate", str(path)], ["run", str(path), "--out", str(out)]):
        assert _refused(args) == (
            f"error: {path}:1: the scenario is empty; write at least its name "
            "(every other field has a default)"
        )
    assert not out.exists()


def test_non_utf8_scenario_names_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: café\nseed: 3\n".encode("latin-1"))
    assert _refused(["validate", str(path)]) == (
        f"error: {path}:1: not UTF-8 text: byte 0xe9 at column 10; save the file as UTF-8"
    )


def test_binary_scenario_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, b"name: x\nseed: 3\nhorizon:\n  days: 4\x00\n")
    assert _refused(["validate", str(path)]) == (
        f"error: {path}:4: not a text file: character U+0000 is not allowed in YAML"
    )


def test_an_image_given_as_scenario(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    path = _write(tmp_path, png, name="map.png")
    assert _refused(["validate", str(path)]) == (
        f"error: {path}:1: not UTF-8 text: byte 0x89 at column 1; save the file as UTF-8"
    )


def test_a_utf8_byte_order_mark_is_fine(tmp_path: Path) -> None:
    path = _write(tmp_path, b"\xef\xbb\xbfname: bom\nhorizon: {days: 2}\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output


def test_aliases_that_expand_without_end(tmp_path: Path) -> None:
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for name, previous in zip("bcdefg", "abcdef", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    path = _write(tmp_path, "\n".join(lines) + "\n")
    assert _refused(["validate", str(path)]) == (
        f"error: {path}: more than 1,000,000 values once YAML aliases are expanded"
    )


def test_oversized_scenario(tmp_path: Path) -> None:
    path = _write(tmp_path, b"name: big\n" + b"#" * MAX_SCENARIO_BYTES + b"\n")
    message = _refused(["validate", str(path)])
    assert message.startswith(f"error: {path}: ")
    assert "is too large for a scenario" in message


def test_a_folder_given_as_scenario(tmp_path: Path) -> None:
    assert _refused(["validate", str(tmp_path)]) == (
        f"error: {tmp_path}: a folder, not a scenario file"
    )


# (id, YAML, line, field, fragment)
SIZES = [
    ("days_100000", "name: x\nhorizon:\n  days: 100000\n", 3, "horizon.days", "3660"),
    ("calls_1e9", "name: x\ndemand:\n  calls_per_day: 1e9\n", 3, "demand.calls_per_day",
     "10000000"),
    (
        "stations_1e8",
        "name: x\nnetwork:\n  stations:\n    generate:\n      count: 100000000\n",
        5,
        "network.stations.generate.count",
        "100000",
    ),
    ("vans_1e9", "name: x\nnetwork:\n  vans:\n    total: 1000000000\n", 4,
     "network.vans.total", "200000"),
    (
        "fleet_1e9",
        "name: x\ndemand:\n  fleet:\n    vehicles: 1000000000\n    calls_per_vehicle_year: 100\n",
        4,
        "demand.fleet.vehicles",
        "calls a day",
    ),
    ("agents_1e9",
     "name: x\nhotline:\n  shifts:\n    - {start_h: 0, end_h: 24, agents: 1000000000}\n",
     4, "hotline.shifts[0].agents", "100000"),
    ("replications_1e6", "name: x\nreplications: 1000000\n", 2, "replications", "10000"),
    ("infinite", "name: x\ndemand:\n  calls_per_day: .inf\n", 3, "demand.calls_per_day", "finite"),
    ("not_a_number", "name: x\ntravel:\n  detour_factor: .nan\n", 3, "travel.detour_factor", ""),
    ("huge_cv", "name: x\nhotline:\n  handling_time_min: {dist: lognormal, mean: 6, cv: 1e200}\n",
     3, "hotline.handling_time_min.cv", "100"),
    ("huge_noise", "name: x\ntravel:\n  noise_cv: 1e300\n", 3, "travel.noise_cv", "100"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "line", "field", "fragment"), [pytest.param(*case[1:], id=case[0]) for case in SIZES]
)
def test_sizes_no_network_has(
    tmp_path: Path, text: str, line: int, field: str, fragment: str
) -> None:
    path = _write(tmp_path, text)
    message = _refused(["validate", str(path)])
    assert message.startswith(f"error: {path}:{line}: {field}: "), message
    assert fragment in message


# --------------------------------------------------------------------------- station CSV

SCENARIO_WITH_CSV = """\
name: csv
geography:
  provinces: [河南省]
network:
  stations:
    csv: stations.csv
  vans:
    total: null
"""

GOOD = "id,lat,lon,vans,workshop_bays\na,34.75,113.62,2,1\nb,34.62,112.45,1,0\n"

# (id, CSV bytes, line, field, message after "field: ")
CSV_CASES = [
    ("repeated_id", GOOD + "a,34.80,114.30,1,1\n", 4, "id",
     "id 'a' is repeated (first on line 2)"),
    ("empty_id", GOOD + ",34.80,114.30,1,1\n", 4, "id", "empty id"),
    ("empty_cell", GOOD.replace("113.62", ""), 2, "lon", "empty cell: ''"),
    ("not_a_number", GOOD.replace("113.62", "east"), 2, "lon", "not a number: 'east'"),
    ("infinite", GOOD.replace("34.62", "inf"), 3, "lat", "not a finite number: 'inf'"),
    ("fraction_of_a_van", GOOD.replace(",2,1", ",1.5,1"), 2, "vans",
     "must be a whole number: '1.5'"),
    ("negative_bays", GOOD.replace(",1,0", ",1,-1"), 3, "workshop_bays",
     "must be at least 0: '-1'"),
]  # fmt: skip


def _scenario_with(tmp_path: Path, csv: bytes) -> Path:
    (tmp_path / "stations.csv").write_bytes(csv)
    return _write(tmp_path, SCENARIO_WITH_CSV)


@pytest.mark.parametrize(
    ("csv", "line", "field", "message"), [pytest.param(*c[1:], id=c[0]) for c in CSV_CASES]
)
def test_station_csv_row_and_field(
    tmp_path: Path, csv: str, line: int, field: str, message: str
) -> None:
    path = _scenario_with(tmp_path, csv.encode())
    assert _refused(["validate", str(path)]) == (
        f"error: {tmp_path / 'stations.csv'}:{line}: {field}: {message}"
    )


@pytest.mark.parametrize(
    ("csv", "line", "message"),
    [
        pytest.param(b"", None, "the stations CSV is empty; the first line names the columns",
                     id="empty_file"),
        pytest.param(b"id,lat,lon\n", 1, "the stations CSV has no rows", id="header_only"),
        pytest.param(GOOD.replace("\nb,", "\n\nb,").encode(), 3, "empty line", id="blank_line"),
        pytest.param((GOOD + "c,34.1,113.1,1,1,9\n").encode(), 4,
                     "not a valid CSV: Expected 5 fields in line 4, saw 6", id="extra_field"),
        pytest.param(GOOD.replace("a,", "é,").encode("latin-1"), 2,
                     "not UTF-8 text: byte 0xe9 at column 1; save the file as UTF-8",
                     id="latin1"),
        pytest.param(b"id,lat\na,34\n", 1, "the stations CSV lacks columns ['lon']",
                     id="missing_column"),
    ],
)  # fmt: skip
def test_station_csv_as_a_whole(tmp_path: Path, csv: bytes, line: int | None, message: str) -> None:
    path = _scenario_with(tmp_path, csv)
    where = f"{tmp_path / 'stations.csv'}" + (f":{line}" if line is not None else "")
    assert _refused(["validate", str(path)]) == f"error: {where}: {message}"


def test_good_station_csv_still_loads(tmp_path: Path) -> None:
    path = _scenario_with(tmp_path, GOOD.encode())
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------- work estimate

HUGE = """\
name: huge
geography:
  provinces: [河南省]
network:
  stations:
    generate: {count: 60, coverage_target: 1.0}
  vans: {total: 110}
horizon:
  days: 3000
demand:
  calls_per_day: 1000000
"""


def test_validate_refuses_work_past_the_machine(tmp_path: Path) -> None:
    path = _write(tmp_path, HUGE)
    message = _refused(["validate", str(path)])
    assert message.startswith(f"error: {path}:11: demand.calls_per_day: about 3,000,")
    assert "calls (1 replication(s) of " in message
    assert "of memory, more than the" in message
    assert message.endswith("make the run smaller, or pass --force to run it anyway")


def test_validate_force_shows_the_estimate(tmp_path: Path) -> None:
    path = _write(tmp_path, HUGE)
    result = runner.invoke(app, ["validate", str(path), "--force"])
    assert result.exit_code == 0, result.output
    for row in ("calls (estimate)", "memory (estimate)", "time (estimate)", "3,000,000,000"):
        assert row in result.stdout


def test_run_refuses_before_any_work_and_writes_nothing(
    tmp_path: Path, no_simulation: None
) -> None:
    path = _write(tmp_path, HUGE)
    before = tree(tmp_path)
    message = _refused(["run", str(path), "--out", str(tmp_path / "out")])
    assert message.startswith(f"error: {path}:11: demand.calls_per_day: ")
    assert tree(tmp_path) == before


def test_an_option_that_makes_the_work_large_is_named(no_simulation: None) -> None:
    message = _refused(["run", str(QUICK), "--days", "3000", "--replications", "10000"])
    assert message.startswith("error: --replications: about 3,"), message


def test_time_limit_from_the_environment(no_simulation: None) -> None:
    message = _refused(["run", str(QUICK)], env={"RESCUE_SIM_TIME_LIMIT": "0.001s"})
    assert message.startswith(f"error: {QUICK}:")
    assert "more than the 0.0 s limit (RESCUE_SIM_TIME_LIMIT)" in message


def test_bad_limit_in_the_environment(no_simulation: None) -> None:
    message = _refused(["run", str(QUICK)], env={"RESCUE_SIM_MEMORY_LIMIT": "lots"})
    assert message == ("error: RESCUE_SIM_MEMORY_LIMIT: 'lots' is not a size (write 8G, 500M)")


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--replications", "0"], "error: --replications: must be at least 1"),
        (["--workers", "0"], "error: --workers: must be at least 1"),
        (["--days", "0"], "error: --days: must be positive"),
        (["--days", "nan"], "error: --days: must be positive"),
        (["--days", "100000"], "error: --days: must be at most 3,660"),
        (["--seed", "-1"], "error: --seed: must be at least 0"),
        (["--policy", "no_such_module_xyz:P"], "error: --policy: cannot import policy module "),
    ],
)
def test_bad_option_values(args: list[str], expected: str, no_simulation: None) -> None:
    assert _refused(["run", str(QUICK), *args]).startswith(expected)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "--workers", "two"], "Invalid value for '--workers'"),
        (["run", "--no-such-option"], "No such option: --no-such-option"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], fragment: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sim", *args],
        capture_output=True, text=True, env=subprocess_env(), timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    message = one_error_line(proc.stdout, proc.stderr)
    assert fragment in message


def test_debug_flag_may_follow_the_command(tmp_path: Path) -> None:
    path = _write(tmp_path, "")
    proc = subprocess.run(
        [sys.executable, "-m", "sim", "validate", str(path), "--debug"],
        capture_output=True, text=True, env=subprocess_env(), timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("Traceback (most recent call last):")
    assert proc.stderr.splitlines()[-1].startswith(f"error: {path}:1: the scenario is empty")
