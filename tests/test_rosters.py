"""Van rosters and rest rules: the units table follows the roster, and a roster costs.

* On the rostered national scenario (shortened to five days around a holiday), the vans
  on duty by hour in units.parquet are what the roster says, worked out here from the
  scenario alone; the only vans on duty outside it are finishing a job they had at the
  shift's end (overtime).
* Breaks fall due after the rest rule's working hours; a van waiting at its station
  takes its break at once, and the KPIs read the same rule.
* A night roster of one van in three lowers on-time arrival of night calls: a paired
  95% interval over replications on the same call streams (common random numbers).
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from sim.analysis.kpi_catalogue import CATALOGUE
from sim.analysis.kpis import arrival_outcomes, confidence_interval
from sim.analysis.rosters import break_outcomes, overtime_hours
from sim.cli import app
from sim.errors import ScenarioError
from sim.experiments.runs.run import run
from sim.model.demand import draw_call_stream
from sim.model.loading import load_scenario, with_fields
from sim.model.network import build_network
from sim.model.records import VAN_STATES
from sim.model.roster import on_duty_counts, on_duty_intervals
from sim.model.simulation import Model
from sim.outputs import plots
from sim.outputs.run_folder import write_run

ROOT = Path(__file__).resolve().parents[1]
ROSTERED = ROOT / "scenarios" / "dongfeng_rostered.yaml"
QUICK = ROOT / "scenarios" / "quick.yaml"
WORKING = {"to_site", "on_site", "returning"}


# --------------------------------------------------------------------------- the plan


def test_a_night_shift_belongs_to_the_evening_it_starts_on() -> None:
    scenario = with_fields(
        load_scenario(QUICK),
        {
            "horizon.days": 8,
            "network.vans.total": 180,  # three vans a station
            "roster": {
                "shifts": [
                    {"start_h": 8, "end_h": 16, "share": 0.5, "days": ["mon", "tue"]},
                    {"start_h": 22, "end_h": 6, "vans": 1, "days": ["fri"]},
                    {"start_h": 12, "end_h": 14, "vans": 9},  # every day, capped at the vans
                ]
            },
        },
    )
    network = build_network(scenario)
    counts = on_duty_counts(scenario, network)
    n = network.vans_per_station
    station = int(np.flatnonzero(n == 3)[0])  # a station with three vans
    by_hour = counts[station]
    # Monday (day 0) 08-16: half of three, rounded halves up (2); 12-14 all three.
    assert by_hour[:8].tolist() == [0] * 8
    assert by_hour[8:16].tolist() == [2, 2, 2, 2, 3, 3, 2, 2]
    assert by_hour[16:24].tolist() == [0] * 8
    # Friday (day 4) 22:00 to Saturday 06:00 is Friday's shift; Saturday night has none.
    assert by_hour[4 * 24 + 21 : 4 * 24 + 24].tolist() == [0, 1, 1]
    assert by_hour[5 * 24 : 5 * 24 + 7].tolist() == [1, 1, 1, 1, 1, 1, 0]
    assert by_hour[5 * 24 + 22 : 6 * 24 + 6].tolist() == [0] * 8
    # The first k vans of a station by number are the k on duty.
    intervals = on_duty_intervals(scenario, network)
    first = int(np.cumsum(n)[station] - n[station])
    assert intervals[first][:2].tolist() == [[8.0, 16.0], [24 + 8.0, 24 + 16.0]]
    assert intervals[first + 2][:1].tolist() == [[12.0, 14.0]]


def test_roster_input_errors_name_the_field(tmp_path: Path) -> None:
    quick = QUICK.read_text(encoding="utf-8")
    no_calendar = tmp_path / "no_calendar.yaml"
    no_calendar.write_text(
        quick + "roster:\n  shifts:\n    - {start_h: 0, end_h: 24, share: 1.0}\n"
        "  holidays: [2026-10-01]\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["validate", str(no_calendar)])
    assert result.exit_code == 2
    assert "roster.holidays" in result.output and "horizon.start_date" in result.output
    both = tmp_path / "both.yaml"
    both.write_text(
        quick + "roster:\n  shifts:\n    - {start_h: 0, end_h: 24, share: 1.0, vans: 2}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["validate", str(both)])
    assert result.exit_code == 2 and "exactly one of 'vans' or 'share'" in result.output
    scenario = with_fields(
        load_scenario(QUICK),
        {
            "roster": {
                "shifts": [{"start_h": 0, "end_h": 24, "share": 1.0}],
                "stations": [
                    {"stations": ["nowhere"], "shifts": [{"start_h": 0, "end_h": 8, "vans": 1}]}
                ],
            }
        },
    )
    with pytest.raises(ScenarioError, match=r"roster.stations\[0\].stations\[0\]: no station"):
        build_network(scenario)


def test_a_roster_with_a_move_up_policy_is_refused_before_any_run(tmp_path: Path) -> None:
    rostered = tmp_path / "rostered.yaml"
    rostered.write_text(
        QUICK.read_text(encoding="utf-8")
        + "roster:\n  shifts:\n    - {start_h: 0, end_h: 24, share: 1.0}\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["run", str(rostered), "--days", "3", "--policy", "compliance_table", "--out", str(out)],
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1].startswith("error: ")
    assert "roster" in result.stderr and "move-up" in result.stderr
    assert not out.exists()
    # A policy without move-up runs on the same roster.
    result = CliRunner().invoke(app, ["run", str(rostered), "--days", "3", "--replications", "1"])
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------- the run


@pytest.fixture(scope="module")
def rostered(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The rostered national scenario, five days from Monday 28 September (1 October a
    holiday), one replication, written as a run folder and read back."""
    scenario = load_scenario(ROSTERED).with_overrides(
        horizon={"days": 5, "warmup_days": 1, "start_date": "2026-09-28"}, replications=1
    )
    result = run(scenario)
    folder = write_run(result, tmp_path_factory.mktemp("rostered") / "run")
    units = pd.read_parquet(Path(folder) / "units.parquet")
    return scenario, build_network(scenario), result, units


