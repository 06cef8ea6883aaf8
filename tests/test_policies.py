"""Dispatch policies compared on common random numbers, and the regression helpers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim import load_scenario
from sim.analysis.kpis import KpiSettings, call_kpis_by, confidence_interval
from sim.experiments.runs.compare import compare, paired_difference
from sim.experiments.testing import (
    KPIAssertionError,
    assert_kpi_at_least,
    assert_no_worse,
    check_baseline,
    write_baseline,
)
from sim.model.dispatch import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quick.yaml"
OVERLOADED = ROOT / "scenarios" / "overloaded_neighbour.yaml"


@pytest.fixture(scope="module")
def overloaded():  # type: ignore[no-untyped-def]
    scenario = load_scenario(OVERLOADED)
    return compare(
        scenario, ["nearest_station", "nearest_station_with_backup", "priority", "preparedness"]
    )


def test_identical_policies_differ_by_exactly_zero() -> None:
    scenario = load_scenario(QUICK).with_overrides(horizon={"days": 3, "warmup_days": 0.5})
    comparison = compare(scenario, ["nearest_station", "nearest_station"], replications=3)
    table = comparison.table()
    second = table[table["policy"] != "nearest_station"]
    assert len(second) > 10
    assert (second["diff"] == 0).all()
    assert (second["diff_low"] == 0).all() and (second["diff_high"] == 0).all()
    assert not second["significant"].any()


def test_backup_beats_nearest_station_when_a_neighbour_is_idle(overloaded) -> None:  # type: ignore[no-untyped-def]
    results = overloaded.results
    diff = paired_difference(
        "on_time_arrival_rate", results["nearest_station_with_backup"], results["nearest_station"]
    )
    assert diff.significant and diff.low > 0.2, diff
    # The published rule leaves the neighbour's four vans nearly idle.
    units = results["nearest_station"].units
    assert set(units["van"]) == set(range(5))


def _segment_on_time(result, segment: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    """On-time arrival of one segment, per replication, censoring as the KPI does."""
    settings = KpiSettings.of(result.scenario)
    return np.asarray(
        [
            call_kpis_by(rep.calls, "segment", settings).loc[segment, "on_time_arrival_rate"]
            for rep in result.replications
        ]
    )


def test_priority_raises_the_fleet_segments_on_time_rate(overloaded) -> None:  # type: ignore[no-untyped-def]
    fleet_priority = _segment_on_time(overloaded.results["priority"], "fleet")
    fleet_published = _segment_on_time(overloaded.results["nearest_station"], "fleet")
    ci = confidence_interval(fleet_priority - fleet_published)
    assert ci.low > 0, ci
    # ... paid for by the individual owners, who now wait behind fleets.
    individual = _segment_on_time(overloaded.results["priority"], "individual")
    assert individual.mean() < fleet_priority.mean()


def test_preparedness_keeps_promises_better_than_the_published_rule(overloaded) -> None:  # type: ignore[no-untyped-def]
    assert_no_worse(
        overloaded.results["preparedness"],
        overloaded.results["nearest_station"],
        "on_time_arrival_rate",
    )


def test_assert_no_worse_fails_with_the_interval(overloaded) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(KPIAssertionError, match=r"on_time_arrival_rate: nearest_station is worse"):
        assert_no_worse(
            overloaded.results["nearest_station"],
            overloaded.results["nearest_station_with_backup"],
            "on_time_arrival_rate",
            margin=0.01,
        )


def test_kpi_at_least(overloaded) -> None:  # type: ignore[no-untyped-def]
    backup = overloaded.results["nearest_station_with_backup"]
    assert_kpi_at_least(backup, "on_time_arrival_rate", 0.8)
    with pytest.raises(
        KPIAssertionError, match=r"on_time_arrival_rate = .* below the required 0\.5"
    ):
        assert_kpi_at_least(overloaded.results["nearest_station"], "on_time_arrival_rate", 0.5)


def test_a_regressed_baseline_names_kpi_baseline_new_value_and_interval(
    overloaded, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    path = write_baseline(overloaded.results["nearest_station_with_backup"], tmp_path / "b.json")
    # The good policy's own baseline passes...
    check_baseline(overloaded.results["nearest_station_with_backup"], path)
    # ... and the published rule, pretending to be the same policy, fails it.
    stored = json.loads(path.read_text())
    with pytest.raises(KPIAssertionError) as failure:
        check_baseline(overloaded.results["nearest_station"], path, kpis=["on_time_arrival_rate"])
    message = str(failure.value)
    baseline_mean = stored["kpis"]["on_time_arrival_rate"]["mean"]
    assert "on_time_arrival_rate" in message
    assert f"baseline {baseline_mean:.4g}" in message
    assert "new " in message and "95% CI" in message


def test_compare_cli_prints_paired_table_and_writes_files(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sim",
            "compare",
            str(QUICK),
            "--policy",
            "nearest_station",
            "--policy",
            "nearest_idle_van",
            "--policy",
            "nearest_station_with_backup",
            "--replications",
            "2",
            "--days",
            "2",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    for name in (
        "on_time_arrival_rate",
        "nearest_idle_van",
        "nearest_station_with_backup",
        "Δ 95% interval",
    ):
        assert name in proc.stdout
    rows = json.loads((out / "comparison.json").read_text())["rows"]
    assert {r["policy"] for r in rows} == {
        "nearest_station",
        "nearest_idle_van",
        "nearest_station_with_backup",
    }
    assert (out / "comparison.csv").read_text().startswith("kpi,policy,mean")


@pytest.mark.parametrize("policy", sorted(REGISTRY))
def test_every_registered_policy_runs_and_serves_calls(policy: str) -> None:
    from sim.experiments.runs.run import run

    scenario = load_scenario(OVERLOADED).with_overrides(horizon={"days": 1, "warmup_days": 0.1})
    result = run(scenario, replications=1, policy=policy)
    calls = result.calls
    assert (calls["final_state"] == "repaired").sum() > 5
    assert REGISTRY[policy].__doc__


def test_contractor_overflow_hands_late_jobs_to_local_shops() -> None:
    scenario = load_scenario(OVERLOADED)
    result = compare(scenario, ["nearest_station", "contractor_overflow"]).results
    shops = result["contractor_overflow"]
    calls = shops.calls
    served_by_shop = calls[calls["contractor"]]
    assert len(served_by_shop) > 0
    assert (served_by_shop["van"] == -1).all() and served_by_shop["arrived_h"].notna().all()
    assert (calls.loc[~calls["contractor"], "contractor"] == False).all()  # noqa: E712
    cost = shops.summary.loc["contractor_cost_cny_per_day", "mean"]
    rate = shops.summary.loc["contractor_rate", "mean"]
    assert cost > 0 and 0 < rate < 1
    assert_no_worse(shops, result["nearest_station"], "on_time_arrival_rate")
    diff = paired_difference("on_time_arrival_rate", shops, result["nearest_station"])
    assert diff.low > 0, diff


def test_priority_hotline_answers_fleets_first() -> None:
    from sim import parse_scenario
    from sim.experiments.runs.run import run

    text = (ROOT / "scenarios" / "quick.yaml").read_text(encoding="utf-8")
    # One agent for a provincial volume: callers queue all day.
    scenario = parse_scenario(text, ROOT / "scenarios" / "quick.yaml").with_overrides(
        hotline={"shifts": [{"start_h": 0, "end_h": 24, "agents": 1}], "patience_min": None},
        horizon={"days": 2, "warmup_days": 0.25},
    )
    waits = {}
    for policy in ("nearest_station", "priority"):
        calls = run(scenario, replications=3, policy=policy).calls
        answered = calls[calls["answered_h"].notna()]
        waits[policy] = answered.groupby("segment", observed=True)["hotline_wait_h"].mean()
    assert waits["priority"]["fleet"] < 0.5 * waits["priority"]["individual"]
    # First come first served treats the segments alike (within noise).
    ratio = waits["nearest_station"]["fleet"] / waits["nearest_station"]["individual"]
    assert 0.6 < ratio < 1.6
