"""fit-demand: a trace drawn from a known demand gives that demand back, with intervals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from sim.analysis.fit_demand import fit_demand, profile_chisquare, read_trace
from sim.cli import app
from sim.model.demand import hourly_rates
from sim.model.loading import load_scenario, with_fields
from sim.model.reference import select_areas
from sim.model.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quick.yaml"
runner = CliRunner()

# A profile far from the default one: a night peak.
NIGHT_PEAK = tuple(float(v) for v in np.roll(np.arange(1, 25), 12))
DAYS = (0.7, 0.8, 1.0, 1.1, 1.2, 1.3, 0.9)
FAULT_SHARES = {"routine": 0.5, "general": 0.3, "major": 0.2}


@pytest.fixture(scope="module")
def known() -> Scenario:
    """quick.yaml for four weeks with a known hour, weekday and fault demand."""
    base = load_scenario(QUICK)
    return with_fields(
        base,
        {
            "horizon.days": 28,
            "demand.calls_per_day": 150,
            "demand.hour_of_day_profile": list(NIGHT_PEAK),
            "demand.day_of_week_profile": list(DAYS),
            **{f"demand.fault_classes[{k}].share": v for k, v in enumerate(FAULT_SHARES.values())},
        },
    )


def _trace(scenario: Scenario, seed: int = 1) -> pd.DataFrame:
    """A Poisson trace of the scenario's hourly rates, placed at prefecture seats."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    rates = hourly_rates(scenario)
    counts = rng.poisson(rates)
    t = np.repeat(np.arange(len(rates), dtype=float), counts) + rng.random(counts.sum())
    seats = select_areas(("河南省",), False)
    weight = seats["population_weight"].to_numpy(float)
    place = rng.choice(len(seats), size=len(t), p=weight / weight.sum())
    names = list(FAULT_SHARES)
    fault = rng.choice(len(names), size=len(t), p=list(FAULT_SHARES.values()))
    return pd.DataFrame(
        {
            "t_call_h": t,
            "lat": seats["lat"].to_numpy()[place],
            "lon": seats["lon"].to_numpy()[place],
            "fault": np.asarray(names)[fault],
        }
    )


def test_known_hour_profile_is_not_rejected_and_a_wrong_one_is(known: Scenario) -> None:
    fit = fit_demand(_trace(known), days=28)
    assert profile_chisquare(fit, NIGHT_PEAK) > 0.05
    assert profile_chisquare(fit, known.demand.hour_of_day_profile[::-1]) < 1e-6
    # The default (day-peak) profile, the one a planner would have used without the trace.
    assert profile_chisquare(fit, load_scenario(QUICK).demand.hour_of_day_profile) < 1e-6


def test_volume_weekdays_faults_and_places_are_recovered(known: Scenario) -> None:
    trace = _trace(known)
    fit = fit_demand(trace, days=28)
    assert fit.calls_per_day.low <= 150 <= fit.calls_per_day.high
    true_days = np.asarray(DAYS) / np.mean(DAYS)
    week = fit.weekday_profile
    inside = (week["low"] <= true_days) & (true_days <= week["high"])
    assert inside.sum() >= 6  # 95% intervals: at most one of seven may miss
    for name, share in FAULT_SHARES.items():
        low, high = fit.faults.loc[name, ["low", "high"]].to_numpy(float)
        assert low <= share <= high
    seats = select_areas(("河南省",), False).set_index("adcode")
    true_w = seats["population_weight"] / seats["population_weight"].sum()
    got = fit.prefectures.set_index("adcode")
    inside_w = (got["weight_low"] <= true_w[got.index]) & (true_w[got.index] <= got["weight_high"])
    assert inside_w.mean() >= 0.85


def test_part_week_profiles_leave_unseen_days_at_the_mean(known: Scenario) -> None:
    three_days = with_fields(known, {"horizon.days": 3, "horizon.warmup_days": 0.1})
    fit = fit_demand(_trace(three_days), days=3, start_weekday=2)
    week = fit.weekday_profile
    assert list(week["exposure_h"] > 0) == [False, False, True, True, True, False, False]
    assert (week.loc[[0, 1, 5, 6], "value"] == 1.0).all()
    # Wednesday to Friday of the known profile, scaled to mean 1 over the days seen.
    seen = np.asarray(DAYS[2:5]) / np.mean(DAYS[2:5])
    assert ((week.loc[[2, 3, 4], "low"] <= seen) & (seen <= week.loc[[2, 3, 4], "high"])).all()


def test_written_part_is_a_valid_demand_section(known: Scenario, tmp_path: Path) -> None:
    trace_csv = tmp_path / "trace.csv"
    _trace(known).to_csv(trace_csv, index=False)
    out = tmp_path / "part.yaml"
    result = runner.invoke(
        app, ["fit-demand", str(trace_csv), "--out", str(out), "--scenario", str(QUICK)]
    )
    assert result.exit_code == 0, result.output
    part = YAML(typ="safe").load(out.read_text(encoding="utf-8"))
    fields = {f"demand.{key}": value for key, value in part["demand"].items() if key != "spatial"}
    fields["demand.spatial.csv"] = part["demand"]["spatial"]["csv"]
    fitted = with_fields(load_scenario(QUICK), fields, base_dir=tmp_path)
    assert fitted.demand.spatial.csv == tmp_path / "part.prefectures.csv"
    assert fitted.demand.calls_per_day == pytest.approx(150, rel=0.05)
    shares = {f.name: f.share for f in fitted.demand.fault_classes}
    assert shares == pytest.approx(FAULT_SHARES, abs=0.02)
    assert "95% interval" in out.read_text(encoding="utf-8")


