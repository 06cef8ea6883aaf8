"""benchmarks/parallel.py runs end to end on tiny inputs (no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # four fresh processes, each importing the package: 20-60 s
def test_parallel_benchmark_reports_speed_up_and_memory() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.parallel", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "speed-up, whole command (wall):" in out
    assert "identical KPIs with 1 and 2 workers: yes" in out
    assert "peak RSS, 5 replications / 1:" in out
    assert "control, two processes at once (median):" in out
    assert "load average (1, 5, 15 min) before:" in out
