"""A full disk (issue 27): exit 2 and one line naming the file, what was finished kept.

The folder's files are written last, after the runs: a disk that fills up then is one
line naming the file being written; the output folder is as it was, the finished runs
stay in its store and the same command again, with room, only writes. A disk that fills
up under a run's tables stops the command the same way. The second test needs a tiny
file system of its own (root may mount one; it is skipped elsewhere).
"""

from __future__ import annotations

import errno
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_checks import QUICK, one_error_line, tree
from typer.testing import CliRunner

import sim.outputs.run_folder as run_folder
from sim.cli import app
from sim.experiments.runs.store import ResultStore

runner = CliRunner()
SWEEP = ["sweep", str(QUICK), "--days", "2", "--replications", "2"]
SWEEP += ["--vary", "network.vans.total=70,140"]


def test_a_disk_full_while_the_folder_is_written_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_json = run_folder._write_json

    def full(path: Path, payload: dict[str, Any]) -> None:
        path.write_text("{", encoding="utf-8")  # part of it, then no room
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_folder, "_write_json", full)
    out = tmp_path / "sweep"
    result = runner.invoke(app, [*SWEEP, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert one_error_line(result.stdout, result.stderr) == (
        f"error: {out / 'sweep.json'}: No space left on device; {out} is as it was; the "
        f"finished runs are kept in {out / 'store'}: free some space and run the same "
        "command again"
    )
    assert {name.split("/")[0] for name in tree(out)} == {"store"}  # no sweep.csv, no .json
    # With room again, the same command writes the folder from the runs kept.
    monkeypatch.setattr(run_folder, "_write_json", write_json)
    again = runner.invoke(app, [*SWEEP, "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert ResultStore(out / "store").read_manifest()["counts"]["reused"] == 4
    assert (out / "sweep.json").is_file()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 kB file system: a sweep's store fits, a run's tables do not."""
    place = tmp_path / "tiny"
    place.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(place)],
        capture_output=True,
        check=False,
    )
    if mount.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield place
    finally:
        subprocess.run(["umount", "--lazy", str(place)], check=False)


def test_a_disk_full_under_a_runs_tables_is_one_line(tiny_disk: Path) -> None:
    out = tiny_disk / "run"
    args = ["run", str(QUICK), "--days", "2", "--replications", "2", "--force"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    line = one_error_line(result.stdout, result.stderr)
    assert line.startswith(f"error: cannot write {out / 'store' / 'calls'}/"), line
    assert line.endswith("No space left on device"), line
    assert not (out / "summary.json").exists()
    shutil.rmtree(out)
    # The sweep's store fits; its folder's files do not.
    out = tiny_disk / "sweep"
    result = runner.invoke(app, [*SWEEP, "--out", str(out)])
    assert result.exit_code == 2, result.output
    line = one_error_line(result.stdout, result.stderr)
    assert line.startswith(f"error: {out}/sweep"), line
    assert ": No space left on device; " in line
    assert {name.split("/")[0] for name in tree(out)} == {"store"}
