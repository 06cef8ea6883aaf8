"""``optimise --out`` goes the way ``run`` goes: claimed before any work, resumed from its store.

Issue 23: ``optimise`` wrote its folder file by file beside whatever was there, found an
unwritable ``--out`` only after the first stage (an internal error, exit 1), and kept a
JSON cache of its own whose key left out the code, a custom policy's source and the
spatial, travel-matrix and trace files, so that a resumed search reused stale runs.
Here every run of the optimiser is counted where it is simulated (``execute_task`` in
the engine; one worker, so in this process) and the store's manifest says how many
were reused.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_checks import QUICK, one_error_line, tree
from typer.testing import CliRunner

from sim.cli import app
from sim.experiments.runs import executor
from sim.experiments.runs.store import ResultStore
from sim.outputs.output_folder import OutputFolder

runner = CliRunner()

# A search of two designs (the current network and the first stage's seed), two
# replications of two days each, and a small first stage: a few seconds a search.
SEARCH = ["--moves", "vans", "--budget", "2", "--days", "2", "--replications", "2"]
SPEC = "probe_days: 1\ndemand_sample_calls: 3000\n"
# Runs finished before the interruption: the probe and the current network's two.
FINISHED_BEFORE_STOP = 3


class Simulated:
    """Counts the runs simulated (their keys); optionally ^C before the run after ``stop_after``."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.stop_after: int | None = None

    def wrap(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def counted(task: Any, *args: Any, **kwargs: Any) -> Any:
            if self.stop_after is not None and len(self.keys) >= self.stop_after:
                raise KeyboardInterrupt  # ^C while this run is under way
            self.keys.append(task.key)
            return real(task, *args, **kwargs)

        return counted


@pytest.fixture
def simulated(monkeypatch: pytest.MonkeyPatch) -> Simulated:
    counter = Simulated()
    monkeypatch.setattr(executor, "execute_task", counter.wrap(executor.execute_task))
    return counter


@pytest.fixture
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "design.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return path


def _optimise(scenario: Path, out: Path, spec: Path, *more: str) -> Any:
    args = ["optimise", str(scenario), "--out", str(out), "--config", str(spec), *SEARCH, *more]
    return runner.invoke(app, args)


def _counts(out: Path) -> dict[str, int]:
    counts: dict[str, int] = ResultStore.in_folder(out).read_manifest()["counts"]
    return counts


def _interrupted(scenario: Path, out: Path, spec: Path, simulated: Simulated) -> list[str]:
    """The search stopped by ^C after ``FINISHED_BEFORE_STOP`` runs; the keys of those."""
    simulated.stop_after = FINISHED_BEFORE_STOP
    result = _optimise(scenario, out, spec)
    assert result.exit_code == 130, result.output
    last = result.stderr.splitlines()[-1]
    assert last == (
        f"interrupted: finished runs are kept in {out / 'store'}; run the same command again "
        "to run only what is missing"
    )
    assert result.stdout == ""
    assert sorted(p.name for p in out.iterdir()) == ["store"]  # no design file, no manifest
    assert len(list((out / "store" / "runs").glob("*.parquet"))) == FINISHED_BEFORE_STOP
    keys, simulated.keys, simulated.stop_after = simulated.keys, [], None
    return keys


# --------------------------------------------------------------------------- refused


def test_a_folder_holding_files_is_refused_without_overwrite(
    tmp_path: Path, spec: Path, simulated: Simulated
) -> None:
    out = tmp_path / "X"
    out.mkdir()
    (out / "mine.txt").write_text("hi\n", encoding="utf-8")
    result = _optimise(QUICK, out, spec)
    assert result.exit_code == 2, result.output
    assert one_error_line(result.stdout, result.stderr) == (
        f"error: --out: {out} already holds 1 entry (mine.txt); pass --overwrite to replace "
        "it, or choose another folder"
    )
    assert tree(tmp_path) == {"X/mine.txt": b"hi\n"}  # no lock, no staging folder left
    assert simulated.keys == []


def _read_only_place() -> Path:
    """A folder this process cannot write in: root writes anywhere, but not in sysfs."""
    try:
        (Path("/sys") / ".rescue-sim-probe").open("w").close()
    except OSError:
        return Path("/sys")
    pytest.skip("no read-only place for this user")


@pytest.mark.parametrize("where", ["under a file", "in a read-only place"])
def test_an_unwritable_out_is_one_line_before_any_simulation(
    where: str, tmp_path: Path, spec: Path, simulated: Simulated
) -> None:
    blocker = tmp_path / "results"
    blocker.write_text("keep me\n", encoding="utf-8")
    if where == "under a file":
        out = blocker / "design"
        expected = f"error: --out: {out} cannot be a folder: {blocker} is a file"
    else:
        place = _read_only_place()
        out, expected = place / "design", f"error: --out: cannot write in {place}: "
    result = _optimise(QUICK, out, spec)
    assert result.exit_code == 2, result.output
    assert one_error_line(result.stdout, result.stderr).startswith(expected)
    assert tree(tmp_path) == {"results": b"keep me\n"}
    assert simulated.keys == []  # not even the first stage's probe


def test_a_folder_another_command_writes_is_refused(
    tmp_path: Path, spec: Path, simulated: Simulated
) -> None:
    out = tmp_path / "design"
    with OutputFolder.claim(out):
        result = _optimise(QUICK, out, spec)
        assert result.exit_code == 2, result.output
        assert one_error_line(result.stdout, result.stderr).startswith(
            f"error: --out: {out} is being written by another rescue-sim (pid "
        )
    assert simulated.keys == []
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- resumed


def test_an_interrupted_search_resumes_with_the_runs_it_finished(
    tmp_path: Path, spec: Path, simulated: Simulated
) -> None:
    out = tmp_path / "design"
    before = _interrupted(QUICK, out, spec, simulated)
    result = _optimise(QUICK, out, spec)
    assert result.exit_code == 0, result.output
    counts = _counts(out)
    assert counts["reused"] == FINISHED_BEFORE_STOP
    assert len(simulated.keys) == counts["runs"] - FINISHED_BEFORE_STOP
    assert not set(simulated.keys) & set(before)  # no finished run simulated again
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["kind"] == "design"
    assert f"wrote {out}: changes.csv, " in " ".join(result.stdout.split())
    # Finished: the same command again is refused; with --overwrite every run is read back.
    assert _optimise(QUICK, out, spec).exit_code == 2
    simulated.keys = []
    assert _optimise(QUICK, out, spec, "--overwrite").exit_code == 0
    assert simulated.keys == []
    assert _counts(out)["reused"] == counts["runs"]


def _scenario_with_spatial_demand(tmp_path: Path) -> tuple[Path, Path]:
    """quick.yaml with its calls drawn around three places of a CSV; the YAML and the CSV."""
    demand = tmp_path / "places.csv"
    demand.write_text(
        "lat,lon,weight\n34.75,113.62,3\n32.99,112.53,1\n36.10,114.39,1\n", encoding="utf-8"
    )
    text = QUICK.read_text(encoding="utf-8").replace(
        "  calls_per_day: 130", "  calls_per_day: 130\n  spatial: {csv: places.csv, scatter_km: 20}"
    )
    scenario = tmp_path / "spatial.yaml"
    scenario.write_text(text, encoding="utf-8")
    return scenario, demand


def test_a_changed_input_file_runs_them_again(
    tmp_path: Path, spec: Path, simulated: Simulated
) -> None:
    scenario, demand = _scenario_with_spatial_demand(tmp_path)
    out = tmp_path / "design"
    _interrupted(scenario, out, spec, simulated)
    # The same places, weighted otherwise: every run draws other calls.
    demand.write_text(demand.read_text(encoding="utf-8").replace(",3\n", ",2\n"), encoding="utf-8")
    result = _optimise(scenario, out, spec)
    assert result.exit_code == 0, result.output
    counts = _counts(out)
    assert counts["reused"] == 0
    assert len(simulated.keys) == counts["runs"]


POLICY = """
from sim.model.dispatch import NearestStation


class Mine(NearestStation):
    name = "mine"
"""


def test_a_changed_policy_source_runs_them_again(
    tmp_path: Path, spec: Path, simulated: Simulated, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "optimise_folder_policy.py"
    module.write_text(POLICY, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module.stem, raising=False)
    scenario = tmp_path / "mine.yaml"
    text = QUICK.read_text(encoding="utf-8")
    scenario.write_text(
        text.replace("policy: nearest_station", f"policy: {module.stem}:Mine"), encoding="utf-8"
    )
    out = tmp_path / "design"
    _interrupted(scenario, out, spec, simulated)
    # The same decisions, but another source: whatever changed, the runs are not reused.
    module.write_text(POLICY + "\n# reviewed\n", encoding="utf-8")
    result = _optimise(scenario, out, spec)
    assert result.exit_code == 0, result.output
    counts = _counts(out)
    assert counts["reused"] == 0
    assert len(simulated.keys) == counts["runs"]
