"""sim.outputs.plots: every figure shows the data it was given (labels, extents, targets)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from sim import load_scenario, run
from sim.analysis import tables
from sim.analysis.kpi_catalogue import HEADLINE_KPIS
from sim.analysis.kpis import KpiSettings, van_busy_hours
from sim.model.network import build_network
from sim.outputs import plots
from sim.outputs.plots.dashboard import RESPONSE_KPIS
from sim.outputs.run_folder import summary_dict

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quick.yaml"


@pytest.fixture(scope="module")
def quick():  # type: ignore[no-untyped-def]
    scenario = load_scenario(QUICK).with_overrides(
        horizon={"days": 2, "warmup_days": 0.25}, replications=2
    )
    return scenario, run(scenario), build_network(scenario)


def _save(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    return buffer.getvalue()


def _calls(rows: list[dict[str, object]]) -> pd.DataFrame:
    """A minimal calls table: every column a plot reads, NaN where a moment never came."""
    base: dict[str, object] = {
        "replication": 0,
        "t_call_h": 0.0,
        "lat": 34.75,
        "lon": 113.62,
        "prefecture": "郑州市",
        "adcode": "410100",
        "segment": "fleet",
        "surge": -1,
        "answered_h": np.nan,
        "abandoned_h": np.nan,
        "dispatched_h": np.nan,
        "assigned_h": np.nan,
        "arrived_h": np.nan,
        "repaired_h": np.nan,
        "arrival_promise_h": 3.0,
        "hotline_wait_h": np.nan,
        "hotline_wait_total_h": np.nan,
        "station": -1,
        "van": -1,
    }
    return pd.DataFrame([{**base, **row} for row in rows])


# --------------------------------------------------------------------------- general


def test_figures_are_object_oriented_and_headless(quick) -> None:  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt

    _, result, _ = quick
    before = plt.get_fignums()
    fig = plots.kpi_dashboard(result.summary)
    assert isinstance(fig, Figure)
    assert plt.get_fignums() == before  # pyplot's global state never saw it
    assert _save(fig).startswith(b"\x89PNG")


def test_run_figures_render_without_missing_glyphs(quick) -> None:  # type: ignore[no-untyped-def]
    """Labels are ASCII (adcodes, pinyin), so no CJK glyph is ever asked of the font."""
    scenario, result, network = quick
    h, w = scenario.horizon.hours, scenario.horizon.warmup_h
    labels = [plots.province_label(network.areas["adcode"].iat[a]) for a in network.station_area]
    figures = [
        plots.kpi_dashboard(result.summary, title=scenario.name),
        plots.response_time_cdf(result.calls, warmup_h=w),
        plots.hourly_profile(
            result.calls, scenario.hotline.agents_by_hour, warmup_h=w, horizon_h=h
        ),
        plots.van_utilisation(
            result.calls,
            result.units,
            van_station=network.van_station,
            station_labels=labels,
            warmup_h=w,
            horizon_h=h,
        ),
        plots.network_map(network, surges=scenario),
        plots.on_time_map(result.calls, network, warmup_h=w, horizon_h=h, surges=scenario),
        plots.province_choropleth(
            tables.province_kpis(result.calls, KpiSettings(warmup_h=w, horizon_h=h))[
                "on_time_arrival_rate"
            ],
            kpi="on_time_arrival_rate",
        ),
        plots.surge_timeline(result.calls, scenario, horizon_h=h, warmup_h=w),
    ]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*Glyph.*missing.*")
        for fig in figures:
            assert len(_save(fig)) > 1000


# --------------------------------------------------------------------------- KPI dashboard


def test_kpi_dashboard_marks_the_published_target(quick) -> None:  # type: ignore[no-untyped-def]
    _, result, _ = quick
    summary = result.summary
    fig = plots.kpi_dashboard(summary)
    axes = fig.axes
    assert len(axes) == 4
    headline = axes[0]
    assert headline.get_title() == "Headline rates vs published target"
    assert [t.get_text() for t in headline.get_yticklabels()] == [
        "on time arrival rate",
        "on time repair rate",
        "complaint closure rate",
    ]
    # One dashed target mark per headline rate, all at 93% (seeds/published_figures.yaml).
    targets = [c for c in headline.collections if c.get_gid() == "target"]
    xs = sorted(float(seg[0][0]) for c in targets for seg in c.get_segments())
    assert xs == pytest.approx([93.0, 93.0, 93.0])
    assert any("published target 93%" in t.get_text() for t in headline.get_legend().get_texts())
    # The points are the means, in percent, top to bottom in KPI order.
    points = headline.lines[0]
    expected = [summary.loc[k, "mean"] * 100 for k in HEADLINE_KPIS]
    assert list(points.get_xdata()) == pytest.approx(expected)
    assert list(points.get_ydata()) == [2, 1, 0]
    assert axes[2].get_xlabel() == "hours"
    resp = axes[2].lines[0].get_xdata()
    assert list(resp) == pytest.approx([summary.loc[k, "mean"] for k in RESPONSE_KPIS])


def test_kpi_dashboard_reads_summary_json_and_shows_intervals(quick) -> None:  # type: ignore[no-untyped-def]
    _, result, _ = quick
    as_json = summary_dict(result)
    table = tables.kpi_frame(as_json)
    pd.testing.assert_frame_equal(
        table.loc[result.summary.index, ["mean", "low", "high"]],
        result.summary[["mean", "low", "high"]].astype(float),
        check_names=False,
    )
    fig = plots.kpi_dashboard(as_json, targets={"on_time_arrival_rate": 0.5})
    headline = fig.axes[0]
    targets = [c for c in headline.collections if c.get_gid() == "target"]
    assert [float(s[0][0]) for c in targets for s in c.get_segments()] == [50.0]
    # Error bars: the horizontal bar of on-time arrival spans its (clipped) interval.
    row = result.summary.loc["on_time_arrival_rate"]
    bars = [c for c in headline.collections if isinstance(c, LineCollection) and c not in targets]
    spans = [seg[:, 0] for c in bars for seg in c.get_segments()]
    lo, hi = max(0.0, row["low"] * 100), min(100.0, row["high"] * 100)
    assert any(np.allclose(sorted(s), [lo, hi]) for s in spans)


def test_kpi_dashboard_with_one_replication_has_no_interval() -> None:
    summary = pd.DataFrame(
        {"mean": [0.9, 2.0], "low": [np.nan, np.nan], "high": [np.nan, np.nan], "n": [1, 1]},
        index=pd.Index(["on_time_arrival_rate", "response_p90_h"], name="kpi"),
    )
    fig = plots.kpi_dashboard(summary)
    assert "1 replication(s)" in fig.get_suptitle()
    assert list(fig.axes[0].lines[0].get_xdata()) == pytest.approx([90.0])
    _save(fig)


# --------------------------------------------------------------------------- response times


def test_response_time_cdf_per_band_and_segment() -> None:
    rows = []
    for resp, promise, segment in [
        (1.0, 3.0, "fleet"), (2.0, 3.0, "individual"), (4.0, 3.0, "fleet"),
        (3.0, 5.0, "individual"), (6.0, 5.0, "fleet"),
    ]:  # fmt: skip
        rows.append(
            {
                "t_call_h": 10.0,
                "dispatched_h": 10.1,
                "arrived_h": 10.0 + resp,
                "arrival_promise_h": promise,
                "segment": segment,
            }
        )
    rows.append({"t_call_h": 1.0, "dispatched_h": 1.1, "arrived_h": 2.0, "arrival_promise_h": 3.0})
    calls = _calls(rows)
    fig = plots.response_time_cdf(calls, warmup_h=5.0)  # the call at t=1 is warm-up
    band, seg = fig.axes
    curves = [ln for ln in band.lines if ln.get_drawstyle() == "steps-post"]
    assert len(curves) == 2
    assert sorted(curves[0].get_xdata()) == [1.0, 2.0, 4.0]
    assert sorted(curves[1].get_xdata()) == [3.0, 6.0]
    assert list(curves[0].get_ydata()) == pytest.approx([1 / 3, 2 / 3, 1.0])
    promise_lines = [ln for ln in band.lines if ln.get_linestyle() == "--"]
    assert sorted(ln.get_xdata()[0] for ln in promise_lines) == [3.0, 5.0]
    legend = [t.get_text() for t in band.get_legend().get_texts()]
    assert legend[0].startswith("3 h promise: n=3, 66.7% on time")
    assert legend[1].startswith("5 h promise: n=2, 50.0% on time")
    seg_curves = [ln for ln in seg.lines if ln.get_drawstyle() == "steps-post"]
    assert len(seg_curves) == 2
    labels = [t.get_text() for t in seg.get_legend().get_texts()]
    assert labels == ["fleet: n=3, 33.3% within promise", "individual: n=2, 100.0% within promise"]
    assert band.get_xlim()[1] >= 6.0
    assert band.get_xlabel() == "hours from call to arrival on site"
    assert "5 arrivals" in fig.get_suptitle()


# --------------------------------------------------------------------------- hourly profile


def test_hourly_profile_counts_per_day_and_agents() -> None:
    rows = []
    for day in range(2):
        rows += [
            {"t_call_h": day * 24 + 3.5, "answered_h": day * 24 + 3.5, "hotline_wait_h": 0.0}
        ] * 4
        rows += [
            {"t_call_h": day * 24 + 10.2, "answered_h": day * 24 + 10.3, "hotline_wait_h": 0.1}
        ] * 2
    rows.append({"t_call_h": 30.0, "abandoned_h": 30.1})
    calls = _calls(rows)
    agents = [2] * 8 + [5] * 8 + [3] * 8
    fig = plots.hourly_profile(calls, agents, horizon_h=48.0)
    ax_calls, ax_wait, ax_agents, ax_abandoned = fig.axes
    heights = [p.get_height() for p in ax_calls.patches]
    assert len(heights) == 24
    assert heights[3] == pytest.approx(4.0) and heights[10] == pytest.approx(2.0)
    assert heights[6] == pytest.approx(0.5)
    assert sum(heights) == pytest.approx(6.5)
    step = ax_agents.lines[0]
    assert list(step.get_ydata()[:24]) == agents
    assert ax_agents.get_ylabel() == "agents on duty"
    mean_wait = ax_wait.lines[0].get_ydata()
    assert mean_wait[3] == pytest.approx(0.0) and mean_wait[10] == pytest.approx(360.0)
    assert np.isnan(mean_wait[0])
    abandoned = [p.get_height() for p in ax_abandoned.patches]
    assert abandoned[6] == pytest.approx(100.0) and abandoned[3] == 0.0
    assert ax_wait.get_xlabel() == "hour of day"
    with pytest.raises(ValueError):
        plots.hourly_profile(calls, agents[:23])


# --------------------------------------------------------------------------- vans


def _units(rows: list[tuple[float, int, str]], replication: int = 0) -> pd.DataFrame:
    from sim.model.records import VAN_STATES

    t, van, state = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "replication": replication,
            "t_h": np.array(t, float),
            "van": np.array(van, np.int64),
            "state": pd.Categorical(state, VAN_STATES),
            "call_id": -1,
        }
    )


def test_busy_share_by_hour_integrates_spells() -> None:
    units = _units(
        [
            (0.0, 0, "idle"),
            (0.0, 1, "idle"),
            (2.0, 0, "to_site"),
            (3.5, 0, "on_site"),
            (6.0, 0, "idle"),
            (5.0, 1, "to_site"),
        ]
    )
    share = tables.busy_share_by_hour(units, horizon_h=8.0)
    # van 0 busy 2-6 h, van 1 busy 5-8 h (open at the horizon), two vans.
    expected = [0, 0, 0.5, 0.5, 0.5, 1.0, 0.5, 0.5]
    assert list(share) == pytest.approx(expected)
    total = van_busy_hours(units, 0.0, 8.0).sum()
    assert share.sum() * 2 == pytest.approx(total)


def test_van_utilisation_ranks_stations(quick) -> None:  # type: ignore[no-untyped-def]
    units = _units(
        [
            (0.0, 0, "idle"),
            (0.0, 1, "idle"),
            (0.0, 2, "idle"),
            (0.0, 0, "to_site"),
            (12.0, 0, "idle"),
            (6.0, 2, "on_site"),
            (12.0, 2, "idle"),
        ]
    )
    calls = _calls([{"t_call_h": 0.0}])
    fig = plots.van_utilisation(
        calls, units, van_station=[0, 0, 1], station_labels=["A", "B"], horizon_h=24.0
    )
    ax_top, ax_time = fig.axes
    widths = [p.get_width() for p in ax_top.patches]
    labels = [t.get_text() for t in ax_top.get_yticklabels()]
    # Station 0: 12 busy hours of 2 vans x 24 h = 25%; station 1: 6 of 24 = 25% (tie: id order).
    assert widths == pytest.approx([25.0, 25.0])
    assert labels == ["#0 A (2 vans)", "#1 B (1 vans)"]
    assert list(ax_top.get_yticks()) == [1, 0]  # the busiest on top
    overall = ax_top.lines[0].get_xdata()[0]
    assert overall == pytest.approx(18 / 72 * 100)
    curve = ax_time.lines[0].get_ydata()
    assert len(curve) == 24
    assert curve[:6] == pytest.approx([100 / 3] * 6)
    assert curve[6:12] == pytest.approx([200 / 3] * 6)
    assert curve[12:] == pytest.approx([0.0] * 12)
    assert ax_time.get_xlim() == (0.0, 1.0)

    scenario, result, network = quick
    fig = plots.van_utilisation(
        result.calls,
        result.units,
        van_station=network.van_station,
        horizon_h=scenario.horizon.hours,
        top_n=10,
    )
    ax_top, _ = fig.axes
    assert len(ax_top.patches) == 10
    widths = [p.get_width() for p in ax_top.patches]
    assert widths == sorted(widths, reverse=True)
    assert f"{network.n_vans} vans, {network.n_stations} stations" in fig.get_suptitle()


def test_van_utilisation_without_network_infers_stations(quick) -> None:  # type: ignore[no-untyped-def]
    _scenario, result, _ = quick
    mapping = tables.van_station_from_calls(result.calls)
    served = result.calls[result.calls["van"] >= 0]
    assert set(mapping) == set(served["van"].unique())
    fig = plots.van_utilisation(result.calls, result.units.astype({"state": str}))
    assert len(fig.axes[0].patches) == 15


# --------------------------------------------------------------------------- surge timeline


def test_surge_timeline_shades_the_surge_and_counts_calls() -> None:
    rows = [{"t_call_h": t + 0.5, "dispatched_h": t + 0.6, "arrived_h": t + 1.0} for t in range(48)]
    rows += [{"t_call_h": 30.5, "surge": 0, "dispatched_h": 30.6, "arrived_h": 40.0}] * 3  # late
    rows += [{"t_call_h": 31.5, "abandoned_h": 31.6, "hotline_wait_total_h": 0.5}]
    calls = _calls(rows)
    surges = {
        "surges": [
            {
                "name": "flood",
                "start_day": 1.0,
                "duration_h": 12.0,
                "region": {"center_lat": 34.75, "center_lon": 113.63, "radius_km": 100},
            }
        ]
    }
    fig = plots.surge_timeline(calls, surges, horizon_h=48.0)
    ax_calls, ax_hot, ax_late, _ = fig.axes
    total = ax_calls.lines[0].get_ydata()
    assert len(total) == 48 and total.sum() == len(calls)
    assert total[30] == 4 and total[31] == 2
    assert "surge window: flood" in [t.get_text() for t in ax_calls.get_legend().get_texts()]
    for ax in (ax_calls, ax_hot, ax_late):  # the window, in days, shaded on every panel
        spans = [(round(p.get_x(), 6), round(p.get_x() + p.get_width(), 6)) for p in ax.patches]
        assert spans == [(1.0, 1.5)]
    late = ax_late.lines[0].get_ydata()
    assert late[30] == 3 and late.sum() == 3
    waiting = ax_hot.lines[0].get_ydata()
    assert waiting[31] == pytest.approx(0.5) and waiting.sum() == pytest.approx(0.5)
    abandoned = ax_hot.lines[1].get_ydata()
    assert abandoned[31] == 1 and abandoned.sum() == 1
    assert ax_late.get_xlabel() == "day of the run"
    assert "flood" in fig.get_suptitle()


def test_surge_windows_accept_every_form(quick) -> None:  # type: ignore[no-untyped-def]
    scenario = load_scenario(ROOT / "scenarios" / "henan_flood_2021.yaml")
    from_model = tables.surge_windows(scenario)
    from_json = tables.surge_windows(scenario.model_dump(mode="json", by_alias=True))
    assert from_model == from_json == [("zhengzhou_flood", 72.0, 144.0)]
    assert tables.surge_windows(None) == [] == tables.surge_windows(quick[0])


# --------------------------------------------------------------------------- policies


def test_policy_comparison_intervals_and_verdicts() -> None:
    columns = ["kpi", "policy", "mean", "low", "high", "diff", "diff_low", "diff_high"]
    rows = [
        ("on_time_arrival_rate", "nearest_station", 0.90, 0.88, 0.92, 0.0, 0.0, 0.0, False, ""),
        ("on_time_arrival_rate", "backup", 0.95, 0.94, 0.96, 0.05, 0.03, 0.07, True, "better"),
        ("response_p90_h", "nearest_station", 3.0, 2.5, 3.5, 0.0, 0.0, 0.0, False, ""),
        ("response_p90_h", "backup", 2.9, 2.0, 3.8, -0.1, -0.5, 0.3, False, ""),
    ]
    table = pd.DataFrame(rows, columns=[*columns, "significant", "verdict"])
    fig = plots.policy_comparison(table)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["on time arrival rate", "response p90 h"]
    ot, p90 = visible
    assert [t.get_text() for t in ot.get_yticklabels()] == ["nearest_station", "backup"]
    xs = [ln.get_xdata()[0] for ln in ot.lines if ln.get_marker() == "o"]
    assert xs == pytest.approx([90.0, 95.0])
    target = [ln for ln in ot.lines if ln.get_linestyle() == "--"]
    assert len(target) == 1 and target[0].get_xdata()[0] == pytest.approx(93.0)
    texts = [t.get_text() for t in ot.texts]
    assert texts == ["+5.00 pp better"]
    assert [t.get_text() for t in p90.texts] == ["-0.10 n.s."]
    assert not [ln for ln in p90.lines if ln.get_linestyle() == "--"]  # no target for p90
    bars = [c for c in ot.collections if isinstance(c, LineCollection)]
    spans = sorted(tuple(np.round(s[:, 0], 6)) for c in bars for s in c.get_segments())
    assert spans == [(88.0, 92.0), (94.0, 96.0)]
    assert "reference: nearest_station" in fig.get_suptitle()
    with pytest.raises(ValueError):
        plots.policy_comparison(table, kpis=[])


def test_policy_comparison_from_compare() -> None:
    from sim.experiments.runs.compare import compare

    scenario = load_scenario(ROOT / "scenarios" / "overloaded_neighbour.yaml")
    table = compare(scenario, ["nearest_station", "nearest_idle_van"], replications=3).table()
    fig = plots.policy_comparison(table, ["on_time_arrival_rate", "van_utilisation"])
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 2
    assert any(t.get_text().endswith("better") for t in visible[0].texts)
    _save(fig)


def _sweep_summary() -> pd.DataFrame:
    """Two swept paths: vans (numbers) by agents; two KPIs; made-up means and intervals."""
    rows = []
    point = 0
    for vans in (70, 90, 120):
        for agents in (2, 4):
            for kpi, mean in (
                ("on_time_arrival_rate", 0.80 + vans / 1000 + agents / 100),
                ("response_p90_h", 5.0 - vans / 50),
            ):
                rows.append(
                    {
                        "point": point,
                        "network.vans.total": vans,
                        "hotline.shifts[1].agents": agents,
                        "kpi": kpi,
                        "mean": mean,
                        "low": mean - 0.01,
                        "high": mean + 0.01,
                        "n": 5,
                    }
                )
            point += 1
    return pd.DataFrame(rows)


def test_sweep_plot_draws_a_line_per_other_value() -> None:
    summary = _sweep_summary()
    assert plots.sweep_parameters(summary) == ["network.vans.total", "hotline.shifts[1].agents"]
    fig = plots.sweep_plot(summary)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["on time arrival rate", "response p90 h"]
    ot, p90 = visible
    data = [ln for ln in ot.lines if ln.get_marker() == "o"]
    assert len(data) == 2  # one line per number of agents
    assert list(data[0].get_xdata()) == [70.0, 90.0, 120.0]
    assert data[0].get_ydata() == pytest.approx([89.0, 91.0, 94.0])  # percent, agents=2
    assert data[1].get_ydata() == pytest.approx([91.0, 93.0, 96.0])  # agents=4
    legend = [t.get_text() for t in ot.get_legend().get_texts()]
    assert "hotline.shifts[1].agents=2" in legend and "target 93%" in legend
    assert ot.get_xlabel() == "network.vans.total" and ot.get_ylabel() == "percent"
    assert p90.get_ylabel() == "hours"
    assert not [ln for ln in p90.lines if ln.get_linestyle() == "--"]  # no target for p90
    # The other path on the x axis: three lines, one per fleet.
    by_agents = plots.sweep_plot(summary, "hotline.shifts[1].agents", ["response_p90_h"])
    (ax,) = [a for a in by_agents.axes if a.get_visible()]
    assert len([ln for ln in ax.lines if ln.get_marker() == "o"]) == 3
    with pytest.raises(ValueError, match="not swept"):
        plots.sweep_plot(summary, "seed")
    _save(fig)


def test_sweep_plot_of_policies_places_names_in_order() -> None:
    rows = [
        {"point": k, "dispatch.policy": name, "kpi": "van_utilisation", "mean": m,
         "low": m - 0.02, "high": m + 0.02, "n": 3}
        for k, (name, m) in enumerate((("nearest_station", 0.3), ("nearest_idle_van", 0.2)))
    ]  # fmt: skip
    fig = plots.sweep_plot(pd.DataFrame(rows))
    (ax,) = [a for a in fig.axes if a.get_visible()]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["nearest_station", "nearest_idle_van"]
    (points,) = [ln for ln in ax.lines if ln.get_marker() == "o"]
    assert points.get_linestyle() == "None"  # no line drawn between two policies
    assert points.get_ydata() == pytest.approx([30.0, 20.0])


def test_plot_command_on_a_sweep_folder(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sim.cli import app

    out = tmp_path / "sweep"
    runner = CliRunner()
    done = runner.invoke(
        app,
        ["sweep", str(QUICK), "--vary", "network.vans.total=80,120", "--days", "2",
         "--replications", "2", "--out", str(out)],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    done = runner.invoke(app, ["plot", str(out)])
    assert done.exit_code == 0, done.output
    figure = out / "figures" / "sweep_network.vans.total.png"
    assert figure.is_file() and figure.read_bytes().startswith(b"\x89PNG")
    assert str(figure) in done.stdout
