"""Agents on duty are recorded where the hotline changes them, and the KPIs read the record.

The record is the hotline's own (shift changes and a surge's extra agents); agent
utilisation, the hourly profile and the report read it instead of rebuilding the number
from the shift plan, which misses the extra agents of a surge.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import simpy

from sim.analysis.kpis import agent_hours, agent_utilisation, agents_by_hour_of_day
from sim.experiments.runs.run import ReplicationResult, run, run_replication
from sim.model.hotline import Hotline
from sim.model.loading import load_scenario
from sim.outputs import plots
from sim.outputs.report import load_run
from sim.outputs.run_folder import write_run

ROOT = Path(__file__).resolve().parents[1]
HENAN = ROOT / "scenarios" / "henan_flood_2021.yaml"
QUICK = ROOT / "scenarios" / "quick.yaml"


@pytest.fixture(scope="module")
def henan() -> tuple[object, ReplicationResult]:
    scenario = load_scenario(HENAN)
    return scenario, run_replication(scenario, 0)


def _handled_h(calls: pd.DataFrame, start_h: float, end_h: float) -> float:
    begin = calls["answered_h"].to_numpy(float)
    end = begin + calls["handling_h"].to_numpy(float)
    ok = ~np.isnan(begin)
    return float((np.clip(end[ok], start_h, end_h) - np.clip(begin[ok], start_h, end_h)).sum())


def test_henan_agent_utilisation_counts_the_surges_extra_agents(henan) -> None:  # type: ignore[no-untyped-def]
    scenario, result = henan
    (surge,) = scenario.surges
    start_h, end_h = surge.start_h, surge.start_h + surge.duration_h
    assert (start_h, end_h) == (72.0, 144.0)
    # Worked out here from the scenario alone: the shift plan hour by hour, plus the extra
    # agents in every hour of the surge.
    plan = scenario.hotline.agents_by_hour
    plan_h = sum(plan[h % 24] for h in range(72, 144))
    on_duty_h = plan_h + surge.extra_agents * surge.duration_h
    assert surge.extra_agents == 4 and on_duty_h == plan_h + 288
    handled = _handled_h(result.calls, start_h, end_h)
    assert handled > 10.0  # a busy desk: the comparison below means something

    got = agent_utilisation(result.calls, result.agents, start_h, end_h)
    assert got == pytest.approx(handled / on_duty_h, rel=1e-12)
    # The shift plan alone (what the KPI used to divide by) overstates it by a third or more.
    assert handled / plan_h > 1.3 * got
    # Outside the surge the record is the plan: the whole-run KPI over a window before it.
    before = agent_utilisation(result.calls, result.agents, 24.0, 72.0)
    plan_before = sum(plan[h % 24] for h in range(24, 72))
    assert before == pytest.approx(_handled_h(result.calls, 24.0, 72.0) / plan_before, rel=1e-12)


def test_the_record_follows_shifts_and_the_surge(henan) -> None:  # type: ignore[no-untyped-def]
    scenario, result = henan
    agents = result.agents
    assert list(agents.columns) == ["replication", "t_h", "agents_on_duty"]
    assert agents["t_h"].iloc[0] == 0.0 and agents["t_h"].is_monotonic_increasing
    plan = scenario.hotline.agents_by_hour
    extra = scenario.surges[0].extra_agents
    t = agents["t_h"].to_numpy()
    n = agents["agents_on_duty"].to_numpy()
    for hour in range(int(scenario.horizon.hours)):
        on_duty = n[np.searchsorted(t, hour + 0.5, side="right") - 1]
        assert on_duty == plan[hour % 24] + (extra if 72 <= hour < 144 else 0), hour
    # Only changes are kept: no row repeats the one before it.
    assert (np.diff(n) != 0).all()


def test_agent_hours_integrates_the_step_function() -> None:
    agents = pd.DataFrame({"t_h": [0.0, 2.0, 2.5, 10.0], "agents_on_duty": [3, 5, 1, 2]})
    assert agent_hours(agents, 0.0, 2.0) == pytest.approx(6.0)
    assert agent_hours(agents, 1.0, 3.0) == pytest.approx(3 + 2.5 + 0.5)
    # The last row holds to the end; an empty or reversed window has none.
    assert agent_hours(agents, 9.0, 13.0) == pytest.approx(1 + 6)
    assert agent_hours(agents, 4.0, 4.0) == 0.0 and agent_hours(agents, 5.0, 4.0) == 0.0
    got = agent_hours(agents, np.array([0.0, 2.0]), np.array([2.5, 12.0]))
    assert got == pytest.approx([6 + 2.5, 2.5 + 7.5 + 4])


def test_agents_by_hour_of_day_is_the_time_weighted_mean() -> None:
    # Two replications over two days: 2 agents, and 4 from 10:00 on day 1 in the first.
    agents = pd.DataFrame(
        {
            "replication": [0, 0, 0, 1],
            "t_h": [0.0, 34.0, 35.0, 0.0],
            "agents_on_duty": [2, 4, 2, 2],
        }
    )
    mean = agents_by_hour_of_day(agents, 0.0, 48.0)
    expected = np.full(24, 2.0)
    expected[10] = (2 + 4 + 2 + 2) / 4
    np.testing.assert_allclose(mean, expected)
    # A window starting mid-hour weighs that hour by the part of it inside.
    one = agents[agents["replication"] == 0]
    np.testing.assert_allclose(agents_by_hour_of_day(one, 33.5, 35.0)[9:11], [2.0, 4.0])


def test_a_change_at_the_time_of_the_last_replaces_it() -> None:
    env = simpy.Environment()
    hotline = Hotline(env, 2)
    hotline.set_agents(2)  # no change: nothing recorded
    env.run(until=1.0)
    hotline.set_agents(3)
    hotline.set_agents(7)  # the same moment: one row, the last value
    env.run(until=2.0)
    hotline.set_agents(5)
    hotline.set_agents(7)  # back to the value before, at once: no row at all
    table = hotline.agents.to_frame()
    assert table.to_dict("list") == {"t_h": [0.0, 1.0], "agents_on_duty": [2, 7]}


def test_the_run_folder_keeps_the_record_and_the_figure_reads_it(tmp_path: Path) -> None:
    scenario = load_scenario(HENAN).with_overrides(
        horizon={"days": 4, "warmup_days": 1}, replications=1
    )
    result = run(scenario)
    folder = load_run(write_run(result, tmp_path / "run"))
    assert folder.agents is not None
    pd.testing.assert_frame_equal(folder.agents, result.agents)
    fig = plots.hourly_profile(folder.calls, folder.agents, warmup_h=24.0, horizon_h=96.0)
    step = np.asarray(fig.axes[2].lines[0].get_ydata(), dtype=float)[:24]
    plan = np.asarray(scenario.hotline.agents_by_hour, dtype=float)
    # Days 1-3 observed; the surge (4 extra) covers day 3: a third of the days.
    np.testing.assert_allclose(step, plan + 4 / 3)
