"""Property: a mutated bundled scenario or station CSV runs or is one line, never a traceback.

Mutations, as a careless edit or a damaged file would make them: delete a key, change a
value's type, negate a number or blow it up, truncate the file, insert garbage bytes
(and, for CSVs, drop a column, repeat or drop a row). A scenario is mutated as written,
or resolved with every default spelt out, so that fields it leaves to their defaults
are mutated too. Every outcome of ``validate`` is
exit 0 or exit 2 with one ``error:`` line; when it validates, a one-day run of it is too
(the work limit keeps a blown-up scenario from running for long: refusing it is exit 2).
"""

from __future__ import annotations

import copy
import functools
import io
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_checks import ROOT, one_error_line
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from typer.testing import CliRunner

import sim.experiments.runs.work_estimate as estimate
from sim import load_scenario
from sim.cli import app
from sim.experiments.runs.work_estimate import Calibration

pytestmark = pytest.mark.slow

runner = CliRunner()
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
# Station CSVs and the scenarios that read them.
CSV_SCENARIOS = {
    "double11_stations.csv": "double11_logistics_peak.yaml",
    "network_expansion_stations.csv": "network_expansion.yaml",
    "overloaded_stations.csv": "overloaded_neighbour.yaml",
}
# A blown-up scenario is refused by the estimate instead of running for long.
LIMITS = {"RESCUE_SIM_TIME_LIMIT": "20s", "RESCUE_SIM_MEMORY_LIMIT": "1G"}
# Fixed costs per call (about what this build measures on a quiet machine): which mutated
# scenarios the estimate refuses, and so which ones run, is the same on every machine and
# under any load, not decided by how fast the calibration ran here.
COST = Calibration(
    seconds_per_call=2e-4,
    model_bytes_per_call=1400.0,
    table_bytes_per_call=400.0,
    disk_bytes_per_call=240.0,
    process_bytes=2e8,
    build="fuzz",
)
# Per bundled file, so that the examples of one file are a test of their own and the files
# spread over the workers (pytest-xdist). Ten scenarios x 15: each scenario's three ways to
# mutate (bytes, as written, resolved) and five kinds of edit are drawn about once each;
# three station CSVs x 50. 150 examples per property, the same ones on every run (see
# tests/conftest.py: each parameter draws its own); HYPOTHESIS_PROFILE=explore draws more.
EXAMPLES_PER_SCENARIO = 15
EXAMPLES_PER_CSV = 50


