"""The benchmarks run end to end on tiny inputs (no timing is asserted: timings are noisy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.national import summarise

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


@pytest.mark.slow  # four fresh processes that build the national network: 37 s on a busy machine
def test_national_benchmark_reports_ratios() -> None:
    out = _run("benchmarks.national")
    assert "machine: " in out and "load average at start" in out
    assert "1 d pair 3: model" in out and "2 d pair 3: model" in out
    assert "model/bare ratio (median of pairs" in out
    assert "IQR/median" in out
    assert "model time per call 2 d / 1 d" in out
    assert "events counted by stepping" in out and "DIFFERENT" not in out
    # The verdict is always printed, one way or the other.
    assert "spread: every IQR within" in out or "SPREAD TOO WIDE TO CONCLUDE" in out


def test_the_verdict_follows_the_spread_of_the_pairwise_ratios() -> None:
    # Ratios bare/model of 0.50, 0.50, 0.50, 0.50: no spread.
    steady = {"model_s": [2.0] * 4, "bare_s": [1.0] * 4}
    s = summarise(steady, max_iqr=0.10)
    assert s["median"] == 0.5 and s["iqr_share"] == 0.0 and s["conclusive"]
    # Ratios 0.40, 0.45, 0.55, 0.60: quartiles 0.4375 and 0.5625, an IQR of 25% of 0.5.
    wide = {"model_s": [2.0] * 4, "bare_s": [0.8, 0.9, 1.1, 1.2]}
    s = summarise(wide, max_iqr=0.10)
    assert round(s["median"], 12) == 0.5 and round(s["iqr_share"], 12) == 0.25
    assert not s["conclusive"]
    assert summarise(wide, max_iqr=0.30)["conclusive"]


def test_latency_benchmark_times_whole_processes() -> None:
    out = _run("benchmarks.latency")
    assert "machine: " in out
    assert "rescue-sim --help" in out and "wall median s" in out and "CPU median s" in out


def test_nearest_benchmark_gives_identical_answers() -> None:
    out = _run("benchmarks.nearest")
    assert "speed-up" in out
    assert "identical answers: yes" in out
