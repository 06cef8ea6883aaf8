"""SIGINT and SIGTERM to a run, with one worker or several: one line, 130 or 143, clean.

Issue 13: Ctrl-C with ``--workers 2`` printed "interrupted" and then some 160 lines of
tracebacks from the workers; SIGTERM printed nothing and warned about leaked
semaphores. A terminal's Ctrl-C goes to the whole process group, so the signal is sent
with ``os.killpg`` to the run and its workers alike. Afterwards: exit code 128 + the
signal, one line on stderr, no process of the group left alive, nothing written (or
the old run folder as it was).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from cli_checks import QUICK, one_error_line, popen_as_at_a_terminal, subprocess_env, tree
from typer.testing import CliRunner

from sim.cli import app
from sim.experiments.runs.executor import PAUSE_AFTER_ENV

# Processes killed at chosen moments take tens of seconds: the full suite runs them.
pytestmark = pytest.mark.slow

runner = CliRunner()
LONG = ["--days", "3", "--replications", "3"]


@pytest.fixture
def paused(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The file a run touches once it waits for the signal (away from what is compared)."""
    return tmp_path_factory.mktemp("paused") / "paused"


def _pause_env(paused: Path) -> dict[str, str]:
    return subprocess_env(**{PAUSE_AFTER_ENV: f"1:{paused}"})


def _workers(pid: int) -> list[psutil.Process]:
    """The worker processes of a run (spawned or forked; not multiprocessing's resource
    tracker)."""
    out = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "resource_tracker" not in " ".join(child.cmdline()):
                out.append(child)
        except psutil.Error:
            continue
    return out


def _alive_in_group(pgid: int) -> list[int]:
    alive = []
    for process in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return alive


def _start(out: Path, workers: int, overwrite: bool, paused: Path) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "sim", "run", str(QUICK), *LONG, "--workers", str(workers)]
    args += ["--out", str(out)] + (["--overwrite"] if overwrite else [])
    return popen_as_at_a_terminal(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_pause_env(paused),
        start_new_session=True,  # its own process group, as a terminal gives a command
    )


def _wait_until_working(process: subprocess.Popen[str], paused: Path, workers: int) -> None:
    """Until the run waits for the signal, one run finished and the others not stored."""
    while not paused.exists():  # pytest-timeout ends a run that never gets there
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    assert len(_workers(process.pid)) == (workers if workers > 1 else 0)


def _signalled(
    process: subprocess.Popen[str], how: tuple[int, int, str], ready: Callable[[], None]
) -> tuple[str, str]:
    """Once ``ready`` returns, the signal to the process's group: its one line (checked
    with the exit code) and its stderr."""
    signum, code, word = how
    try:
        ready()
        os.killpg(process.pid, signum)
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == code, stderr
    return one_error_line(stdout, stderr, prefix=f"{word}: "), stderr


SIGINT = (signal.SIGINT, 130, "interrupted")
SIGTERM = (signal.SIGTERM, 143, "terminated")


@pytest.mark.parametrize(
    ("how", "workers", "existing"),
    [
        pytest.param(SIGINT, 1, False, id="SIGINT-1-worker"),
        pytest.param(SIGINT, 2, False, id="SIGINT-2-workers"),
        pytest.param(SIGTERM, 1, False, id="SIGTERM-1-worker"),
        pytest.param(SIGTERM, 2, False, id="SIGTERM-2-workers"),
        pytest.param(SIGINT, 2, True, id="SIGINT-2-workers-old-folder"),
        pytest.param(SIGTERM, 1, True, id="SIGTERM-1-worker-old-folder"),
    ],
)
def test_signal_to_the_group(
    tmp_path: Path, paused: Path, how: tuple[int, int, str], workers: int, existing: bool
) -> None:
    word = how[2]
    out = tmp_path / "run"
    if existing:
        result = runner.invoke(
            app, ["run", str(QUICK), "--days", "2", "--replications", "1", "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
    before = tree(tmp_path)
    process = _start(out, workers, overwrite=existing, paused=paused)
    message, stderr = _signalled(
        process, how, lambda: _wait_until_working(process, paused, workers)
    )
    assert "leaked" not in stderr
    expected = f"{word}: nothing was written; {out} is as it was"
    # The run that finished before the signal is kept in a new folder's result store, for
    # the same command to resume from; an existing folder is never touched.
    kept = (
        f"{word}: finished runs are kept in {out / 'store'}; run the same command again "
        "to run only what is missing"
    )
    assert message == (expected if existing else kept), message
    deadline = time.monotonic() + 30
    while _alive_in_group(process.pid):
        assert time.monotonic() < deadline, f"left alive: {_alive_in_group(process.pid)}"
        time.sleep(0.1)
    after = tree(tmp_path)
    if message == kept:
        added = {name for name in after if name not in before}
        assert added and all(name.startswith("run/store/") for name in added), added
        assert len([name for name in added if name.startswith("run/store/runs/")]) == 1
        after = {name: data for name, data in after.items() if name in before}
    assert after == before  # no staging folder, no lock file, the old run intact


def test_without_out_the_line_says_nothing_was_written(tmp_path: Path, paused: Path) -> None:
    process = popen_as_at_a_terminal(
        [sys.executable, "-m", "sim", "run", str(QUICK), *LONG, "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_pause_env(paused),
        start_new_session=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        _wait_until_working(process, paused, 2)
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, stderr
    message = one_error_line(stdout, stderr, prefix="interrupted: ")
    assert message == "interrupted: nothing was written"
    assert list(tmp_path.iterdir()) == []


def test_sigterm_handler_is_restored_after_a_command() -> None:
    """In-process use (tests, notebooks) keeps its own SIGTERM handling afterwards."""
    before = signal.getsignal(signal.SIGTERM)
    result = runner.invoke(app, ["validate", str(QUICK)])
    assert result.exit_code == 0, result.output
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("how", [SIGINT, SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_to_a_dask_sweep_is_one_line(
    tmp_path: Path, paused: Path, how: tuple[int, int, str]
) -> None:
    """A LocalCluster's workers printed a KeyboardInterrupt traceback each, and Dask
    warned of every cancelled run and lost worker: the command's one line only now."""
    pytest.importorskip("distributed")
    word = how[2]
    out = tmp_path / "sweep"
    process = popen_as_at_a_terminal(
        [
            sys.executable, "-m", "sim", "sweep", str(QUICK),
            "--vary", "network.vans.total=70,100,140", "--days", "3",
            "--replications", "4", "--engine", "dask", "--workers", "2", "--out", str(out),
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_pause_env(paused),
        start_new_session=True,
    )  # fmt: skip

    def first_run_stored() -> None:
        # The sweep waits after its first stored run (PAUSE_AFTER_ENV), eleven to go.
        while not paused.exists():  # pytest-timeout ends a sweep that never gets there
            assert process.poll() is None, process.communicate()
            time.sleep(0.02)

    message, _ = _signalled(process, how, first_run_stored)
    kept = f"{word}: finished runs are kept in {out / 'store'}; run the same command again"
    assert message.startswith(kept)
    assert len(list((out / "store" / "runs").glob("*.parquet"))) == 1
    assert not (out / "sweep.csv").exists()
    deadline = time.monotonic() + 30
    while _alive_in_group(process.pid):
        assert time.monotonic() < deadline, f"left alive: {_alive_in_group(process.pid)}"
        time.sleep(0.1)
