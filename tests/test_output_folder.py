"""Output folders: checked before any simulation, written as a unit, locked, verified.

Issue 13: ``--out`` at a file, under a file or at a read-only place was found only after
the whole run, with a traceback; a rerun could leave a mix of two runs that ``report``
rendered; two runs could write one folder at once. Every case here asserts the exit
code, the one line, and what is on disk afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_checks import QUICK, one_error_line, subprocess_env, tree
from typer.testing import CliRunner

import sim.experiments.runs.executor as engine_module
from sim.cli import app
from sim.errors import CorruptFileError, OutputError
from sim.outputs import output_folder
from sim.outputs.output_folder import FolderLock, OutputFolder, open_folder
from sim.outputs.run_folder import read_run

runner = CliRunner()
SMALL = ["--days", "2", "--replications", "1"]


def _no_simulation(*args: object, **kwargs: object) -> None:
    raise AssertionError("a simulation started before the output was checked")


@pytest.fixture
def no_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any replication run fails the test: the error must come before the work."""
    monkeypatch.setattr(engine_module.Experiment, "execute", _no_simulation)


def _commands(out: Path) -> dict[str, list[str]]:
    return {
        "run": ["run", str(QUICK), *SMALL, "--out", str(out)],
        "compare": [
            "compare", str(QUICK), *SMALL, "--policy", "nearest_station",
            "--policy", "nearest_idle_van", "--out", str(out),
        ],
        "sweep": [
            "sweep", str(QUICK), *SMALL, "--vary", "network.vans.total=90,110", "--out", str(out),
        ],
    }  # fmt: skip