@pytest.fixture(scope="module", autouse=True)
def fixed_costs() -> Iterator[None]:
    """The work estimate from :data:`COST`, not from a measurement on this machine."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(estimate, "measure_costs", lambda: COST)
        patch.setattr(estimate, "is_calibrated", lambda: True)
        yield


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """A copy of scenarios/ (with data/), so that relative CSV names resolve."""
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "scenarios"
        shutil.copytree(ROOT / "scenarios", target)
        yield target


# --------------------------------------------------------------------------- YAML mutations


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every key and list item of a YAML tree."""
    out: list[tuple[Any, ...]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((*path, key))
            out.extend(_leaves(value, (*path, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out.append((*path, index))
            out.extend(_leaves(value, (*path, index)))
    return out


def _parent(tree: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        tree = tree[part]
    return tree


OTHER_TYPES = ["text", [1, 2], {"a": 1}, None, True, 3, 2.5, "2021-02-30"]
# Mild factors keep many scenarios valid (odd values reach the model); large ones test bounds.
SCALE = [0.001, 0.5, 2, 10, 1e3, 1e6, 1e12, 1e300]


@st.composite
def yaml_mutation(draw: st.DrawFn, text: str) -> str:
    yaml = YAML(typ="rt")
    tree = yaml.load(text)
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):  # mostly one edit
        paths = _leaves(tree)  # again: an earlier mutation may have changed the tree
        if not paths:
            break
        path = paths[draw(st.integers(0, len(paths) - 1))]
        parent = _parent(tree, path)
        key = path[-1]
        value = parent[key]
        op = draw(st.sampled_from(["delete", "retype", "negate", "zero", *["scale"] * 3]))
        if op == "delete":
            del parent[key]
        elif op == "retype" or isinstance(value, bool) or not isinstance(value, int | float):
            parent[key] = copy.deepcopy(draw(st.sampled_from(OTHER_TYPES)))
        elif op == "negate":
            parent[key] = -value
        elif op == "zero":
            parent[key] = 0
        else:
            parent[key] = value * draw(st.sampled_from(SCALE))
    buffer = io.StringIO()
    yaml.dump(tree, buffer)
    return buffer.getvalue()


def _byte_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    if draw(st.booleans()):
        return data[: draw(st.integers(0, len(data)))]  # truncated
    at = draw(st.integers(0, len(data)))
    garbage = draw(st.binary(min_size=1, max_size=8))
    return data[:at] + garbage + data[at:]


@functools.cache  # loading a scenario costs more than running a mutated one's validate
def _resolved(path: Path) -> str:
    """The scenario with every default written out (file names made absolute)."""
    data = load_scenario(path).model_dump(mode="json", by_alias=True)
    buffer = io.StringIO()
    YAML(typ="safe").dump(data, buffer)
    return buffer.getvalue()


@st.composite
def mutated_scenario(draw: st.DrawFn, path: Path) -> tuple[str, bytes]:
    how = draw(st.sampled_from(["bytes", "as_written", "resolved"]))
    text = _resolved(path) if how == "resolved" else path.read_text(encoding="utf-8")
    if how == "bytes":
        return path.name, _byte_mutation(draw, text.encode("utf-8"))
    return path.name, draw(yaml_mutation(text)).encode("utf-8")


# --------------------------------------------------------------------------- CSV mutations


@st.composite
def mutated_csv(draw: st.DrawFn, name: str) -> tuple[str, bytes]:
    data = (ROOT / "scenarios" / "data" / name).read_bytes()
    if draw(st.integers(0, 3)) == 0:
        return name, _byte_mutation(draw, data)
    rows = [line.split(",") for line in data.decode("utf-8").splitlines()]
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["cell", "negate", "scale", "drop_column", "repeat", "drop"]))
        r = draw(st.integers(0, len(rows) - 1)) if rows else 0
        c = draw(st.integers(0, max(0, len(rows[0]) - 1))) if rows and rows[0] else 0
        if not rows or not rows[0]:
            break
        if op == "drop_column":
            rows = [row[:c] + row[c + 1 :] for row in rows]
        elif op == "repeat":
            rows.insert(r + 1, list(rows[r]))
        elif op == "drop":
            del rows[r]
        elif c < len(rows[r]):
            cell = rows[r][c]
            try:
                number = float(cell)
            except ValueError:
                number = None
            if op == "cell" or number is None:
                rows[r][c] = draw(st.sampled_from(["", "x", "1e999", "nan", "-", "1,5", '"']))
            elif op == "negate":
                rows[r][c] = repr(-number)
            else:
                rows[r][c] = repr(number * draw(st.sampled_from(SCALE)))
    return name, ("\n".join(",".join(row) for row in rows) + "\n").encode("utf-8")


# --------------------------------------------------------------------------- the property


def _one_line_or_success(args: list[str]) -> int:
    result = runner.invoke(app, args, env=LIMITS)
    detail = f"{args}: exit {result.exit_code}\n{result.stderr}"
    assert result.exit_code in (0, 2), detail
    assert "Traceback" not in result.stdout + result.stderr, detail
    if result.exit_code == 2:
        one_error_line(result.stdout, result.stderr)
    return result.exit_code


def _validate_then_run(path: Path) -> None:
    validated = _one_line_or_success(["validate", str(path)])
    event(f"validate exit {validated}")
    if validated == 0:
        # One day after the scenario's own warm-up (--days may not eat into it).
        days = load_scenario(path).horizon.warmup_days + 1
        ran = _one_line_or_success(["run", str(path), "--days", f"{days:g}", "--replications", "1"])
        event(f"run exit {ran}")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda path: path.stem)
@settings(
    max_examples=EXAMPLES_PER_SCENARIO,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_mutated_scenarios(workdir: Path, scenario: Path, data: st.DataObject) -> None:
    name, mutated = data.draw(mutated_scenario(scenario))
    path = workdir / f"mutated_{name}"
    path.write_bytes(mutated)
    _validate_then_run(path)


@pytest.mark.parametrize("csv", sorted(CSV_SCENARIOS))
@settings(
    max_examples=EXAMPLES_PER_CSV,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_mutated_station_csvs(workdir: Path, csv: str, data: st.DataObject) -> None:
    name, mutated = data.draw(mutated_csv(csv))
    original = (ROOT / "scenarios" / "data" / name).read_bytes()
    target = workdir / "data" / name
    target.write_bytes(mutated)
    try:
        _validate_then_run(workdir / CSV_SCENARIOS[name])
    finally:
        target.write_bytes(original)
