"""Each built-in policy pinned on scenarios/quick.yaml, and move-up pinned on its bench
(refresh: pytest --update-baselines)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.experiments.runs.compare import paired_difference
from sim.model.dispatch import REGISTRY

QUICK = Path(__file__).resolve().parents[1] / "scenarios" / "quick.yaml"
MOVEUP_BENCH = Path(__file__).resolve().parents[1] / "scenarios" / "moveup_bench.yaml"


@pytest.mark.parametrize("policy", sorted(REGISTRY))
def test_policy_matches_its_baseline(policy: str, rescue_run, rescue_baseline) -> None:  # type: ignore[no-untyped-def]
    result = rescue_run(QUICK, policy)
    assert len(result.replications) == result.scenario.replications
    # Raises KPIAssertionError, naming KPI, baseline, new value and interval, on a regression.
    rescue_baseline(result, f"quick_{policy}")


@pytest.mark.parametrize("policy", ["compliance_table", "dynamic_mexclp"])
def test_move_up_beats_the_published_rule_on_its_bench(
    policy: str, rescue_run, rescue_baseline
) -> None:  # type: ignore[no-untyped-def]
    published = rescue_run(MOVEUP_BENCH, "nearest_station")
    moveup = rescue_run(MOVEUP_BENCH, policy)
    # Paired by replication: the same calls under both policies (common random numbers).
    diff = paired_difference("on_time_arrival_rate", moveup, published)
    assert diff.low > 0, diff
    # And move-up itself pays: the same dispatch rule without it does worse.
    backup = rescue_run(MOVEUP_BENCH, "nearest_station_with_backup")
    assert paired_difference("on_time_arrival_rate", moveup, backup).low > 0
    assert moveup.summary.loc["relocations_per_day", "mean"] > 0
    rescue_baseline(moveup, f"moveup_bench_{policy}")
