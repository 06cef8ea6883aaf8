"""Determinism: same scenario and seed give the same records in any number of processes.

docs/architecture.md, principle 7. The run folder's summary.json holds library versions and the
like, so files are compared by their contents read back, not by their bytes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.analysis.kpi_catalogue import HEADLINE_KPIS
from sim.experiments.runs.run import RunResult, run, run_replication
from sim.model.loading import load_scenario
from sim.model.scenario import Scenario
from sim.outputs.run_folder import read_run, write_run

REPO = Path(__file__).resolve().parents[1]
QUICK = REPO / "scenarios" / "quick.yaml"


@pytest.fixture(scope="module")
def quick() -> Scenario:
    return load_scenario(QUICK).with_overrides(horizon={"days": 3, "warmup_days": 0.5})


@pytest.fixture(scope="module")
def serial(quick: Scenario) -> RunResult:
    return run(quick, replications=2, workers=1)


@pytest.fixture(scope="module")
def parallel(quick: Scenario) -> RunResult:
    return run(quick, replications=2, workers=2)


def _assert_same_run(a: RunResult, b: RunResult) -> None:
    assert len(a.replications) == len(b.replications)
    pd.testing.assert_frame_equal(a.calls, b.calls, check_exact=True)
    pd.testing.assert_frame_equal(a.units, b.units, check_exact=True)
    pd.testing.assert_frame_equal(a.kpis_by_replication, b.kpis_by_replication, check_exact=True)
    for ra, rb in zip(a.replications, b.replications, strict=True):
        assert ra.replication == rb.replication
        assert ra.hotline_queue_area_h == rb.hotline_queue_area_h


def test_quick_scenario_is_not_trivial(serial: RunResult) -> None:
    """The comparisons below are about a run with real content."""
    calls = serial.calls
    assert sorted(calls["replication"].unique()) == [0, 1]
    assert len(calls) > 200
    assert (calls["final_state"] == "repaired").sum() > 100
    # The two replications differ: they are not one stream run twice.
    first, second = (g.reset_index(drop=True) for _, g in calls.groupby("replication"))
    assert len(first) != len(second) or not np.array_equal(
        first["t_call_h"].to_numpy(), second["t_call_h"].to_numpy()
    )


def test_workers_do_not_change_results(serial: RunResult, parallel: RunResult) -> None:
    _assert_same_run(serial, parallel)


def test_run_folders_hold_the_same_tables(
    serial: RunResult, parallel: RunResult, tmp_path: Path
) -> None:
    """calls.parquet and units.parquet read back equal; summary KPIs are equal too."""
    folders = []
    for name, result in (("serial", serial), ("parallel", parallel)):
        folders.append(write_run(result, tmp_path / name, QUICK))
    (calls_a, units_a, summary_a), (calls_b, units_b, summary_b) = (read_run(f) for f in folders)
    pd.testing.assert_frame_equal(calls_a, calls_b, check_exact=True)
    pd.testing.assert_frame_equal(units_a, units_b, check_exact=True)
    assert summary_a["kpis"] == summary_b["kpis"]
    assert summary_a["kpis_by_replication"] == summary_b["kpis_by_replication"]
    assert summary_a["scenario"] == summary_b["scenario"]
    assert summary_a["input_sha256"] == summary_b["input_sha256"]
    # What was written is what was computed.
    pd.testing.assert_frame_equal(calls_a, serial.calls, check_exact=True, check_categorical=False)


def test_two_runs_in_one_process_agree(quick: Scenario, serial: RunResult) -> None:
    """No global random state: running again (after other runs) gives the same rows."""
    np.random.seed(12345)  # a global seed must not matter either
    np.random.random(1000)
    again = run(quick, replications=2, workers=1)
    _assert_same_run(serial, again)


def test_a_replication_does_not_depend_on_the_others(quick: Scenario, serial: RunResult) -> None:
    """Replication 1 alone equals replication 1 of the run."""
    alone = run_replication(quick, 1)
    in_run = serial.replications[1]
    pd.testing.assert_frame_equal(alone.calls, in_run.calls, check_exact=True)
    pd.testing.assert_frame_equal(alone.units, in_run.units, check_exact=True)
    assert alone.kpis == pytest.approx(in_run.kpis, nan_ok=True, rel=0, abs=0)


def test_seed_changes_results(quick: Scenario, serial: RunResult) -> None:
    other = run(quick.with_overrides(seed=quick.seed + 1), replications=1, workers=1)
    assert not other.calls["t_call_h"].equals(serial.replications[0].calls["t_call_h"])


def test_cli_run_writes_folder_and_prints_headline_rates(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sim",
            "run",
            str(QUICK),
            "--days",
            "2",
            "--replications",
            "2",
            "--workers",
            "2",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        # A wide, plain console: the KPI table is not wrapped whatever the CI terminal.
        env={**os.environ, "COLUMNS": "160", "NO_COLOR": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    for name in HEADLINE_KPIS:
        rows = [line for line in proc.stdout.splitlines() if name in line]
        assert rows, f"{name} missing from:\n{proc.stdout}"
        assert "%" in rows[0], f"{name} printed without a rate: {rows[0]}"
    for name in ("calls.parquet", "units.parquet", "summary.json"):
        assert (out / name).is_file()
    assert not list(out.glob(".*.tmp")), "no temporary file is left behind"

    calls, units, summary = read_run(out)
    assert summary["replications"] == 2
    assert summary["scenario"]["horizon"]["days"] == 2
    assert sorted(calls["replication"].unique()) == [0, 1]
    assert set(units["replication"].unique()) == {0, 1}
    for name in HEADLINE_KPIS:
        assert name in summary["kpis"]
    json.dumps(summary)  # plain JSON

    # The CLI's run equals the API's run of the same overridden scenario.
    scenario = load_scenario(QUICK).with_overrides(
        horizon={"days": 2, "warmup_days": 0.2}, replications=2
    )
    api = run(scenario, workers=1)
    pd.testing.assert_frame_equal(calls, api.calls, check_exact=True, check_categorical=False)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores for two workers")
def test_compare_shares_one_pool_with_the_same_results(quick: Scenario) -> None:
    """All policies' replications in one pool of workers: the same as run one by one."""
    from sim.experiments.runs.compare import compare

    policies = ["nearest_station", "nearest_idle_van"]
    pooled = compare(quick, policies, replications=2, workers=2)
    for policy in policies:
        alone = run(quick, replications=2, policy=policy, workers=1)
        _assert_same_run(pooled.results[policy], alone)
        assert pooled.results[policy].policy == policy
