"""A run killed outright (SIGKILL) while it replaces an existing run folder.

Issue 13: killing a rerun left calls.parquet of the new run beside summary.json of the
old one, and ``report`` rendered the mix. Here a rerun is killed at several moments:
while it simulates, and at each step of writing (files staged, manifest written, old
folder set aside by the two-rename fallback, new folder swapped in). After every kill
the folder verifies against its manifest and is wholly the old run or wholly the new
one; the next run then replaces it and leaves nothing behind.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_checks import QUICK, subprocess_env
from typer.testing import CliRunner

from sim.cli import app
from sim.experiments.runs.executor import PAUSE_AFTER_ENV
from sim.outputs.output_folder import FAILPOINT_ENV, open_folder
from sim.outputs.run_folder import read_run

# Processes killed at chosen moments take tens of seconds: the full suite runs them.
pytestmark = pytest.mark.slow

runner = CliRunner()
SMALL = ["--days", "2", "--replications", "1"]
OLD_SEED, NEW_SEED = 1, 2


@pytest.fixture(scope="module")
def old_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("old") / "run"
    result = runner.invoke(
        app, ["run", str(QUICK), *SMALL, "--seed", str(OLD_SEED), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


def _rerun(out: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sim", "run", str(QUICK), "--days", "3", "--replications", "2",
         "--seed", str(NEW_SEED), "--out", str(out), "--overwrite"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env(**env),
    )  # fmt: skip


def _seed_of_whole_run(out: Path) -> int:
    """The seed of the run in ``out``, after checking that every file belongs to it."""
    with open_folder(out, ("run",)) as folder:  # sizes and SHA-256 of every file
        seed = folder.manifest["seed"]
    calls, _, summary = read_run(out)
    assert summary["seed"] == seed, "summary.json is not the run the manifest describes"
    assert sorted(calls["replication"].unique()) == list(range(summary["replications"]))
    return int(seed)


def _fresh_copy(old_run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(old_run, out)
    return out


def _after_kill_a_rerun_cleans_up(out: Path) -> None:
    result = runner.invoke(app, ["run", str(QUICK), *SMALL, "--seed", "3", "--out", str(out),
                                 "--overwrite"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert _seed_of_whole_run(out) == 3
    assert sorted(p.name for p in out.parent.iterdir()) == ["run"]  # no staging, lock, aside


@pytest.mark.parametrize(
    ("step", "no_exchange", "expected_seed"),
    [
        pytest.param("staged", False, OLD_SEED, id="files_staged"),
        pytest.param("manifest", False, OLD_SEED, id="manifest_written"),
        pytest.param("swapped", False, NEW_SEED, id="swapped_in"),
        pytest.param("set-aside", True, OLD_SEED, id="two_renames_old_set_aside"),
        pytest.param("swapped", True, NEW_SEED, id="two_renames_new_in_place"),
    ],
)
def test_killed_at_a_write_step(
    tmp_path: Path, old_run: Path, step: str, no_exchange: bool, expected_seed: int
) -> None:
    out = _fresh_copy(old_run, tmp_path)
    env = {FAILPOINT_ENV: step, **({"RESCUE_SIM_NO_EXCHANGE": "1"} if no_exchange else {})}
    process = _rerun(out, **env)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == -signal.SIGKILL, stderr
    assert _seed_of_whole_run(out) == expected_seed
    _after_kill_a_rerun_cleans_up(out)


def _wait_for(path: Path, process: subprocess.Popen[str], timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


@pytest.mark.parametrize("delay_s", [0.0, 0.3, 1.0], ids=["at_claim", "soon_after", "later"])
def test_killed_while_it_simulates(tmp_path: Path, old_run: Path, delay_s: float) -> None:
    """Killed once the folder is claimed (the lock file exists), at some point after."""
    out = _fresh_copy(old_run, tmp_path)
    process = _rerun(out)
    try:
        _wait_for(tmp_path / ".run.lock", process)
        time.sleep(delay_s)
        process.send_signal(signal.SIGKILL)
    finally:
        process.communicate(timeout=600)
    # Late kills may find the run finished: either way the folder is one whole run.
    assert _seed_of_whole_run(out) in (OLD_SEED, NEW_SEED)
    _after_kill_a_rerun_cleans_up(out)


def test_killed_between_its_runs(tmp_path: Path, old_run: Path) -> None:
    """Killed with one of its two runs finished (it waits there): the old run stays, whole."""
    out = _fresh_copy(old_run, tmp_path)
    paused = tmp_path / "paused"
    process = _rerun(out, **{PAUSE_AFTER_ENV: f"1:{paused}"})
    try:
        _wait_for(paused, process)
        process.send_signal(signal.SIGKILL)
    finally:
        process.communicate(timeout=600)
    assert process.returncode == -signal.SIGKILL
    assert _seed_of_whole_run(out) == OLD_SEED
    paused.unlink()
    _after_kill_a_rerun_cleans_up(out)
