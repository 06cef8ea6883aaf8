"""The cost-service frontier: each fleet size optimised, on common streams, then confirmed.

One frontier of quick.yaml (5 fleet sizes, 2 replications of 2 days, a search of 3
designs a point) is made by the command and read by most tests. A smaller one (2 fleet
sizes) is made once for the other two: the Dask test makes it again on a LocalCluster, the
resume test interrupts it and resumes it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_checks import QUICK, StoreCounter
from typer.testing import CliRunner

from sim.analysis.costs import COST_PARTS
from sim.cli import app
from sim.experiments.design.frontier import knee_index, parse_fleets, warm_start
from sim.experiments.runs.run import run, run_replication
from sim.model.loading import load_scenario, with_fields

runner = CliRunner()
KPI = "on_time_arrival_rate"
# Fewer vans than quick.yaml's 110 at its 60 stations: each van more pays.
FLEETS = "62..94:8"
TARGETS = "0.5,0.8,0.9,0.95"
SPEC = "probe_days: 1\ndemand_sample_calls: 3000\nmax_evaluations: 3\nmoves: [vans]\n"


def _args(config: Path, out: Path, fleets: str = FLEETS) -> list[str]:
    return [
        "frontier", str(QUICK), "--vans", fleets, "--kpi", KPI, "--targets", TARGETS,
        "--config", str(config), "--days", "2", "--replications", "2", "--out", str(out),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "spec.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def folder(config: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("frontier") / "out"
    result = runner.invoke(app, _args(config, out))
    assert result.exit_code == 0, result.output
    return out


SMALL_FLEETS = "70,86"


@pytest.fixture(scope="module")
def small(config: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The two-point frontier, uninterrupted, and the number of runs it stored."""
    out = tmp_path_factory.mktemp("small") / "out"
    with pytest.MonkeyPatch.context() as monkeypatch:
        counter = StoreCounter(monkeypatch)
        result = counter.invoke(_args(config, out, SMALL_FLEETS))
    assert result.exit_code == 0, result.output
    return out, counter.stored


def test_the_kpi_rises_with_the_fleet_at_every_step(folder: Path) -> None:
    table = pd.read_csv(folder / "frontier.csv")
    assert list(table["vans"]) == [62, 70, 78, 86, 94]
    steps = table.iloc[1:]
    # Each step's paired interval (confirmation streams) does not lie below zero.
    assert (steps["step_diff_high"] >= 0).all(), steps[["vans", "step_diff", "step_diff_high"]]
    assert table[KPI].iloc[-1] > table[KPI].iloc[0]
    assert (np.diff(table["cost_cny_per_year"]) > 0).all()  # more vans cost more
    for column in ("cost_cny_per_year", "cost_fuel_cny_per_year", f"{KPI}_low", f"{KPI}_high"):
        assert table[column].notna().all(), column


def test_every_points_stations_file_reproduces_its_row_exactly(folder: Path) -> None:
    table = pd.read_csv(folder / "frontier.csv").set_index("vans")
    for vans, row in table.iterrows():
        scenario = load_scenario(folder / "points" / f"vans_{vans}" / "scenario.yaml")
        summary = run(scenario).summary
        assert int(scenario_vans(folder, int(vans))) == vans
        for kpi in summary.index:
            for column, suffix in (("mean", ""), ("low", "_low"), ("high", "_high")):
                got, want = float(summary.at[kpi, column]), float(row[f"{kpi}{suffix}"])
                assert (math.isnan(got) and math.isnan(want)) or got == want, (vans, kpi, column)


def scenario_vans(folder: Path, vans: int) -> int:
    stations = pd.read_csv(folder / "points" / f"vans_{vans}" / "stations.csv")
    return int(stations["vans"].sum())


def test_each_answer_is_the_smallest_fleet_whose_lower_bound_meets_its_target(
    folder: Path,
) -> None:
    table = pd.read_csv(folder / "frontier.csv")
    answers = pd.read_csv(folder / "answers.csv")
    met = answers.dropna(subset=["vans"])
    assert len(met) >= 1, answers  # at least one target is reached on the frontier
    for answer in met.to_dict("records"):
        k = int(np.flatnonzero(table["vans"] == answer["vans"])[0])
        assert answer["low"] >= answer["target"]  # confirmed on fresh streams
        assert table.at[k, f"{KPI}_low"] == answer["low"]
        assert (table[f"{KPI}_low"].iloc[:k] < answer["target"]).all()  # no smaller fleet does
        if k:
            assert answer["smaller_vans"] == table.at[k - 1, "vans"]
            assert answer["diff"] == table.at[k, "step_diff"]
    summary = json.loads((folder / "frontier.json").read_text(encoding="utf-8"))
    assert summary["confirm_seed"] != summary["search_seed"]  # fresh streams
    assert summary["knee_vans"] in set(table["vans"])
    assert (folder / "figures" / "frontier.png").stat().st_size > 0


