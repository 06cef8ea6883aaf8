"""The outputs of fit-demand, travel-matrix, plot and report: claimed before any work.

Issue 23: these four commands wrote where they were told whatever was there. ``report
--out`` at a device node or a FIFO replaced it with a regular file, ``fit-demand --out``
at a FIFO hung, an existing file was replaced without a word, and an unwritable place was
found only after the work. Now ``plot`` claims its folder as ``run`` does
(:class:`~sim.outputs.output_folder.OutputFolder`) and the others their files
(:class:`~sim.outputs.output_file.OutputFile`). Every case asserts the exit code, the one
line and what is on disk afterwards; the work itself is replaced by a stand-in that fails
the test if it is reached before the refusal.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cli_checks import QUICK, one_error_line, subprocess_env, tree
from matplotlib.figure import Figure
from typer.testing import CliRunner

import sim.analysis.fit_demand as fit_module
import sim.model.travel_matrix as matrix_module
import sim.outputs.report as report_module
from sim.cli import app
from sim.model.loading import load_scenario
from sim.outputs.output_file import OutputFile
from sim.outputs.output_folder import OutputFolder, open_folder
from sim.outputs.run_folder import RUN_FILES, write_run

runner = CliRunner()
COMMANDS = ("fit-demand", "travel-matrix", "plot", "report")
# The output of each command, by the name it is given here: a file, or plot's folder.
OUT_NAMES = {
    "fit-demand": "part.yaml",
    "travel-matrix": "od.csv",
    "plot": "figures",
    "report": "page.html",
}
TRACE = "t_call_h,lat,lon,fault\n1.5,34.75,113.62,major\n30.2,32.99,112.53,routine\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small run folder as ``rescue-sim run --out`` writes it."""
    from sim import run

    scenario = load_scenario(QUICK).with_overrides(
        horizon={"days": 2, "warmup_days": 0.2}, replications=1
    )
    return write_run(run(scenario), tmp_path_factory.mktemp("run") / "quick", QUICK)


@pytest.fixture
def own_run(run_dir: Path, tmp_path: Path) -> Path:
    """A copy of the run folder for a test that writes inside it (still verified)."""
    return Path(shutil.copytree(run_dir, tmp_path / "run"))


@pytest.fixture
def trace_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trace") / "trace.csv"
    path.write_text(TRACE, encoding="utf-8")
    return path


def _work(*args: object, **kwargs: object) -> None:
    raise AssertionError("the work started before the output was checked")


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading the trace, fitting, computing the matrix or drawing fails the test."""
    monkeypatch.setattr(fit_module, "read_trace", _work)
    monkeypatch.setattr(fit_module, "fit_demand", _work)
    monkeypatch.setattr(matrix_module, "implied_matrix", _work)
    monkeypatch.setattr(report_module, "figure_makers", _work)
    monkeypatch.setattr(report_module, "read_sweep_summary", _work)
    monkeypatch.setattr(report_module, "report_html", _work)


PAGE = "<!DOCTYPE html>\n<title>rescue-sim report: stand-in</title>\n"


@pytest.fixture
def quick_drawing(monkeypatch: pytest.MonkeyPatch) -> None:
    """One empty figure and a stand-in page for the run's: only the writing is tested."""
    monkeypatch.setattr(report_module, "figure_makers", lambda run, baseline=None: {"one": Figure})
    monkeypatch.setattr(report_module, "report_html", lambda run, baseline=None: PAGE)


def _args(command: str, out: Path | None, run_dir: Path, trace: Path) -> list[str]:
    given = [] if out is None else ["--out", str(out)]
    if command == "fit-demand":
        return ["fit-demand", str(trace), *given]
    if command == "travel-matrix":
        return ["travel-matrix", str(QUICK), *given]
    return [command, str(run_dir), *given]


