"""Each built-in policy pinned on scenarios/quick.yaml (refresh: pytest --update-baselines)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.dispatch import REGISTRY

QUICK = Path(__file__).resolve().parents[1] / "scenarios" / "quick.yaml"


@pytest.mark.parametrize("policy", sorted(REGISTRY))
def test_policy_matches_its_baseline(policy: str, rescue_run, rescue_baseline) -> None:  # type: ignore[no-untyped-def]
    result = rescue_run(QUICK, policy)
    rescue_baseline(result, f"quick_{policy}")