def _expected_on_duty(scenario, network) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Vans on duty by station and hour, from the scenario's roster as its comments say."""
    n = network.vans_per_station.astype(int)
    start = scenario.horizon.start_date
    holidays = set(scenario.roster.holidays)
    hours = math.ceil(scenario.horizon.hours)
    expected = np.zeros((len(n), hours), dtype=int)
    for hour in range(hours):
        day, h = divmod(hour, 24)
        if 8 <= h < 20:
            holiday = start + timedelta(days=day) in holidays
            # Half the vans on a holiday, rounded halves up; every van on other days.
            expected[:, hour] = np.floor(0.5 * n + 0.5) if holiday else n
        else:  # the night shift, whatever the day: one van per station
            expected[:, hour] = np.minimum(n, 1)
    return expected


def _at(times: np.ndarray, values: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index, value) of the last of ``times`` at or before each ``t`` (index -1: none)."""
    k = np.searchsorted(times, t, side="right") - 1
    return k, values[np.maximum(k, 0)]


def test_vans_on_duty_by_hour_match_the_roster(rostered) -> None:  # type: ignore[no-untyped-def]
    scenario, network, _, units = rostered
    assert scenario.horizon.start_date + timedelta(days=3) == date(2026, 10, 1)
    expected = _expected_on_duty(scenario, network)
    intervals = on_duty_intervals(scenario, network)
    mid_h = np.arange(expected.shape[1]) + 0.5  # the middle of each hour
    units = units.sort_values(["van", "t_h"], kind="stable")
    on = np.zeros((len(intervals), len(mid_h)), dtype=bool)  # by the units table
    rostered_on = np.zeros_like(on)  # by the roster
    overtime_seen = 0
    for v, rows in units.groupby("van", sort=True):
        t = rows["t_h"].to_numpy()
        state = rows["state"].astype(str).to_numpy()
        _, now = _at(t, state, mid_h)
        on[v] = now != "off_duty"
        spells = intervals[v]
        k, ends = _at(spells[:, 0], spells[:, 1], mid_h)
        rostered_on[v] = (k >= 0) & (mid_h < ends)
        # A van on duty outside the roster is still on the job it had at its shift's end:
        # working then, and since then only on_site / returning rows (no new job).
        for hour in np.flatnonzero(on[v] & ~rostered_on[v]):
            past = spells[spells[:, 1] <= mid_h[hour], 1]
            assert len(past), f"van {v} on duty at hour {hour} before any shift"
            end = past[-1]
            at_end = state[np.searchsorted(t, end, side="right") - 1]
            since = state[(t > end) & (t <= mid_h[hour])]
            assert at_end in WORKING, (v, hour, at_end)
            assert set(since) <= {"on_site", "returning"}, (v, hour, list(since))
            overtime_seen += 1
    assert not (rostered_on & ~on).any(), "a rostered van is off duty"
    assert overtime_seen > 0  # the check above was exercised
    # Vans on duty by the roster, station by station and hour by hour: as the scenario says.
    station_of = network.van_station
    for hour in range(len(mid_h)):
        counted = np.bincount(station_of[rostered_on[:, hour]], minlength=network.n_stations)
        np.testing.assert_array_equal(counted, expected[:, hour], err_msg=f"hour {hour}")
    # An idle van goes off duty at the roster's hour; one at work later (overtime).
    off = units[units["state"].astype(str) == "off_duty"]
    assert (off["t_h"].mod(1.0) != 0).any()
    assert (off["t_h"].mod(1.0) == 0).mean() > 0.5


def test_breaks_fall_due_by_the_rest_rule(rostered) -> None:  # type: ignore[no-untyped-def]
    scenario, _, result, units = rostered
    rest = scenario.roster.rest
    state = units["state"].astype(str)
    assert set(state) <= set(VAN_STATES)
    breaks = units[state == "on_break"]
    assert len(breaks) > 1000
    # A break lasts break_min, unless its van's shift ends first (then off duty).
    nxt = units.groupby("van")["t_h"].shift(-1)
    nxt_state = units.groupby("van")["state"].shift(-1).astype(str)
    length_h = (nxt - units["t_h"])[state == "on_break"].dropna()
    full = length_h[nxt_state[length_h.index] != "off_duty"]
    np.testing.assert_allclose(full, rest.break_min / 60.0, atol=1e-9)
    assert (length_h <= rest.break_min / 60.0 + 1e-9).all()
    # Most breaks start exactly when due: the van was waiting at its station.
    due_h, missed = break_outcomes(units, rest.max_working_h, scenario.horizon.hours)
    assert 0.0 < missed.mean() < 0.5
    kpis = result.kpis_by_replication.iloc[0]
    # A rostered run with a rest rule reports every KPI of the catalogue, in its order.
    assert [k for k in kpis.index if k != "replication"] == list(CATALOGUE)
    counted = due_h >= scenario.horizon.warmup_h
    assert kpis["breaks_missed_rate"] == pytest.approx(missed[counted].mean())
    assert kpis["overtime_h_per_day"] > 0
    assert 0.0 < kpis["van_utilisation"] < 1.0


def test_the_kpis_read_the_rule_on_a_hand_made_log() -> None:
    units = pd.DataFrame(
        {
            "t_h": [0.0, 1.0, 7.5, 8.0, 9.0, 10.0, 14.0, 15.0, 16.5],
            "van": [0] * 9,
            # idle, to_site, on_break ... a break due at 6 h, taken late at 7.5 h; a job
            # from 9 h past the shift's end at 14 h; off duty at 15 h.
            "state": pd.Categorical(
                [
                    "idle",
                    "to_site",
                    "on_break",
                    "idle",
                    "to_site",
                    "on_site",
                    "returning",
                    "off_duty",
                    "idle",
                ],
                categories=VAN_STATES,
            ),
            "call_id": [-1, 1, -1, -1, 2, 2, -1, -1, -1],
        }
    )
    due_h, missed = break_outcomes(units, 6.0, 24.0)
    # Due at 6 (late: taken at 7.5), at 14 (missed: off duty at 15), at 22.5 (idle all along
    # since 16.5: not started -- the log shows no break, so it is missed).
    assert due_h.tolist() == [6.0, 14.0, 22.5]
    assert missed.tolist() == [True, True, True]
    intervals = [np.array([[0.0, 14.0], [16.5, 24.0]])]
    assert overtime_hours(units, intervals, 0.0, 24.0) == pytest.approx(1.0)


# --------------------------------------------------------------------------- what it costs


def _night_on_time(calls: pd.DataFrame, scenario) -> pd.Series:  # type: ignore[no-untyped-def]
    """On-time arrival of calls made from 20:00 to 08:00, per replication."""
    out = {}
    for r, c in calls.groupby("replication"):
        c = c[c["t_call_h"] >= scenario.horizon.warmup_h]
        hour = np.floor(c["t_call_h"].to_numpy()) % 24
        night = c[(hour >= 20) | (hour < 8)]
        known, met = arrival_outcomes(night, scenario.horizon.hours)
        out[r] = (known & met).sum() / known.sum()
    return pd.Series(out)


def test_a_night_roster_lowers_night_on_time_arrival() -> None:
    base = load_scenario(QUICK).with_overrides(replications=6)
    night = with_fields(
        base,
        {
            "roster": {
                "shifts": [
                    {"start_h": 8, "end_h": 20, "share": 1.0},
                    {"start_h": 20, "end_h": 8, "share": 0.34},  # one van in three
                ]
            }
        },
    )
    before = _night_on_time(run(base).calls, base)
    after = _night_on_time(run(night).calls, night)
    # Same seed, same replications: the same calls (common random numbers), paired.
    diff = confidence_interval((after - before).to_numpy())
    assert diff.high < 0, diff
    # By day every van is on duty: day calls barely notice (no claim, a sanity bound).
    assert diff.mean > -0.5


def test_the_van_figure_shares_the_kpis_hours_on_duty(rostered) -> None:  # type: ignore[no-untyped-def]
    scenario, network, result, _ = rostered
    fig = plots.van_utilisation(
        result.calls,
        result.units,
        van_station=network.van_station,
        warmup_h=scenario.horizon.warmup_h,
        horizon_h=scenario.horizon.hours,
    )
    (label,) = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    kpi = result.kpis_by_replication["van_utilisation"].iloc[0]
    assert label == f"all vans: {kpi * 100:.1f}%"


def test_a_station_with_no_van_on_duty_has_no_van_to_wait_for() -> None:
    scenario = with_fields(
        load_scenario(QUICK), {"roster": {"shifts": [{"start_h": 8, "end_h": 20, "share": 1.0}]}}
    )
    network = build_network(scenario)
    model = Model(scenario, network, draw_call_stream(scenario, network, 0))
    # Midnight: every van is off duty, none idle; by 08:00 they are all on.
    assert model.view.idle_count == 0 and not any(model.view.idle_at)
    assert model.view.station_wait_h(0, 0) == math.inf
    model.advance(8.5)
    assert model.view.station_wait_h(0, 0) < math.inf