def _fails(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    return one_error_line(result.stdout, result.stderr)


def _passes(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)


def _existing(command: str, place: Path) -> None:
    """Something already at the output place: a file, or a folder holding one."""
    if command == "plot":
        place.mkdir()
        (place / "mine.txt").write_text("mine", encoding="utf-8")
    else:
        place.write_text("mine", encoding="utf-8")


# --------------------------------------------------------------------------- existing output


@pytest.mark.parametrize("command", COMMANDS)
def test_an_existing_output_is_refused_without_overwrite(
    tmp_path: Path, run_dir: Path, trace_csv: Path, command: str, no_work: None
) -> None:
    out = tmp_path / "out" / OUT_NAMES[command]
    out.parent.mkdir()
    _existing(command, out)
    before = tree(out.parent)
    message = _fails(_args(command, out, run_dir, trace_csv))
    assert message.startswith(f"error: --out: {out} already ")
    assert "pass --overwrite to replace it" in message
    assert tree(out.parent) == before


def test_fit_demand_claims_its_weights_file_too(
    tmp_path: Path, trace_csv: Path, no_work: None
) -> None:
    """The weights CSV beside the YAML is claimed with it, before the fit."""
    weights = tmp_path / "part.prefectures.csv"
    weights.write_text("mine", encoding="utf-8")
    message = _fails(_args("fit-demand", tmp_path / "part.yaml", tmp_path, trace_csv))
    assert message == (
        f"error: --out: {weights} already exists; pass --overwrite to replace it, "
        "or choose another name"
    )
    assert tree(tmp_path) == {"part.prefectures.csv": b"mine"}


@pytest.mark.parametrize("command", COMMANDS)
def test_overwrite_replaces_an_existing_output(
    tmp_path: Path, run_dir: Path, trace_csv: Path, command: str, quick_drawing: None
) -> None:
    out = tmp_path / OUT_NAMES[command]
    _existing(command, out)
    _passes([*_args(command, out, run_dir, trace_csv), "--overwrite"])
    if command == "plot":
        assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "one.png"]
        open_folder(out, ("figures",)).close()
    else:
        assert out.read_bytes() != b"mine"
    # Nothing else is left beside it: no lock, no temporary file.
    left = {p.name for p in tmp_path.iterdir()} - {out.name, "part.prefectures.csv"}
    assert left == set()


# --------------------------------------------------------------------------- unwritable places


