"""Each built-in policy pinned on scenarios/quick.yaml (refresh: pytest --update-baselines)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.model.dispatch import REGISTRY

QUICK = Path(__file__).resolve().parents[1] / "scenarios" / "quick.yaml"


@pytest.mark.parametrize("policy", sorted(REGISTRY))
def test_policy_matches_its_baseline(policy: str, rescue_run, rescue_baseline) -> None:  # type: ignore[no-untyped-def]
    result = rescue_run(QUICK, policy)
    assert len(result.replications) == result.scenario.replications
    # Raises KPIAssertionError, naming KPI, baseline, new value and interval, on a regression.
    rescue_baseline(result, f"quick_{policy}")
