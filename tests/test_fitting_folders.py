"""``calibrate`` and ``sensitivity`` write their ``--out`` the way ``run`` does.

The folder is claimed before any run (a folder holding the user's files is refused
without ``--overwrite``; an unwritable place is one line, exit code 2, nothing run);
every run goes through the folder's result store, so that a command interrupted by ^C
and run again runs only what is missing and ends with the numbers of an uninterrupted
one, while a changed input file or a changed custom policy runs everything again.

The commands run in this process on a bench of two stations and a few calls a day, so
that each takes seconds; the interruption is a KeyboardInterrupt raised when the Nth run
is recorded, the same run on any machine, however loaded.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from cli_checks import QUICK, ROOT, one_error_line, tree
from typer.testing import CliRunner

import sim.experiments.runs.executor as executor
from sim.cli import app
from sim.experiments.runs.store import ResultStore

runner = CliRunner()
COMMANDS = ("calibrate", "sensitivity")
KIND = {"calibrate": "calibration", "sensitivity": "sensitivity"}
REPLICATIONS = 2
# The run at which the interrupted command is stopped (of 8 in all, for each command).
STOP_AT_RUN = 3

POLICY = '''
from sim.model.dispatch.policies import NearestStation


class Nearest(NearestStation):
    """The published rule, as a planner's own policy outside the package."""

    name = "bench_nearest"