@pytest.mark.parametrize("command", COMMANDS)
def test_a_place_under_a_file_is_refused_before_any_work(
    tmp_path: Path, run_dir: Path, trace_csv: Path, command: str, no_work: None
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    out = blocker / "deeper" / OUT_NAMES[command]
    message = _fails(_args(command, out, run_dir, trace_csv))
    verb = "be a folder" if command == "plot" else "be written"
    assert message == f"error: --out: {out} cannot {verb}: {blocker} is a file"
    assert tree(tmp_path) == {"file": b"x"}


# --------------------------------------------------------------------------- FIFO, socket, device


def _beside_a_fifo(fifo: Path, args: list[str]) -> str:
    """The one line of ``rescue-sim ARGS`` run in a child process (a command that opened
    the FIFO could wait there for ever) while this process holds the FIFO's read end open
    without blocking: a writer's open and a small write then go through at once instead
    of waiting, so that a FIFO written to shows as a test failure, not as a hang."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "sim", *args],
            capture_output=True, text=True, env=subprocess_env(), timeout=600,
        )  # fmt: skip
    finally:
        os.close(fd)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    return one_error_line(done.stdout, done.stderr)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_fifo_is_refused_and_never_opened(
    tmp_path: Path, run_dir: Path, trace_csv: Path, command: str
) -> None:
    out = tmp_path / OUT_NAMES[command]
    os.mkfifo(out)
    message = _beside_a_fifo(out, _args(command, out, run_dir, trace_csv))
    assert f"{out} is a FIFO (named pipe), not a " in message
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_fit_demand_never_opens_a_fifo_for_its_weights(tmp_path: Path, trace_csv: Path) -> None:
    weights = tmp_path / "part.prefectures.csv"
    os.mkfifo(weights)
    message = _beside_a_fifo(
        weights, _args("fit-demand", tmp_path / "part.yaml", tmp_path, trace_csv)
    )
    assert message == (
        f"error: --out: {weights} is a FIFO (named pipe), not a regular file; name a file"
    )
    assert [p.name for p in tmp_path.iterdir()] == [weights.name]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_socket_is_refused(
    tmp_path: Path,
    run_dir: Path,
    trace_csv: Path,
    command: str,
    no_work: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # a socket's path must be short: bind a relative name
    out = Path(OUT_NAMES[command])
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(out))
        message = _fails(_args(command, out, run_dir, trace_csv))
    assert f"{out} is a socket, not a " in message
    assert stat.S_ISSOCK(os.stat(out).st_mode)


def _device(tmp_path: Path, name: str) -> Path:
    """A character device at ``tmp_path / name``: a node like /dev/null where this user
    may make one, else a symbolic link to /dev/null (never /dev/null itself, which a
    command that replaces its output would replace when run as root)."""
    path = tmp_path / name
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except OSError:
        path.symlink_to("/dev/null")
    return path


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("how", ["node", "link"])
def test_a_device_is_refused_and_stays_a_device(
    tmp_path: Path, run_dir: Path, trace_csv: Path, command: str, how: str, no_work: None
) -> None:
    if how == "node":
        out = _device(tmp_path, OUT_NAMES[command])
    else:
        out = tmp_path / OUT_NAMES[command]
        out.symlink_to("/dev/null")
    message = _fails(_args(command, out, run_dir, trace_csv))
    assert f"{out} is a character device, not a " in message
    assert stat.S_ISCHR(os.stat(out).st_mode)  # the link followed, if it is one
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


# --------------------------------------------------------------------------- a second writer


@pytest.mark.parametrize("command", COMMANDS)
def test_a_second_writer_is_refused(
    tmp_path: Path, run_dir: Path, trace_csv: Path, command: str, no_work: None
) -> None:
    out = tmp_path / OUT_NAMES[command]
    claim = OutputFolder.claim if command == "plot" else OutputFile.claim
    with claim(out):
        message = _fails(_args(command, out, run_dir, trace_csv))
    assert message.startswith(f"error: --out: {out} is being written by another rescue-sim")
    assert not out.exists()


# --------------------------------------------------------------------------- default places


def _verifies(folder: Path) -> None:
    open_folder(folder, ("run",), RUN_FILES).close()


@pytest.mark.parametrize(("command", "name"), [("plot", "figures"), ("report", "report.html")])
def test_the_default_place_renews_its_own_output(
    own_run: Path, command: str, name: str, quick_drawing: None
) -> None:
    """Run twice without --out: the second replaces what the first wrote; the run folder
    still verifies against its manifest."""
    _passes([command, str(own_run)])
    first = tree(own_run / name)
    _passes([command, str(own_run)])
    assert tree(own_run / name).keys() == first.keys()
    _verifies(own_run)
    hidden = [p.name for p in own_run.iterdir() if p.name.startswith(".")]
    assert hidden == []  # no lock, staging or temporary file left in the run folder


@pytest.mark.parametrize(("command", "name"), [("plot", "figures"), ("report", "report.html")])
def test_the_default_place_keeps_what_it_did_not_write(
    own_run: Path, command: str, name: str, quick_drawing: None
) -> None:
    """A file of the user's at the default place is not the command's own: --overwrite."""
    _existing(command, own_run / name)
    before = tree(own_run / name)
    message = _fails([command, str(own_run)])
    assert message.startswith(f"error: --out: {own_run / name} already ")
    assert tree(own_run / name) == before
    _passes([command, str(own_run), "--overwrite"])
    assert tree(own_run / name) != before
    _verifies(own_run)


def test_a_killed_writers_temporary_file_is_removed_by_the_next_claim(
    tmp_path: Path, run_dir: Path, quick_drawing: None
) -> None:
    out = tmp_path / "page.html"
    (tmp_path / ".page.html.k1ll3d.tmp").write_text("<!DOCTYPE html>\n<title>half", "utf-8")
    (tmp_path / ".other.html.k1ll3d.tmp").write_text("not this file's", encoding="utf-8")
    _passes(["report", str(run_dir), "--out", str(out)])
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.html.k1ll3d.tmp", "page.html"]
    assert out.read_text(encoding="utf-8") == PAGE
