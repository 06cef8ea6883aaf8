"""Trace replay as a scenario: ``demand.trace`` and ``--trace`` (docs/demand.md).

Every row of a trace is checked (a bad cell names file, line and column); timestamps
are placed on the model's clock in local time; replications keep the recorded calls, or
resample whole days from a named stream (common random numbers); the call table keeps
the trace row and the observed times. The round trip: a synthetic run's calls written as
a trace with real timestamps and replayed with the same seed give the same calls and
KPIs inside each other's 95% intervals.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_checks import one_error_line
from typer.testing import CliRunner

import sim.experiments.runs.run as run_module
from sim import Scenario, ScenarioError, load_scenario, run
from sim.analysis.kpi_catalogue import HEADLINE_KPIS
from sim.analysis.kpis import summarise
from sim.cli import app
from sim.experiments.runs.run import run_replication
from sim.model.call_volume import expected_calls_per_day
from sim.model.demand import draw_call_stream
from sim.model.loading import with_fields
from sim.model.network import build_network
from sim.model.trace import calls_as_trace, read_trace, trace_calls

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quick.yaml"
EXAMPLE = ROOT / "scenarios" / "trace_replay.yaml"
runner = CliRunner()

HEADER = "time,lat,lon,fault,segment,priority,id,answered,arrived,repaired"
GOOD_ROWS = [
    "2021-07-17 08:00,34.75,113.62,major,fleet,0,A1,2021-07-17 08:01,2021-07-17 09:30,",
    "2021-07-17 09:15,32.99,112.53,routine,individual,1,A2,2021-07-17 09:16,,",
    "2021-07-18 23:50,35.10,114.30,,,,A3,,,",
]
COLUMNS = HEADER.split(",")


@pytest.fixture(scope="module")
def quick() -> Scenario:
    return load_scenario(QUICK)


def _trace(tmp_path: Path, rows: list[str], header: str = HEADER, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _replaying(scenario: Scenario, path: Path, **trace: object) -> Scenario:
    return with_fields(scenario, {"demand.trace": {"file": str(path), **trace}})


# --------------------------------------------------------------------------- reading


def test_a_good_trace_on_the_models_clock(tmp_path: Path, quick: Scenario) -> None:
    scenario = _replaying(quick, _trace(tmp_path, GOOD_ROWS), start="2021-07-17")
    trace = read_trace(scenario)
    np.testing.assert_allclose(trace.t_call_h, [8.0, 9.25, 47 + 50 / 60])
    assert trace.fault is not None and list(trace.fault) == ["major", "routine", None]
    assert trace.ids is not None and list(trace.ids) == ["A1", "A2", "A3"]
    np.testing.assert_allclose(trace.observed_h["arrived"], [9.5, np.nan, np.nan])
    assert "repaired" in trace.observed_h
    # Without a start, day 0 is the day of the earliest call.
    assert read_trace(_replaying(quick, _trace(tmp_path, GOOD_ROWS, name="u.csv"))).start == date(
        2021, 7, 17
    )


BAD_CELLS = [
    ("time", "17.07.2021 08:00", "not a time in the format ISO 8601"),
    ("time", "", "empty cell"),
    ("lat", "95", "must be at most 90"),
    ("lon", "east", "not a number"),
    ("fault", "flat_tyre", "unknown fault class"),
    ("segment", "vip", "unknown segment"),
    ("priority", "1.5", "must be a whole number"),
    ("id", "A1", "is repeated"),
    ("answered", "soon", "not a time"),
    ("arrived", "2021-07-17 09:00", "before the call"),
]


@pytest.mark.parametrize(("column", "cell", "message"), BAD_CELLS, ids=[c for c, _, _ in BAD_CELLS])
def test_a_bad_cell_names_file_line_and_column(
    tmp_path: Path, quick: Scenario, column: str, cell: str, message: str
) -> None:
    cells = GOOD_ROWS[1].split(",")
    cells[COLUMNS.index(column)] = cell
    path = _trace(tmp_path, [GOOD_ROWS[0], ",".join(cells), GOOD_ROWS[2]])
    with pytest.raises(ScenarioError) as info:
        read_trace(_replaying(quick, path, start="2021-07-17"))
    assert str(info.value).startswith(f"{path}:3: {column}: "), str(info.value)
    assert message in info.value.message


def test_a_column_named_in_the_scenario_must_be_there(tmp_path: Path, quick: Scenario) -> None:
    path = _trace(tmp_path, GOOD_ROWS)
    with pytest.raises(ScenarioError) as info:
        read_trace(_replaying(quick, path, columns={"time": "call_time", "arrived": "on_site"}))
    assert str(info.value) == f"{path}:1: the call trace lacks columns ['call_time', 'on_site']"


def test_times_with_offsets_time_zones_and_formats(tmp_path: Path, quick: Scenario) -> None:
    rows = ["2021-07-17T00:30:00Z,34.7,113.6", "2021-07-17T09:00:00+09:00,34.7,113.6"]
    path = _trace(tmp_path, rows, header="time,lat,lon")
    shanghai = read_trace(_replaying(quick, path, start="2021-07-17"))
    np.testing.assert_allclose(shanghai.t_call_h, [8.5, 8.0])  # local wall clock, UTC+8
    utc = read_trace(_replaying(quick, path, start="2021-07-17", time_zone="UTC"))
    np.testing.assert_allclose(utc.t_call_h, [0.5, 0.0])
    mixed = _trace(tmp_path, [*rows, "2021-07-17 10:00,34.7,113.6"], "time,lat,lon", "m.csv")
    with pytest.raises(ScenarioError) as info:
        read_trace(_replaying(quick, mixed))
    assert str(info.value).startswith(f"{mixed}:4: time: no UTC offset")
    own = _trace(tmp_path, ["17/07/2021 06:45,34.7,113.6"], "time,lat,lon", "f.csv")
    parsed = read_trace(_replaying(quick, own, time_format="%d/%m/%Y %H:%M", start="2021-07-16"))
    np.testing.assert_allclose(parsed.t_call_h, [30.75])
    hours = _trace(tmp_path, ["1.5,34.7,113.6"], "t_call_h,lat,lon", "h.csv")
    numbers = _replaying(quick, hours, time_format="hours", columns={"time": "t_call_h"})
    np.testing.assert_allclose(read_trace(numbers).t_call_h, [1.5])


def test_calls_outside_the_horizon(tmp_path: Path, quick: Scenario) -> None:
    rows = [f"2021-07-{day} 12:00,34.7,113.6" for day in (16, 17, 23, 24)]  # horizon: 7 days
    path = _trace(tmp_path, rows, header="time,lat,lon")
    dropped = _replaying(quick, path, start="2021-07-17")
    np.testing.assert_allclose(trace_calls(dropped, 0)["t_call_h"], [12.0, 156.0])
    assert expected_calls_per_day(dropped) == pytest.approx(2 / 7)
    with pytest.raises(ScenarioError) as info:
        read_trace(_replaying(quick, path, start="2021-07-17", outside_horizon="error"))
    assert str(info.value).startswith(f"{path}:2: time: before day 0")


def test_start_must_agree_with_the_horizon(tmp_path: Path) -> None:
    trace = _trace(tmp_path, GOOD_ROWS)
    path = tmp_path / "s.yaml"
    path.write_text(
        f"name: s\nhorizon:\n  days: 3\n  start_date: 2021-07-17\ndemand:\n  calls_per_day: 100\n"
        f"  trace:\n    file: {trace.name}\n    start: 2021-07-18\n",
        encoding="utf-8",
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert (info.value.line, info.value.field) == (9, "demand.trace.start")


# --------------------------------------------------------------------------- replications


def _days_trace(tmp_path: Path) -> Path:
    """Three days with 1, 2 and 3 calls, each call's minute naming its day."""
    rows = [
        f"2021-07-{17 + day} {hour:02d}:{day:02d},{34 + 0.1 * k},113.6"
        for day in range(3)
        for k, hour in enumerate(range(6, 6 + day + 1))
    ]
    return _trace(tmp_path, rows, header="time,lat,lon")