def _fails(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    return one_error_line(result.stdout, result.stderr)


def _read_only_dir(tmp_path: Path) -> Path:
    """A folder this process cannot write in (root ignores modes: then sysfs, if present)."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if not os.access(folder, os.W_OK):
        return folder
    try:
        (Path("/sys") / ".rescue-sim-probe").open("w").close()
    except OSError:
        return Path("/sys")
    pytest.skip("no read-only place for this user")


@pytest.mark.parametrize("command", ["run", "compare", "sweep"])
def test_out_is_a_file(tmp_path: Path, command: str, no_simulation: None) -> None:
    target = tmp_path / "results"
    target.write_text("keep me\n")
    message = _fails(_commands(target)[command])
    assert message == f"error: --out: {target} is a file, not a folder"
    assert tree(tmp_path) == {"results": b"keep me\n"}


@pytest.mark.parametrize("command", ["run", "compare", "sweep"])
def test_out_under_a_file(tmp_path: Path, command: str, no_simulation: None) -> None:
    blocker = tmp_path / "results"
    blocker.write_text("keep me\n")
    message = _fails(_commands(blocker / "deeper" / "run")[command])
    assert message.startswith("error: --out: ")
    assert f"{blocker} is a file" in message
    assert tree(tmp_path) == {"results": b"keep me\n"}


@pytest.mark.parametrize("command", ["run", "compare", "sweep"])
def test_out_in_a_read_only_place(tmp_path: Path, command: str, no_simulation: None) -> None:
    place = _read_only_dir(tmp_path)
    before = sorted(p.name for p in place.iterdir())
    message = _fails(_commands(place / "results")[command])
    assert message.startswith(f"error: --out: cannot write in {place}: ")
    assert sorted(p.name for p in place.iterdir()) == before


def test_parents_made_for_a_refused_run_are_removed(tmp_path: Path, no_simulation: None) -> None:
    scenario = tmp_path / "big.yaml"
    scenario.write_text(QUICK.read_text() + "\n")
    out = tmp_path / "a" / "b" / "run"
    # Refused by the work estimate after the folder was claimed: nothing may remain.
    result = runner.invoke(
        app, ["run", str(scenario), "--days", "3000", "--out", str(out)],
        env={"RESCUE_SIM_MEMORY_LIMIT": "1M"},
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    one_error_line(result.stdout, result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.yaml"]


# --------------------------------------------------------------------------- existing folder


@pytest.fixture(scope="module")
def old_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("old") / "run"
    result = runner.invoke(app, ["run", str(QUICK), *SMALL, "--seed", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _copy_of(folder: Path, tmp_path: Path) -> Path:
    copy = tmp_path / folder.name
    copy.mkdir(parents=True)
    for name, data in tree(folder).items():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes(data)
    return copy


def test_existing_folder_is_refused_without_overwrite(
    tmp_path: Path, old_run: Path, no_simulation: None
) -> None:
    out = _copy_of(old_run, tmp_path)
    before = tree(tmp_path)
    message = _fails(["run", str(QUICK), *SMALL, "--out", str(out)])
    assert message.startswith(f"error: --out: {out} already holds a run written ")
    assert "--overwrite" in message
    assert tree(tmp_path) == before


def test_a_folder_of_other_files_is_refused(tmp_path: Path, no_simulation: None) -> None:
    out = tmp_path / "notes"
    out.mkdir()
    (out / "todo.txt").write_text("x")
    message = _fails(["run", str(QUICK), *SMALL, "--out", str(out)])
    assert message == (
        f"error: --out: {out} already holds 1 entry (todo.txt); pass --overwrite to replace "
        "it, or choose another folder"
    )
    assert tree(tmp_path) == {"notes/todo.txt": b"x"}


def test_overwrite_replaces_the_whole_folder(tmp_path: Path, old_run: Path) -> None:
    out = _copy_of(old_run, tmp_path)
    (out / "stray.txt").write_text("from before")
    result = runner.invoke(
        app, ["run", str(QUICK), *SMALL, "--seed", "2", "--out", str(out), "--overwrite"]
    )
    assert result.exit_code == 0, result.output
    with open_folder(out, ("run",)) as folder:
        assert folder.manifest["seed"] == 2
        # The result store (store/) lives in the folder too: the runs a rerun reuses.
        files = [name for name in folder.manifest["files"] if not name.startswith("store/")]
        assert sorted(files) == [
            "agents.parquet",
            "calls.parquet",
            "summary.json",
            "units.parquet",
        ]
    assert not (out / "stray.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging, no lock left


def test_empty_existing_folder_is_used(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    result = runner.invoke(app, ["run", str(QUICK), *SMALL, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert read_run(out)[2]["seed"] == 7


def test_manifest_names_every_file_the_command_and_the_seed(old_run: Path) -> None:
    manifest = json.loads((old_run / "manifest.json").read_text())
    assert manifest["kind"] == "run"
    assert manifest["seed"] == 1
    assert isinstance(manifest["command"], list)
    for name in ("calls.parquet", "units.parquet", "agents.parquet", "summary.json"):
        entry = manifest["files"][name]
        assert entry["bytes"] == (old_run / name).stat().st_size
        assert len(entry["sha256"]) == 64


# --------------------------------------------------------------------------- lock


def test_a_locked_folder_is_refused_before_any_work(tmp_path: Path, no_simulation: None) -> None:
    out = tmp_path / "run"
    with OutputFolder.claim(out):
        message = _fails(["run", str(QUICK), *SMALL, "--out", str(out)])
        assert message.startswith(
            f"error: --out: {out} is being written by another rescue-sim (pid "
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_lock_is_free_again_after_a_refusal(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with OutputFolder.claim(out), pytest.raises(OutputError):
        OutputFolder.claim(out)
    with OutputFolder.claim(out) as folder:
        (folder.staging / "a.txt").write_text("a")
        folder.commit(kind="test")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_plot_waits_for_no_writer(tmp_path: Path, old_run: Path) -> None:
    out = _copy_of(old_run, tmp_path)
    with FolderLock(out.resolve()):
        message = _fails(["plot", str(out)])
    assert "being written by another rescue-sim" in message
    assert not (out / "figures").exists()


def _wait_for(path: Path, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_two_runs_on_one_folder_at_once(tmp_path: Path) -> None:
    """The second run is refused while the first writes; the folder is the first run's.

    The first run is paused (SIGSTOP) as soon as it holds the lock, so that the second
    one meets it there however slow or fast the machine is.
    """
    out = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "-m", "sim", "run", str(QUICK), *SMALL, "--seed", "11",
         "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env(),
    )  # fmt: skip
    try:
        _wait_for(tmp_path / ".run.lock")
        first.send_signal(signal.SIGSTOP)
        second = subprocess.run(
            [sys.executable, "-m", "sim", "run", str(QUICK), *SMALL, "--seed", "12",
             "--out", str(out), "--overwrite"],
            capture_output=True, text=True, env=subprocess_env(), timeout=300,
        )  # fmt: skip
        first.send_signal(signal.SIGCONT)
        _, stderr = first.communicate(timeout=600)
    finally:
        first.kill()
    assert first.returncode == 0, stderr
    assert second.returncode == 2, second.stderr
    message = one_error_line(second.stdout, second.stderr)
    assert "is being written by another rescue-sim" in message
    assert read_run(out)[2]["seed"] == 11
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# --------------------------------------------------------------------------- readers


def _tampered(tmp_path: Path, old_run: Path, name: str, change: str) -> Path:
    out = _copy_of(old_run, tmp_path)
    path = out / name
    data = path.read_bytes()
    if change == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif change == "flip":  # one byte changed, the size kept
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
    elif change == "garbage":
        path.write_bytes(bytes(range(256)) * (len(data) // 256) + b"\xff" * (len(data) % 256))
    elif change == "delete":
        path.unlink()
    return out


@pytest.mark.parametrize("command", ["plot", "report"])
@pytest.mark.parametrize(
    ("name", "change", "fragment"),
    [
        ("calls.parquet", "truncate", "truncated or changed"),
        ("units.parquet", "flip", "SHA-256 differs"),
        ("summary.json", "garbage", "SHA-256 differs"),
        ("summary.json", "truncate", "truncated or changed"),
        ("calls.parquet", "delete", "missing (the manifest lists it)"),
        ("manifest.json", "delete", "missing: not a finished rescue-sim output folder"),
        ("manifest.json", "truncate", "corrupt: not JSON"),
        ("manifest.json", "garbage", "corrupt: not JSON"),
    ],
)
def test_corrupt_file_is_one_line_naming_it(
    tmp_path: Path, old_run: Path, command: str, name: str, change: str, fragment: str
) -> None:
    out = _tampered(tmp_path, old_run, name, change)
    before = tree(out)
    message = _fails([command, str(out)])
    assert message.startswith(f"error: {out / name}: "), message
    assert fragment in message
    assert tree(out) == before  # no figures, no report from a bad folder


def test_a_mix_of_two_runs_is_refused(tmp_path: Path, old_run: Path) -> None:
    """calls.parquet of one run beside summary.json of another: the issue's mixed folder."""
    other = tmp_path / "other"
    result = runner.invoke(app, ["run", str(QUICK), *SMALL, "--seed", "5", "--out", str(other)])
    assert result.exit_code == 0, result.output
    mixed = _copy_of(old_run, tmp_path / "mixed_parent")
    (mixed / "calls.parquet").write_bytes((other / "calls.parquet").read_bytes())
    message = _fails(["report", str(mixed)])
    assert message.startswith(f"error: {mixed / 'calls.parquet'}: ")
    assert not (mixed / "report.html").exists()


def test_foreign_files_with_a_forged_manifest(tmp_path: Path, old_run: Path) -> None:
    """A manifest that matches files which are not rescue-sim's: named by the reader."""
    out = _copy_of(old_run, tmp_path)
    (out / "summary.json").write_text('{"hello": 1}\n')
    manifest = output_folder.manifest_for(out, kind="run", command=[], seed=1)
    (out / "manifest.json").write_text(json.dumps(manifest))
    message = _fails(["report", str(out)])
    assert message == f"error: {out / 'summary.json'}: not a rescue-sim file: no 'kpis' dict"


def test_not_a_folder_and_missing_folder(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("x")
    assert _fails(["plot", str(file)]) == f"error: {file}: a file, not an output folder"
    missing = tmp_path / "missing"
    assert _fails(["report", str(missing)]) == f"error: {missing}: folder not found"


def test_plot_of_a_comparison_folder_names_its_kind(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    result = runner.invoke(app, _commands(out)["compare"])
    assert result.exit_code == 0, result.output
    message = _fails(["plot", str(out)])
    assert message == f"error: {out}: a comparison folder, not a run folder"


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "sweep"
    result = runner.invoke(app, _commands(out)["sweep"])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("change", ["truncate", "garbage"])
def test_corrupt_sweep_summary(tmp_path: Path, sweep_dir: Path, change: str) -> None:
    out = _tampered(tmp_path, sweep_dir, "sweep_summary.csv", change)
    message = _fails(["plot", str(out)])
    assert message.startswith(f"error: {out / 'sweep_summary.csv'}: ")


def test_plot_and_report_outputs_checked_first(tmp_path: Path, old_run: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    message = _fails(["report", str(old_run), "--out", str(blocker / "report.html")])
    assert (
        message == f"error: --out: {blocker / 'report.html'} cannot be written: {blocker} is a file"
    )
    message = _fails(["plot", str(old_run), "--out", str(blocker)])
    assert message == f"error: --out: {blocker} is a file, not a folder"
    assert tree(tmp_path) == {"file": b"x"}


def test_read_run_raises_the_projects_error(tmp_path: Path, old_run: Path) -> None:
    out = _tampered(tmp_path, old_run, "calls.parquet", "truncate")
    with pytest.raises(CorruptFileError) as info:
        read_run(out)
    assert info.value.file == str(out / "calls.parquet")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"seed": 7, "days": 1, "kpis": {"on_time', "cannot be read (Unterminated string"),
        ("\u00ff\u0000", "cannot be read ("),
        ('{"seed": 7, "days": 1, "kpis": [1, 2]}', "is not a rescue-sim baseline"),
    ],
    ids=["truncated", "garbage", "foreign"],
)
def test_corrupt_baseline_is_one_line_naming_it(tmp_path: Path, text: str, fragment: str) -> None:
    from sim import load_scenario, run
    from sim.experiments.testing import KPIAssertionError, check_baseline

    scenario = load_scenario(QUICK).with_overrides(horizon={"days": 1, "warmup_days": 0.1})
    path = tmp_path / "baseline.json"
    path.write_text(text, encoding="latin-1")
    with pytest.raises(KPIAssertionError) as info:
        check_baseline(run(scenario, replications=1), path)
    message = str(info.value)
    assert message.startswith(f"baseline {path} ")
    assert fragment in message
    assert message.endswith("rewrite it with pytest --update-baselines")
    assert "\n" not in message


# --------------------------------------------------------------------------- swap


@pytest.fixture
def no_exchange(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(output_folder, "_exchange", lambda a, b: False)
    yield


def _write_folder(path: Path, text: str, overwrite: bool = True) -> None:
    with OutputFolder.claim(path, overwrite=overwrite) as folder:
        (folder.staging / "data.txt").write_text(text)
        folder.commit(kind="test", seed=len(text))


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two_renames"])
def test_commit_replaces_an_old_folder(
    tmp_path: Path, exchange: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not exchange:
        monkeypatch.setattr(output_folder, "_exchange", lambda a, b: False)
    target = tmp_path / "out"
    _write_folder(target, "old")
    _write_folder(target, "new!")
    with open_folder(target, ("test",)) as folder:
        assert folder.manifest["seed"] == 4
        with folder.open("data.txt") as data:
            assert data.read() == b"new!"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_swap_that_died_halfway_is_undone(tmp_path: Path, no_exchange: None) -> None:
    """The two-rename swap killed between its renames: readers and the next writer see the old."""
    target = tmp_path / "out"
    _write_folder(target, "old")
    target.rename(tmp_path / ".out.previous")  # what the first rename leaves
    (tmp_path / ".out.partial-x").mkdir()  # and the staged new folder
    with open_folder(target, ("test",)) as folder, folder.open("data.txt") as data:
        assert data.read() == b"old"
    with OutputFolder.claim(target, overwrite=True):
        assert (target / "data.txt").read_text() == "old"  # put back under the lock
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_abort_leaves_the_old_folder(tmp_path: Path) -> None:
    target = tmp_path / "out"
    _write_folder(target, "old")
    before = tree(tmp_path)
    with OutputFolder.claim(target, overwrite=True) as folder:
        (folder.staging / "data.txt").write_text("half")
        # leaving without commit: an interruption
    assert tree(tmp_path) == before


def test_a_resumable_store_is_kept_and_extended(tmp_path: Path) -> None:
    """The hook for a resumable experiment store: the old parts are adopted, not redone."""
    target = tmp_path / "experiment"
    with OutputFolder.claim(target) as folder:
        (folder.staging / "store").mkdir()
        (folder.staging / "store" / "part-0.parquet").write_bytes(b"first")
        folder.commit(kind="test")
    with pytest.raises(OutputError, match="already holds"):
        OutputFolder.claim(target, resumable=lambda path: False)
    with OutputFolder.claim(target, resumable=lambda path: (path / "store").is_dir()) as folder:
        assert folder.resuming
        folder.adopt("store")
        (folder.staging / "store" / "part-1.parquet").write_bytes(b"second")
        folder.commit(kind="test")
    with open_folder(target, ("test",)) as verified:
        assert sorted(verified.manifest["files"]) == [
            "store/part-0.parquet",
            "store/part-1.parquet",
        ]
        assert verified.open("store/part-0.parquet").read() == b"first"