def test_the_report_has_a_frontier_section(folder: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(folder), "--out", str(page)])
    assert result.exit_code == 0, result.output
    text = page.read_text(encoding="utf-8")
    assert "Cost-service frontier" in text and "Kneedle" in text and "data:image/png" in text


def test_the_frontier_on_a_dask_cluster_equals_local_processes(
    small: tuple[Path, int], config: Path, tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    folder, _ = small
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        out = tmp_path / "dask"
        args = [*_args(config, out, SMALL_FLEETS), "--scheduler", cluster.scheduler_address]
        result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for name in ("frontier.csv", "answers.csv", "kpis_by_replication.csv"):
        pd.testing.assert_frame_equal(
            pd.read_csv(out / name), pd.read_csv(folder / name), check_exact=True
        )
    for point in (folder / "points").iterdir():
        assert (out / "points" / point.name / "stations.csv").read_bytes() == (
            point / "stations.csv"
        ).read_bytes()


def test_an_interrupted_frontier_resumes_with_every_finished_run(
    small: tuple[Path, int], config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole, total = small
    counter = StoreCounter(monkeypatch)
    out = tmp_path / "out"
    stopped = counter.invoke(_args(config, out, SMALL_FLEETS), interrupt_after=total - 3)
    assert stopped.exit_code == 130, stopped.output
    assert not (out / "frontier.csv").exists()
    resumed = counter.invoke(_args(config, out, SMALL_FLEETS))
    assert resumed.exit_code == 0, resumed.output
    assert counter.stored == 3  # every run finished before the interruption was reused
    pd.testing.assert_frame_equal(
        pd.read_csv(out / "frontier.csv"),
        pd.read_csv(whole / "frontier.csv"),
        check_exact=True,
    )


def test_fleets_are_a_range_or_a_list() -> None:
    assert parse_fleets("1400..2600:200") == [1400, 1600, 1800, 2000, 2200, 2400, 2600]
    assert parse_fleets("90,70,80") == [70, 80, 90]


@pytest.mark.parametrize(
    ("option", "value"), [("--vans", "90..70:5"), ("--targets", "93"), ("--kpi", "nope")]
)
def test_a_bad_option_is_one_line_naming_it_before_any_work(
    option: str, value: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ["frontier", str(QUICK), "--vans", "62,70", "--out", str(out), option, value]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {option}: ") and result.output.count("\n") == 1
    assert not out.exists()


def test_the_knee_and_the_warm_start() -> None:
    # Kneedle: the point farthest above the chord of a concave curve.
    x = np.array([0.0, 1, 2, 3, 4])
    assert knee_index(x, np.array([0.0, 0.6, 0.8, 0.9, 1.0])) == 1
    grown = warm_start(np.array([2, 1, 0]), np.array([2, 3, 1]), 5, max_stations=2)
    assert grown.tolist() == [2, 3, 0]  # the extra vans where the seed has more; no third station


def test_the_cost_kpis_add_up_and_leave_the_records_alone() -> None:
    scenario = load_scenario(QUICK).with_overrides(horizon={"days": 2, "warmup_days": 1})
    cheap = run_replication(scenario, 0)
    dear = run_replication(
        with_fields(
            scenario, {"cost.wage_cny_per_year": 100_000.0, "cost.fuel_cny_per_road_km": 2.0}
        ),
        0,
    )
    # Costs are worked out after the run: the records are the same whatever they are.
    pd.testing.assert_frame_equal(dear.calls, cheap.calls, check_exact=True)
    pd.testing.assert_frame_equal(dear.units, cheap.units, check_exact=True)
    for kpis in (cheap.kpis, dear.kpis):
        assert kpis["cost_cny_per_year"] == pytest.approx(sum(kpis[p] for p in COST_PARTS))
    assert cheap.kpis["cost_crew_cny_per_year"] == pytest.approx(110 * 2 * 65_237 * 1.3)
    assert dear.kpis["cost_crew_cny_per_year"] == pytest.approx(110 * 2 * 100_000 * 1.3)
    assert cheap.kpis["cost_fuel_cny_per_year"] > 0
    assert dear.kpis["cost_fuel_cny_per_year"] == pytest.approx(
        cheap.kpis["cost_fuel_cny_per_year"] * 2.5
    )
    assert cheap.kpis["cost_stations_cny_per_year"] == pytest.approx(60 * 120_000 + 60 * 2 * 30_000)
