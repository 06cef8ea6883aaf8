"""The custom-policy guide's worked example runs, and the page shows it verbatim."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"


def test_page_shows_the_example_verbatim() -> None:
    page = (ROOT / "docs" / "custom_policy.md").read_text(encoding="utf-8")
    code = (EXAMPLES / "least_loaded.py").read_text(encoding="utf-8")
    assert f"```python\n{code}```" in page


def test_example_policy_runs_from_the_cli_by_module_path() -> None:
    env = {**os.environ, "PYTHONPATH": str(EXAMPLES)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sim",
            "compare",
            "scenarios/overloaded_neighbour.yaml",
            "--policy",
            "nearest_station",
            "--policy",
            "least_loaded:LeastLoadedNearby",
            "--replications",
            "3",
            "--days",
            "2",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "least_loaded:LeastLoadedNearby" in proc.stdout


def test_example_policy_spreads_load_over_neighbours() -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        from least_loaded import LeastLoadedNearby

        from sim import load_scenario
        from sim.experiments.runs.compare import paired_difference
        from sim.experiments.runs.run import run

        scenario = load_scenario(ROOT / "scenarios" / "overloaded_neighbour.yaml")
        scenario = scenario.with_overrides(horizon={"days": 3, "warmup_days": 0.5})
        published = run(scenario, replications=5, policy="nearest_station")
        mine = run(scenario, replications=5, policy=LeastLoadedNearby)
        diff = paired_difference("on_time_arrival_rate", mine, published)
        assert diff.low > 0, diff
    finally:
        sys.path.remove(str(EXAMPLES))


def test_page_shows_the_move_up_example_verbatim() -> None:
    page = (ROOT / "docs" / "custom_policy.md").read_text(encoding="utf-8")
    code = (EXAMPLES / "busiest_first.py").read_text(encoding="utf-8")
    assert f"```python\n{code}```" in page


def test_move_up_example_beats_the_same_dispatch_without_move_up() -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        from busiest_first import BusiestFirst

        from sim import load_scenario
        from sim.experiments.runs.compare import paired_difference
        from sim.experiments.runs.run import run

        scenario = load_scenario(ROOT / "scenarios" / "moveup_bench.yaml")
        published = run(scenario, policy="nearest_station")
        backup = run(scenario, policy="nearest_station_with_backup")
        mine = run(scenario, policy=BusiestFirst)
        assert len(mine.relocations) > 0
        for reference in (published, backup):
            diff = paired_difference("on_time_arrival_rate", mine, reference)
            assert diff.low > 0, (reference.policy, diff)
    finally:
        sys.path.remove(str(EXAMPLES))
