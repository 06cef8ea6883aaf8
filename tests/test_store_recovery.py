"""A store part left unreadable (cut short, or empty) is set aside, not fatal.

A command is run into a store; one part is then cut to its first half (or to nothing), as
a kill -9 or a power cut on a file system that does not keep a write's order with its
rename can leave it, and the folder is put back as a killed command leaves it (the store
alone). The same command run again names the part in one warning line, moves it under
``store/unreadable/`` (nothing is lost), does that run again, and ends as an
uninterrupted command: every run once, the same numbers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from cli_checks import QUICK, subprocess_env, without_progress

from sim.experiments.runs.store import ResultStore, RunFailure

UNREADABLE_DIR = "unreadable"  # where the store sets unreadable parts aside

REPLICATIONS = 2
COMMANDS = {
    # 2 points x 2 replications; a sweep keeps no tables, so its parts are runs/ only.
    "sweep": ["sweep", "--vary", "network.vans.total=70,100"],
    # 1 point x 2 replications, with its tables (calls/, units/, ...).
    "run": ["run"],
}
RUNS = {"sweep": 4, "run": 2}


def _command(command: str, out: Path) -> subprocess.CompletedProcess[str]:
    name, *more = COMMANDS[command]
    args = [
        sys.executable, "-m", "sim", name, str(QUICK), *more, "--days", "2",
        "--replications", str(REPLICATIONS), "--out", str(out),
    ]  # fmt: skip
    return subprocess.run(args, capture_output=True, text=True, env=subprocess_env(), timeout=600)


def _results(command: str, out: Path) -> pd.DataFrame:
    """The command's KPIs per run as it wrote them (run times aside), and for ``run`` the
    calls of every replication after them."""
    if command == "sweep":
        frame = pd.read_csv(out / "sweep.csv")
        return frame.drop(columns=[c for c in frame.columns if "elapsed" in c])
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    kpis = pd.DataFrame(summary["kpis_by_replication"])
    calls = pd.read_parquet(out / "calls.parquet")
    return pd.concat([kpis, calls.astype(str)], keys=["kpis", "calls"])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    results = {}
    for command in COMMANDS:
        out = tmp_path_factory.mktemp("whole") / command
        proc = _command(command, out)
        assert proc.returncode == 0, proc.stderr
        results[command] = _results(command, out)
    return results


@pytest.mark.parametrize("command, kind", [("sweep", "runs"), ("run", "calls")])
@pytest.mark.parametrize("cut", ["half", "empty"])
def test_an_unreadable_part_is_set_aside_and_its_run_done_again(
    command: str, kind: str, cut: str, tmp_path: Path, uninterrupted: dict[str, pd.DataFrame]
) -> None:
    out = tmp_path / "out"
    assert _command(command, out).returncode == 0
    for path in out.iterdir():  # as a command killed after its runs leaves the folder
        if path.name != "store":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    store = out / "store"
    part = sorted((store / kind).glob("*.parquet"))[1]
    whole = part.read_bytes()
    part.write_bytes(whole[: len(whole) // 2] if cut == "half" else b"")
    left = part.read_bytes()

    proc = _command(command, out)

    assert proc.returncode == 0, proc.stderr
    lines = [line for line in without_progress(proc.stderr) if line.strip()]
    warnings = [line for line in lines if line.startswith("warning: ")]
    assert "Traceback" not in proc.stderr
    assert len(warnings) == 1, proc.stderr
    assert f"{kind}/{part.name}" in warnings[0]
    assert (store / UNREADABLE_DIR / kind / part.name).read_bytes() == left  # nothing lost
    runs = pd.read_parquet(store / "runs")
    assert len(runs) == RUNS[command]
    assert runs["key"].is_unique
    manifest = json.loads((store / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["finished"] == RUNS[command]
    assert manifest["counts"]["reused"] == RUNS[command] - 1  # every whole run kept
    assert len(pd.read_parquet(store / kind)) > 0  # the part written again, whole
    pd.testing.assert_frame_equal(_results(command, out), uninterrupted[command], check_exact=True)


@pytest.mark.parametrize("cut", ["half", "empty"])
def test_an_unreadable_failure_record_is_set_aside(
    cut: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ResultStore(tmp_path / "store")
    for key in ("a" * 32, "b" * 32):
        store.write_failure(RunFailure(key, 0, "nearest_station", 0, "ValueError", "boom"))
    part = store.failure_path("b" * 32)
    text = part.read_bytes()
    part.write_bytes(text[: len(text) // 2] if cut == "half" else b"")

    assert [f.key for f in store.failures()] == ["a" * 32]

    said = capsys.readouterr().err.splitlines()
    assert len(said) == 1 and said[0].startswith("warning: "), said
    assert f"failed/{part.name}" in said[0]
    assert (store.root / UNREADABLE_DIR / "failed" / part.name).is_file()
    assert not part.exists()
