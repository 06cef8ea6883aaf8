"""run, compare and sweep: an interrupted command rerun does only what is missing, and a
changed input file or a changed custom policy runs again.

Each command is invoked in this process (one worker, so every run is stored from here),
with ``ResultStore.write_run`` wrapped to count the runs stored, and, for the
interruption, to raise ^C (KeyboardInterrupt) right after the second one: the
interruption lands at the same place on every machine, however fast or loaded.
Between invocations the custom policy's module is dropped from ``sys.modules``, as a new
process would start without it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from cli_checks import QUICK, StoreCounter, tree
from typer.testing import CliRunner

runner = CliRunner()
POLICY_MODULE = "resume_policies"
POLICY = f"{POLICY_MODULE}:Nearest"
POLICY_SOURCE = '''
from sim.model.dispatch.policies import NearestStation


class Nearest(NearestStation):
    """The published rule under another name{suffix}."""

    name = "nearest_custom"
'''
STATIONS = (
    "id,lat,lon,vans\nA,34.75,113.62,30\nB,34.80,114.30,20\nC,33.0,113.0,30\nD,35.5,114.5,{d}\n"
)
REPLICATIONS = 3


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """quick.yaml on a stations CSV beside it, and a custom policy module on sys.path."""
    text = QUICK.read_text(encoding="utf-8")
    text = re.sub(
        r"  stations:\n    generate:\n(      .*\n)+", "  stations:\n    csv: stations.csv\n", text
    )
    assert "csv: stations.csv" in text
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(text, encoding="utf-8")
    (tmp_path / "stations.csv").write_text(STATIONS.format(d=30), encoding="utf-8")
    (tmp_path / f"{POLICY_MODULE}.py").write_text(POLICY_SOURCE.format(suffix=""), "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return scenario


def _commands(scenario: Path, out: Path) -> dict[str, tuple[list[str], int]]:
    """Each command's arguments, and how many runs it makes."""
    small = ["--days", "2", "--replications", str(REPLICATIONS), "--out", str(out)]
    return {
        "run": (["run", str(scenario), "--policy", POLICY, *small], REPLICATIONS),
        "compare": (
            ["compare", str(scenario), "--policy", "nearest_station", "--policy", POLICY, *small],
            2 * REPLICATIONS,
        ),
        "sweep": (
            [
                "sweep", str(scenario), "--policy", POLICY,
                "--vary", "travel.detour_factor=1.2,1.4", *small,
            ],
            2 * REPLICATIONS,
        ),
    }  # fmt: skip


def _results(command: str, out: Path) -> pd.DataFrame:
    """The numbers a command's folder holds: KPIs by replication, or its table."""
    if command == "run":
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        return pd.DataFrame(summary["kpis_by_replication"])
    return pd.read_csv(out / {"compare": "comparison.csv", "sweep": "sweep.csv"}[command])


@pytest.mark.parametrize("command", ["run", "compare", "sweep"])
def test_an_interrupted_command_resumes_with_only_the_missing_runs(
    command: str, inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = StoreCounter(monkeypatch, forget=(POLICY_MODULE,))
    whole = tmp_path / "whole"
    args, total = _commands(inputs, whole)[command]
    assert counter.invoke(args).exit_code == 0
    assert counter.stored == total

    out = tmp_path / "out"
    args, _ = _commands(inputs, out)[command]
    stopped = counter.invoke(args, interrupt_after=2)
    assert stopped.exit_code == 130, stopped.output
    assert stopped.stderr.strip().splitlines()[-1].startswith("interrupted: ")
    assert sorted(tree(out)) and not (out / "manifest.json").exists()  # the store, no more

    resumed = counter.invoke(args)
    assert resumed.exit_code == 0, resumed.output
    assert counter.stored == total - 2  # the two finished runs were reused
    pd.testing.assert_frame_equal(
        _results(command, out), _results(command, whole), check_exact=True
    )


@pytest.mark.parametrize("command", ["run", "compare", "sweep"])
def test_a_changed_input_file_or_policy_source_runs_again(
    command: str, inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = StoreCounter(monkeypatch, forget=(POLICY_MODULE,))
    out = tmp_path / "out"
    args, total = _commands(inputs, out)[command]
    again = [*args, "--overwrite"]  # a finished folder is replaced; its store is reused
    assert counter.invoke(args).exit_code == 0
    assert counter.stored == total

    assert counter.invoke(again).exit_code == 0
    assert counter.stored == 0  # nothing changed: every run reused

    (tmp_path / "stations.csv").write_text(STATIONS.format(d=31), encoding="utf-8")
    assert counter.invoke(again).exit_code == 0
    assert counter.stored == total  # another network: every run again

    source = tmp_path / f"{POLICY_MODULE}.py"
    source.write_text(POLICY_SOURCE.format(suffix=", edited"), encoding="utf-8")
    assert counter.invoke(again).exit_code == 0
    # Only the custom policy's runs (compare also runs nearest_station, unchanged).
    assert counter.stored == (REPLICATIONS if command == "compare" else total)