'''


@pytest.fixture
def bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A two-station scenario reading its own CSVs, dispatched by a policy of its own."""
    folder = tmp_path / "bench"
    (folder / "data").mkdir(parents=True)
    for name in ("overloaded_stations.csv", "overloaded_demand.csv"):
        shutil.copy(ROOT / "scenarios" / "data" / name, folder / "data" / name)
    module = "bench_policy_" + re.sub(r"\W", "_", tmp_path.name)  # one per test: not cached
    (folder / f"{module}.py").write_text(POLICY, encoding="utf-8")
    text = (ROOT / "scenarios" / "overloaded_neighbour.yaml").read_text(encoding="utf-8")
    text = text.replace("policy: nearest_station", f"policy: {module}:Nearest")
    assert module in text
    (folder / "bench.yaml").write_text(text, encoding="utf-8")
    monkeypatch.syspath_prepend(str(folder))
    yield folder / "bench.yaml"
    sys.modules.pop(module, None)


def _args(command: str, scenario: Path, out: Path, *more: str) -> list[str]:
    small = ["--days", "2", "--replications", str(REPLICATIONS), "--out", str(out), *more]
    if command == "calibrate":
        # At most 4 points of 2 runs: the start, its Jacobian's point, then a step.
        fit = ["--target", "response_p90_h=3", "--max-points", "4"]
    else:
        fit = ["--kpi", "response_p90_h", "--trajectories", "2"]  # 2 x (1 + 1) points
    return [command, str(scenario), "--param", "travel.detour_factor=1.0..2.0", *fit, *small]


class Runs:
    """Counts the runs simulated in this process, and stops the command at a given one."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.simulated = 0
        self.stop_at: int | None = None
        self._recorded = 0
        execute = executor.execute_task
        record = ResultStore.write_run

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.simulated += 1
            return execute(*args, **kwargs)

        def recorded(store: ResultStore, *args: Any, **kwargs: Any) -> None:
            record(store, *args, **kwargs)
            self._recorded += 1
            if self.stop_at is not None and self._recorded == self.stop_at:
                raise KeyboardInterrupt  # as ^C just after the run was kept

        monkeypatch.setattr(executor, "execute_task", counted)
        monkeypatch.setattr(ResultStore, "write_run", recorded)

    def reset(self) -> None:
        self.simulated = self._recorded = 0


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> Runs:
    return Runs(monkeypatch)


def _invoke(args: list[str]) -> Any:
    return runner.invoke(app, args)


def _needed(command: str, out: Path) -> int:
    """The runs the command's result rests on, as its folder says."""
    if command == "calibrate":
        summary = json.loads((out / "calibration.json").read_text(encoding="utf-8"))
        return int(summary["evaluations"]) * int(summary["replications"])
    marker = json.loads((out / "sensitivity.json").read_text(encoding="utf-8"))
    return int(marker["points"]) * int(marker["replications"])


def _kept(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "store" / "runs").glob("*.parquet"))


@pytest.mark.parametrize("command", COMMANDS)
def test_a_folder_with_files_is_refused_without_overwrite(
    command: str, bench: Path, tmp_path: Path, runs: Runs
) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "mine.txt").write_text("hi\n", encoding="utf-8")
    before = tree(out)
    result = _invoke(_args(command, bench, out))
    assert result.exit_code == 2, result.output
    line = one_error_line(result.stdout, result.stderr)
    assert line.startswith(f"error: --out: {out} already holds"), line
    assert "pass --overwrite" in line
    assert tree(out) == before and runs.simulated == 0
    # Told to, the command replaces the folder with its own, whole.
    result = _invoke(_args(command, bench, out, "--overwrite"))
    assert result.exit_code == 0, result.output
    assert not (out / "mine.txt").exists()
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["kind"] == KIND[command]
    assert runs.simulated == _needed(command, out)


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unwritable_out_is_one_line_before_any_run(
    command: str, bench: Path, tmp_path: Path, runs: Runs
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("mine\n", encoding="utf-8")
    result = _invoke(_args(command, bench, blocker / "out"))
    assert result.exit_code == 2, result.output
    line = one_error_line(result.stdout, result.stderr)
    assert line == f"error: --out: {blocker / 'out'} cannot be a folder: {blocker} is a file"
    assert runs.simulated == 0
    assert blocker.read_text(encoding="utf-8") == "mine\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_interrupted_then_rerun_runs_only_what_is_missing(
    command: str, bench: Path, tmp_path: Path, runs: Runs
) -> None:
    whole = tmp_path / "whole"
    assert _invoke(_args(command, bench, whole)).exit_code == 0
    total = runs.simulated
    assert total == _needed(command, whole) == 8 and total > STOP_AT_RUN

    out = tmp_path / "out"
    runs.reset()
    runs.stop_at = STOP_AT_RUN
    result = _invoke(_args(command, bench, out))
    assert result.exit_code == 130, result.output
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"interrupted: finished runs are kept in {out / 'store'}"), last
    assert "Traceback" not in result.output
    assert len(_kept(out)) == STOP_AT_RUN
    assert not (out / "manifest.json").exists()  # nothing but the store: not committed

    runs.reset()
    runs.stop_at = None
    again = _invoke(_args(command, bench, out))
    assert again.exit_code == 0, again.output
    assert runs.simulated == total - STOP_AT_RUN  # the kept runs were not run again
    assert _kept(out) == _kept(whole)
    if command == "calibrate":
        for name in ("calibrated.yaml", "calibration_history.csv"):
            assert (out / name).read_bytes() == (whole / name).read_bytes(), name
    else:
        for name in ("sensitivity.csv", "points.csv"):
            assert (out / name).read_bytes() == (whole / name).read_bytes(), name


@pytest.mark.parametrize("command", COMMANDS)
def test_a_changed_input_file_or_policy_source_runs_again(
    command: str, bench: Path, tmp_path: Path, runs: Runs
) -> None:
    out = tmp_path / "out"
    assert _invoke(_args(command, bench, out)).exit_code == 0
    assert runs.simulated == _needed(command, out)
    # The same inputs: every run is found in the folder's store.
    runs.reset()
    assert _invoke(_args(command, bench, out, "--overwrite")).exit_code == 0
    assert runs.simulated == 0
    # A stations CSV the scenario names, changed: everything runs again.
    stations = bench.parent / "data" / "overloaded_stations.csv"
    text = stations.read_text(encoding="utf-8")
    assert "zhongmou,34.7190,113.9760,4," in text
    stations.write_text(text.replace("113.9760,4,", "113.9760,3,"), encoding="utf-8")
    runs.reset()
    assert _invoke(_args(command, bench, out, "--overwrite")).exit_code == 0
    assert runs.simulated == _needed(command, out) > 0
    # The planner's policy module, changed (a comment is enough): everything runs again.
    (module,) = bench.parent.glob("bench_policy_*.py")
    module.write_text(POLICY + "# tuned\n", encoding="utf-8")
    runs.reset()
    assert _invoke(_args(command, bench, out, "--overwrite")).exit_code == 0
    assert runs.simulated == _needed(command, out) > 0


def test_calibrate_flags_only_the_parameter_without_effect(tmp_path: Path) -> None:
    """The complaint desk's delay moves no response time; the detour factor does.

    Issue 23: with one parameter no target depends on, every parameter came back not
    identified, with an infinite standard error.
    """
    out = tmp_path / "fit"
    result = _invoke(
        ["calibrate", str(QUICK), "--target", "response_p50_h=1.105424",
         "--target", "response_p90_h=1.950473", "--param", "travel.detour_factor=1.0..2.5",
         "--param", "complaints.resolution_delay_h.mean=4..20", "--days", "2",
         "--replications", "3", "--max-steps", "3", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = json.loads((out / "calibration.json").read_text(encoding="utf-8"))["parameters"]
    detour, delay = table["travel.detour_factor"], table["complaints.resolution_delay_h.mean"]
    assert detour["identified"] and math.isfinite(detour["std_error"]) and detour["std_error"] > 0
    assert not delay["identified"] and delay["std_error"] is None  # infinite, written as null


def test_max_steps_bounds_the_points_run(bench: Path, tmp_path: Path, runs: Runs) -> None:
    out = tmp_path / "fit"
    limit = 4
    result = _invoke(
        ["calibrate", str(bench), "--target", "response_p90_h=3", "--param",
         "travel.detour_factor=1.0..2.0", "--param", "hotline.handling_time_min.mean=3..12",
         "--days", "2", "--replications", str(REPLICATIONS), "--max-steps", str(limit),
         "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "calibration.json").read_text(encoding="utf-8"))
    history = pd.read_csv(out / "calibration_history.csv")
    assert summary["evaluations"] == len(history) <= limit
    assert runs.simulated == summary["evaluations"] * REPLICATIONS
    assert f"({summary['evaluations']} points run)" in result.stdout
