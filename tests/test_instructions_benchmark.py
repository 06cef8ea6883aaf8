"""benchmarks/instructions.py: callgrind's counts by part, the run's bytecodes by phase.

Counts are not asserted (they move with the code); what is checked is that the parts are
all counted and reported, and that every bytecode of the run is given a phase.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.instructions import (
    PHASES,
    Callgrind,
    _call_lines,
    bytecodes_by_phase,
    read_dumps,
)
from sim.model.simulation import Model

ROOT = Path(__file__).resolve().parents[1]


def test_client_requests_do_nothing_outside_valgrind() -> None:
    callgrind = Callgrind()
    # Natively the request sequence is a no-op that returns its default answer, 0 (a
    # wrong byte in it would crash the process or return what rdx held).
    assert callgrind.zero() == 0
    assert callgrind.dump("nothing") == 0


def test_every_section_of_a_call_has_its_phase() -> None:
    lines = _call_lines(Model._serve_calls.__code__)
    phases = set(lines.values())
    assert {"hotline", "dispatch", "drive", "on site", "records"} <= phases
    # A record write is a record, wherever it stands.
    source = Path(Model._serve_calls.__code__.co_filename).read_text().splitlines()
    for number, phase in lines.items():
        if source[number - 1].strip().startswith("rec."):
            assert phase == "records"


def test_the_run_is_split_into_the_named_phases() -> None:
    split = bytecodes_by_phase(0.1)
    assert split["calls"] > 0 and split["bare"] > 0
    assert set(split["model"]) <= set(PHASES)
    assert {"call source", "hotline", "dispatch", "drive", "records", "events"} <= set(
        split["model"]
    )


def test_dumps_are_read_by_their_names(tmp_path: Path) -> None:
    for k, (name, total) in enumerate((("model run", 1234), ("bare run", 99)), start=1):
        (tmp_path / f"callgrind.out.{k}").write_text(
            f"version: 1\ndesc: Trigger: Client Request: {name}\nevents: Ir\nsummary: {total}\n"
        )
    parts = read_dumps(tmp_path)
    assert {name: ir for name, (ir, _) in parts.items()} == {"model run": 1234, "bare run": 99}


@pytest.mark.benchmarks
@pytest.mark.slow  # the national network built under valgrind: some 30 s on a busy machine
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_instructions_benchmark_counts_every_part() -> None:
    # An hour and a bit of the national day (some 50 calls): every part is counted and
    # reported whatever the horizon, and the imports and the network build under valgrind,
    # which a longer horizon does not shorten, are most of the cost already.
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.instructions", "--days", "0.05", "--no-time"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for part in ("model building", "model run", "model after the run", "bare run"):
        assert part in out
    assert "model's own instructions per call (model run - bare run)" in out
    assert "the run by phase, in CPython bytecodes per call" in out
