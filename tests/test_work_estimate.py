"""The work estimate: calls from the scenario, costs per call measured on this build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_checks import QUICK

from sim import Scenario, load_scenario
from sim.errors import UserInputError, WorkLimitError
from sim.experiments.runs import work_estimate as estimate
from sim.experiments.runs.work_estimate import (
    Calibration,
    Limits,
    blame,
    check_work,
    estimate_work,
    parse_duration,
    parse_size,
)
from sim.model.call_volume import expected_calls_per_day

COST = Calibration(
    seconds_per_call=1e-4,
    model_bytes_per_call=2000.0,
    table_bytes_per_call=400.0,
    disk_bytes_per_call=200.0,
    process_bytes=1e8,
    build="test",
)


@pytest.fixture(scope="module")
def quick() -> Scenario:
    return load_scenario(QUICK)


def test_calls_are_the_scenarios_expected_calls(quick: Scenario) -> None:
    work = estimate_work([(quick, 3)], calibration=COST)
    per_replication = expected_calls_per_day(quick) * quick.horizon.days
    assert work.calls_per_replication == pytest.approx(per_replication)
    assert work.calls_total == pytest.approx(3 * per_replication)
    assert work.seconds == pytest.approx(3 * per_replication * 1e-4)
    assert work.disk_bytes == 0.0  # nothing written


def test_memory_counts_tables_kept_and_written(quick: Scenario) -> None:
    kept = estimate_work([(quick, 2)], calibration=COST)
    written = estimate_work([(quick, 2)], writes_tables=True, calibration=COST)
    dropped = estimate_work([(quick, 2)], keep_tables=False, calibration=COST)
    tables = kept.calls_total * COST.table_bytes_per_call
    assert kept.memory_bytes - dropped.memory_bytes == pytest.approx(tables)
    assert written.memory_bytes - dropped.memory_bytes == pytest.approx(3 * tables)
    assert written.disk_bytes == pytest.approx(kept.calls_total * COST.disk_bytes_per_call)


def test_work_grows_with_the_horizon(quick: Scenario) -> None:
    longer = quick.with_overrides(horizon={"days": 70, "warmup_days": 1})
    short = estimate_work([(quick, 1)], calibration=COST)
    long = estimate_work([(longer, 1)], calibration=COST)
    assert long.calls_total == pytest.approx(10 * short.calls_total)
    assert long.memory_bytes > short.memory_bytes


def test_blame_names_the_field_furthest_from_the_national_sizes(quick: Scenario) -> None:
    assert blame(quick.with_overrides(horizon={"days": 3000, "warmup_days": 1}), 1) == (
        "horizon.days"
    )
    assert blame(quick, 10_000) == "replications"
    busy = quick.model_dump(by_alias=True)
    busy["demand"]["calls_per_day"] = 5e6
    assert blame(type(quick).model_validate(busy), 1) == "demand.calls_per_day"
    flood = quick.model_dump(by_alias=True)
    flood["surges"] = [
        {"name": "small", "region": {"center_lat": 34, "center_lon": 113, "radius_km": 50},
         "start_day": 0, "duration_h": 24, "demand_multiplier": 2},
        {"name": "flood", "region": {"center_lat": 34, "center_lon": 113, "radius_km": 50},
         "start_day": 0, "duration_h": 168, "demand_multiplier": 1000},
    ]  # fmt: skip
    assert blame(type(quick).model_validate(flood), 1) == "surges[1].demand_multiplier"


def test_check_work_names_field_and_estimate(quick: Scenario) -> None:
    work = estimate_work([(quick, 1)], calibration=COST)
    check_work(work, Limits(work.memory_bytes * 2, "test", 1e9, None), "horizon.days")
    with pytest.raises(WorkLimitError) as info:
        check_work(work, Limits(work.memory_bytes / 2, "a test limit", 1e9, None), "horizon.days")
    assert info.value.field == "horizon.days"
    assert "of memory, more than the" in info.value.message
    assert "(a test limit)" in info.value.message
    with pytest.raises(WorkLimitError, match=r"take about 0\.1 s here, more than the 0\.0 s limit"):
        check_work(work, Limits(1e15, "test", 0.01, None), "replications")


def test_disk_limit_only_when_written(quick: Scenario) -> None:
    written = estimate_work([(quick, 1)], writes_tables=True, calibration=COST)
    with pytest.raises(WorkLimitError, match="on disk"):
        check_work(written, Limits(1e15, "test", 1e9, written.disk_bytes / 2), "days")
    not_written = estimate_work([(quick, 1)], calibration=COST)
    check_work(not_written, Limits(1e15, "test", 1e9, 0.0), "days")


@pytest.mark.parametrize(
    ("text", "value"), [("8G", 8e9), ("500M", 5e8), ("1.5e9", 1.5e9), ("64k", 64e3), ("2GB", 2e9)]
)
def test_sizes(text: str, value: float) -> None:
    assert parse_size(text, "X") == value


@pytest.mark.parametrize(
    ("text", "value"), [("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("600", 600)]
)
def test_durations(text: str, value: float) -> None:
    assert parse_duration(text, "X") == value


@pytest.mark.parametrize("text", ["", "lots", "-1G", "0", "inf", "1x"])
def test_bad_sizes_and_durations(text: str) -> None:
    with pytest.raises(UserInputError):
        parse_size(text, "X")
    with pytest.raises(UserInputError):
        parse_duration(text, "X")


def test_calibration_is_measured_once_per_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESCUE_SIM_CACHE", str(tmp_path))
    measured: list[str] = []

    def measure(build: str) -> Calibration:
        measured.append(build)
        return Calibration(**{**COST.__dict__, "build": build})

    monkeypatch.setattr(estimate, "_measure", measure)
    estimate.measure_costs.cache_clear()
    try:
        first = estimate.measure_costs()
        estimate.measure_costs.cache_clear()  # a new process: reads the file
        second = estimate.measure_costs()
    finally:
        estimate.measure_costs.cache_clear()
    assert measured == [estimate.build_id()]
    assert first == second
    (cached,) = tmp_path.glob("calibration-*.json")
    assert json.loads(cached.read_text())["build"] == estimate.build_id()


def test_calibration_measures_this_build(tmp_path: Path) -> None:
    cost = estimate._measure(estimate.build_id())
    assert cost.seconds_per_call > 0
    # A call's row in the tables is some hundreds of bytes; a replication in progress
    # holds more per call than the tables it ends with.
    assert 100 < cost.table_bytes_per_call < 5_000
    assert cost.model_bytes_per_call >= cost.table_bytes_per_call
    assert 0 < cost.disk_bytes_per_call < cost.table_bytes_per_call
