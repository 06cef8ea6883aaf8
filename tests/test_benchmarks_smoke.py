"""The benchmarks run end to end on tiny inputs (no timing is asserted: timings are noisy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.benchmarks, pytest.mark.slow]


def _run(module: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", module, "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_national_benchmark_reports_ratios() -> None:
    out = _run("benchmarks.national")
    assert "model/bare ratio" in out
    assert "time per call 2 d / 1 d" in out
    assert "events counted by stepping" in out and "DIFFERENT" not in out


def test_nearest_benchmark_gives_identical_answers() -> None:
    out = _run("benchmarks.nearest")
    assert "speed-up" in out
    assert "identical answers: yes" in out