def test_bootstrap_days_resamples_whole_days(tmp_path: Path, quick: Scenario) -> None:
    scenario = _replaying(quick, _days_trace(tmp_path), bootstrap="days", start="2021-07-17")
    trace = read_trace(scenario)
    first = trace_calls(scenario, 1)
    pd.testing.assert_frame_equal(first, trace_calls(scenario, 1))  # the same again
    assert not first.equals(trace_calls(scenario, 2))  # another replication, other days
    for day, calls in first.groupby(first["t_call_h"] // 24):
        source = np.floor(trace.t_call_h[calls["trace_row"]] / 24)
        assert len(set(source)) == 1  # one trace day, all of it, at the same time of day
        assert len(calls) == int(source[0]) + 1
        np.testing.assert_allclose(
            calls["t_call_h"] - day * 24, trace.t_call_h[calls["trace_row"]] % 24
        )
    assert set(first["t_call_h"] // 24) == set(range(7))  # every trace day has calls
    assert expected_calls_per_day(scenario) == pytest.approx(2.0)


def test_bootstrap_days_keeps_common_random_numbers(tmp_path: Path, quick: Scenario) -> None:
    """Two policies on one replication answer the same resampled calls."""
    short = with_fields(quick, {"horizon.days": 3, "horizon.warmup_days": 0})
    scenario = _replaying(short, _days_trace(tmp_path), bootstrap="days", start="2021-07-17")
    network = build_network(scenario)
    a = run_replication(scenario, 1, "nearest_station", network=network).calls
    b = run_replication(scenario, 1, "nearest_idle_van", network=network).calls
    for column in ("t_call_h", "lat", "lon", "fault", "segment", "trace_row", "handling_h"):
        pd.testing.assert_series_equal(a[column], b[column])


def test_without_bootstrap_every_replication_keeps_the_recorded_calls(
    tmp_path: Path, quick: Scenario
) -> None:
    scenario = _replaying(quick, _trace(tmp_path, GOOD_ROWS), start="2021-07-17")
    network = build_network(scenario)
    one, two = (draw_call_stream(scenario, network, r) for r in (0, 1))
    for column in ("t_call_h", "lat", "lon", "trace_row"):
        np.testing.assert_array_equal(getattr(one, column), getattr(two, column))
    np.testing.assert_array_equal(one.fault[:2], two.fault[:2])  # recorded
    assert not np.array_equal(one.handling_h, two.handling_h)  # redrawn


# --------------------------------------------------------------------------- round trip


REPLICATIONS = 3


@pytest.fixture(scope="module")
def round_trip(quick: Scenario, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A synthetic run, and each of its replications replayed from its own calls written
    as a trace, in the same replication (the same seed, so the same named streams)."""
    synthetic = run(quick, replications=REPLICATIONS)
    folder = tmp_path_factory.mktemp("trace")
    replayed = []
    for r in range(REPLICATIONS):
        path = folder / f"calls_{r}.csv"
        calls = synthetic.calls[synthetic.calls["replication"] == r]
        calls_as_trace(calls, date(2026, 1, 5)).to_csv(path, index=False)
        replayed.append(run_replication(_replaying(quick, path, start="2026-01-05"), r))
    return synthetic, replayed


def test_round_trip_gives_the_same_calls(round_trip) -> None:  # type: ignore[no-untyped-def]
    synthetic, replayed = round_trip
    for again in replayed:
        original = synthetic.replications[again.replication].calls
        assert len(again.calls) == len(original)
        # The timestamps are exact to the nanosecond: 3e-13 h.
        np.testing.assert_allclose(
            again.calls["t_call_h"], original["t_call_h"], rtol=0, atol=1e-12
        )
        for column in ("lat", "lon", "fault", "segment", "prefecture", "station", "final_state"):
            pd.testing.assert_series_equal(again.calls[column], original[column])
        np.testing.assert_array_equal(again.calls["trace_row"], np.arange(len(original)))
        for role in ("answered", "arrived", "repaired"):
            np.testing.assert_allclose(
                again.calls[f"observed_{role}_h"], original[f"{role}_h"], rtol=0, atol=1e-9
            )


def test_round_trip_kpis_inside_each_others_intervals(round_trip) -> None:  # type: ignore[no-untyped-def]
    synthetic, replayed = round_trip
    a = synthetic.summary
    b = summarise(pd.DataFrame([{"replication": r.replication, **r.kpis} for r in replayed]))
    for kpi in (*HEADLINE_KPIS, "response_p90_h", "van_utilisation", "abandonment_rate"):
        assert a.at[kpi, "low"] <= b.at[kpi, "mean"] <= a.at[kpi, "high"], kpi
        assert b.at[kpi, "low"] <= a.at[kpi, "mean"] <= b.at[kpi, "high"], kpi
        assert b.at[kpi, "mean"] == pytest.approx(a.at[kpi, "mean"], rel=1e-9, abs=1e-12), kpi


# --------------------------------------------------------------------------- scenario and CLI


def test_a_scenario_with_a_trace(tmp_path: Path) -> None:
    scenario = load_scenario(EXAMPLE)
    assert scenario.demand.trace is not None
    trace = read_trace(scenario)
    calls = run_replication(scenario, 0).calls
    inside = trace.in_horizon(scenario.horizon.hours)
    assert len(calls) == int(inside.sum())
    np.testing.assert_array_equal(np.sort(calls["trace_row"]), np.flatnonzero(inside))
    assert {"trace_id", "observed_arrived_h", "arrived_h"} <= set(calls.columns)


def test_run_with_trace_writes_the_trace_columns(tmp_path: Path) -> None:
    path = _trace(tmp_path, GOOD_ROWS)
    out = tmp_path / "run"
    args = ["run", str(QUICK), "--trace", str(path), "--days", "3", "--replications", "2"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    calls = pd.read_parquet(out / "calls.parquet")
    assert calls["trace_id"].tolist() == ["A1", "A2", "A3"] * 2
    assert calls["observed_arrived_h"].iloc[0] == pytest.approx(9.5)
    assert calls["trace_priority"].isna().tolist() == [False, False, True] * 2
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert "demand.trace.file" in summary["input_sha256"]


def test_compare_with_a_bad_trace_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("a simulation started")

    monkeypatch.setattr(run_module, "run_jobs", fail)
    path = _trace(tmp_path, [GOOD_ROWS[0], GOOD_ROWS[1].replace("32.99", "95")])
    args = ["compare", str(QUICK), "--policy", "nearest_station", "--trace", str(path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    line = one_error_line(result.stdout, result.stderr)
    assert line == f"error: {path}:3: lat: must be at most 90: '95'"
    result = runner.invoke(
        app,
        [
            "sweep",
            str(QUICK),
            "--vary",
            "network.vans.total=90,100",
            "--trace",
            str(tmp_path / "absent.csv"),
        ],
    )
    assert result.exit_code == 2, result.output
    line = one_error_line(result.stdout, result.stderr)
    assert line == f"error: --trace: file not found: {tmp_path / 'absent.csv'}"


def test_days_on_the_command_line_keep_the_start_date(tmp_path: Path) -> None:
    """--days changes the horizon's length only: day 0 stays horizon.start_date."""
    text = QUICK.read_text(encoding="utf-8").replace(
        "  days: 7\n", "  days: 7\n  start_date: 2021-07-16\n"
    )
    scenario = tmp_path / "quick_from_friday.yaml"
    scenario.write_text(text, encoding="utf-8")
    out = tmp_path / "run"
    args = ["run", str(scenario), "--trace", str(_trace(tmp_path, GOOD_ROWS)), "--days", "2"]
    result = runner.invoke(app, [*args, "--replications", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    calls = pd.read_parquet(out / "calls.parquet")
    np.testing.assert_allclose(calls["t_call_h"], [32.0, 33.25])  # the third is past the horizon


def test_a_bad_trace_fails_before_any_run_from_python(tmp_path: Path, quick: Scenario) -> None:
    """With worker processes too: the error names the cell, not a failed run."""
    path = _trace(tmp_path, [GOOD_ROWS[0], GOOD_ROWS[1].replace("32.99", "95")])
    with pytest.raises(ScenarioError) as info:
        run(_replaying(quick, path), replications=2, workers=2)
    assert str(info.value) == f"{path}:3: lat: must be at most 90: '95'"


# --------------------------------------------------------------------------- the one trace reader


def test_trace_option_replays_hours_in_t_call_h(tmp_path: Path, quick: Scenario) -> None:
    """--trace reads what fit-demand reads: hours since day 0 in a t_call_h column."""
    rows = ["1.5,34.75,113.62,major", "30.25,32.99,112.53,routine", "80,35.1,114.3,"]
    path = _trace(tmp_path, rows, header="t_call_h,lat,lon,fault")
    trace = read_trace(_replaying(quick, path))
    np.testing.assert_allclose(trace.t_call_h, [1.5, 30.25, 80.0])
    assert trace.fault is not None and list(trace.fault) == ["major", "routine", None]
    out = tmp_path / "run"
    args = ["run", str(QUICK), "--trace", str(path), "--days", "3", "--replications", "1"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    calls = pd.read_parquet(out / "calls.parquet")
    np.testing.assert_allclose(calls["t_call_h"], [1.5, 30.25])  # the third is past day 3


def test_trace_option_replays_a_runs_call_table(tmp_path: Path, quick: Scenario) -> None:
    """A run's calls.parquet, as fit-demand reads it: one replication replays; several
    (one observed period each) are refused in one line naming the column."""
    short = quick.with_overrides(horizon={"days": 2, "warmup_days": 0.2})
    calls = run(short, replications=2).calls
    one = tmp_path / "one.parquet"
    calls[calls["replication"] == 0].to_parquet(one)
    trace = read_trace(_replaying(short, one))
    np.testing.assert_array_equal(trace.t_call_h, calls.loc[calls["replication"] == 0, "t_call_h"])
    both = tmp_path / "both.parquet"
    calls.to_parquet(both)
    args = ["run", str(QUICK), "--trace", str(both), "--days", "2", "--replications", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    line = one_error_line(result.stdout, result.stderr)
    assert line.startswith(f"error: {both}: replication: holds 2 replications of a run; ")
