"""An interrupted sweep resumes: every run exactly once, the numbers of an uninterrupted one.

The command runs in its own process group, as at a terminal, and is stopped midway by
SIGINT (^C) or by SIGKILL of the whole group (the driving process and its workers at
once, with no chance to tidy up). The same command run again finishes the sweep.

"Midway" is exact, not a race: the sweep waits after its second stored run
(``RESCUE_SIM_PAUSE_AFTER_RUNS``) for the signal, however fast or busy the machine is.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from cli_checks import QUICK, popen_as_at_a_terminal, subprocess_env

from sim.experiments.runs.executor import PAUSE_AFTER_ENV
from sim.experiments.runs.store import ResultStore

POINTS, REPLICATIONS = 3, 4
RUNS = POINTS * REPLICATIONS
KEPT = 2  # runs stored when the signal comes
DAYS = 3

pytestmark = [
    pytest.mark.slow,  # five commands of a dozen runs each, in fresh processes
    pytest.mark.skipif(not hasattr(os, "killpg"), reason="process groups are POSIX"),
]


def _command(out: Path) -> list[str]:
    return [
        sys.executable, "-m", "sim", "sweep", str(QUICK),
        "--vary", "network.vans.total=70,100,140", "--days", str(DAYS),
        "--replications", str(REPLICATIONS), "--workers", "2", "--out", str(out),
    ]  # fmt: skip


def _sweep(out: Path) -> subprocess.CompletedProcess[str]:
    """The sweep run to its end."""
    return subprocess.run(
        _command(out), capture_output=True, text=True, env=subprocess_env(), timeout=600
    )


def _parts(out: Path) -> list[Path]:
    return sorted((out / "store" / "runs").glob("*.parquet"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("whole") / "sweep"
    proc = _sweep(out)
    assert proc.returncode == 0, proc.stderr
    return pd.read_csv(out / "sweep.csv")


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL of the process group"])
def test_an_interrupted_sweep_resumes_with_every_run_once(
    how: str, tmp_path: Path, uninterrupted: pd.DataFrame
) -> None:
    out = tmp_path / "sweep"
    paused = tmp_path / "paused"
    proc = popen_as_at_a_terminal(
        _command(out),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(**{PAUSE_AFTER_ENV: f"{KEPT}:{paused}"}),
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    while not paused.exists():  # pytest-timeout ends a sweep that never gets there
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT if how == "SIGINT" else signal.SIGKILL)
    _, stderr = proc.communicate(timeout=120)
    if how == "SIGINT":
        assert proc.returncode == 130, stderr
        assert "interrupted: finished runs are kept in" in stderr
        assert "Traceback" not in stderr
    else:
        assert proc.returncode == -signal.SIGKILL
    kept = _parts(out)
    assert len(kept) == KEPT, "interrupted midway"
    assert not (out / "sweep.json").exists()

    again = _sweep(out)
    assert again.returncode == 0, again.stderr
    store = ResultStore(out / "store")
    manifest = store.read_manifest()
    # Nothing kept was run again, nothing was lost, nothing is there twice.
    assert manifest["counts"] == {
        "runs": RUNS, "finished": RUNS, "reused": len(kept), "failed": 0, "pending": 0
    }  # fmt: skip
    keys = [run["key"] for run in manifest["runs"]]
    assert len(set(keys)) == RUNS
    assert sorted(p.stem for p in _parts(out)) == sorted(keys)
    assert set(kept) <= set(_parts(out))
    runs = store.read_runs()
    assert len(runs) == RUNS and not runs.duplicated(["point", "replication"]).any()
    assert not list((out / "store").rglob("*.tmp"))
    rows = pd.read_csv(out / "sweep.csv")
    assert not rows.duplicated(["point", "replication"]).any()
    pd.testing.assert_frame_equal(rows, uninterrupted, check_exact=True)