def test_run_call_table_is_a_trace(tmp_path: Path) -> None:
    """calls.parquet of a run (several replications) is read as it is."""
    from sim.experiments.runs.run import run

    scenario = load_scenario(QUICK).with_overrides(horizon={"days": 2, "warmup_days": 0.2})
    calls = run(scenario, replications=2).calls
    path = tmp_path / "calls.parquet"
    calls.to_parquet(path)
    fit = fit_demand(read_trace(path))
    assert fit.days == 4  # two replications of two days
    # Only Monday and Tuesday were seen: their mean rate is what the trace can tell.
    monday_tuesday = 130 * float(np.mean(scenario.demand.day_of_week_profile[:2]))
    assert fit.calls_per_day.low <= monday_tuesday <= fit.calls_per_day.high
    assert set(fit.prefectures["province"]) == {"河南省"}


def test_bad_row_is_one_line_naming_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("t_call_h,lat,lon\n1.0,34.7,113.6\n2.0,north,113.6\n", encoding="utf-8")
    result = runner.invoke(app, ["fit-demand", str(path), "--out", str(tmp_path / "x.yaml")])
    assert result.exit_code == 2
    assert f"{path}:3: lat:" in result.output
    assert "Traceback" not in result.output


def test_unknown_fault_names_its_row(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(
        "t_call_h,lat,lon,fault\n1.0,34.7,113.6,routine\n2.0,34.7,113.6,flat_tyre\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["fit-demand", str(path), "--out", str(tmp_path / "x.yaml")])
    assert result.exit_code == 2
    # Named as --trace names it: file, line, column (the one trace reader).
    assert f"{path}:3: fault: unknown fault class" in result.output
    assert "'flat_tyre'" in result.output


# --------------------------------------------------------------------------- the one trace reader


def _stamped(trace: pd.DataFrame, day0: str) -> pd.DataFrame:
    """The trace with local timestamps (to the nanosecond) in place of its hours."""
    ns = np.round(trace["t_call_h"].to_numpy() * 3_600_000_000_000)
    times = pd.Timestamp(day0) + pd.to_timedelta(ns, unit="ns")
    return trace.drop(columns="t_call_h").assign(time=times.astype(str))


@pytest.mark.parametrize(("day0", "weekday"), [("2024-01-01", 0), ("2024-01-03", 2)])
def test_a_timestamp_trace_fits_as_its_hours_do(
    known: Scenario, tmp_path: Path, day0: str, weekday: int
) -> None:
    """The trace --trace reads (timestamps) fits as the same calls in hours; the weekday
    of hour 0 is the first call's date's (2024-01-03 is a Wednesday)."""
    hours = tmp_path / "hours.csv"
    stamps = tmp_path / "stamps.csv"
    trace = _trace(known)
    trace.to_csv(hours, index=False)
    _stamped(trace, day0).to_csv(stamps, index=False)
    by_hours = fit_demand(read_trace(hours), days=28, start_weekday=weekday)
    by_stamps = fit_demand(read_trace(stamps), days=28)
    assert by_stamps.calls_per_day == pytest.approx(by_hours.calls_per_day)
    for table in ("hour_profile", "weekday_profile", "prefectures", "faults"):
        pd.testing.assert_frame_equal(getattr(by_stamps, table), getattr(by_hours, table))


def test_a_timestamp_trace_on_the_command_line(known: Scenario, tmp_path: Path) -> None:
    stamps = tmp_path / "stamps.csv"
    _stamped(_trace(known), "2024-01-03").to_csv(stamps, index=False)
    out = tmp_path / "part.yaml"
    result = runner.invoke(app, ["fit-demand", str(stamps), "--out", str(out)])
    assert result.exit_code == 0, result.output
    part = YAML(typ="safe").load(out.read_text(encoding="utf-8"))
    assert part["demand"]["calls_per_day"] == pytest.approx(150, rel=0.05)
    # A weekday that contradicts the dates is one line, before anything is written.
    again = tmp_path / "again.yaml"
    args = ["fit-demand", str(stamps), "--out", str(again), "--start-weekday", "0"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        "error: --start-weekday: 0, but the trace's day 0 is 2024-01-03, a Wednesday (2)"
    ]
    assert not again.exists()


def test_a_bad_cell_of_a_parquet_trace_names_its_row(tmp_path: Path) -> None:
    path = tmp_path / "calls.parquet"
    pd.DataFrame(
        {"t_call_h": [1.0, 2.0, 3.0], "lat": [34.7, 34.8, 95.0], "lon": [113.6] * 3}
    ).to_parquet(path)
    result = runner.invoke(app, ["fit-demand", str(path), "--out", str(tmp_path / "x.yaml")])
    assert result.exit_code == 2
    assert result.output.splitlines() == [f"error: {path}: lat: row 3: must be at most 90: '95.0'"]
