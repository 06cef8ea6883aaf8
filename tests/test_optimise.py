"""The network design optimiser: its acceptance rule, its search, and what it writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from sim import load_scenario, run
from sim.analysis.kpis import Interval
from sim.cli import app
from sim.errors import UserInputError
from sim.experiments.design import evaluation as evaluate_module
from sim.experiments.design.evaluation import Evaluation
from sim.experiments.design.optimise import OptimiseResult, judge, optimise
from sim.experiments.design.sites import (
    PROBE_REPLICATION,
    candidate_sites,
    design_csv,
    design_scenario,
)
from sim.experiments.design.spec import DesignSpec, Requirement, load_spec, parse_requirement
from sim.experiments.runs import executor
from sim.experiments.runs.store import ResultStore
from sim.model.loading import with_fields
from sim.model.network import build_network
from sim.model.scenario import Scenario
from sim.outputs.design_folder import write_design, write_design_report

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quick.yaml"
runner = CliRunner()


def _busy_quick() -> Scenario:
    """Henan with too few vans, shared equally: where they stand matters, and moves pay."""
    return with_fields(
        load_scenario(QUICK),
        {
            "network.vans.total": 70,
            "network.vans.allocation": "equal",
            "horizon.days": 2,
            "horizon.warmup_days": 0.2,
            "replications": 4,
        },
    )


# Two kinds of move, so that rounds judge several candidates at once.
SPEC = DesignSpec(
    max_evaluations=6, probe_days=1, demand_sample_calls=3000, moves=("vans", "close")
)


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[OptimiseResult, Path]:
    store = tmp_path_factory.mktemp("design") / "store"
    return optimise(_busy_quick(), SPEC, store=store), store


@pytest.fixture(scope="module")
def folder(searched: tuple[OptimiseResult, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    result, _ = searched
    return write_design(result, tmp_path_factory.mktemp("out") / "design", QUICK)


# --------------------------------------------------------------------------- the rule


def _evaluation(values: dict[str, list[float]]) -> Evaluation:
    n = len(next(iter(values.values())))
    kpis = pd.DataFrame({"replication": range(n), **values})
    return Evaluation("x", kpis, pd.DataFrame(), pd.DataFrame(), 1.0)


def test_a_candidate_better_in_every_replication_is_accepted() -> None:
    spec = DesignSpec()
    incumbent = _evaluation({"on_time_arrival_rate": [0.90, 0.92, 0.91, 0.93]})
    better = _evaluation({"on_time_arrival_rate": [0.91, 0.93, 0.92, 0.94]})
    verdict = judge(spec, better, 100, incumbent, 100, 0.95)
    assert verdict.accepted
    assert verdict.diff.low > 0


def test_a_candidate_better_on_average_but_not_significantly_is_rejected() -> None:
    spec = DesignSpec()
    incumbent = _evaluation({"on_time_arrival_rate": [0.90, 0.92, 0.91, 0.93]})
    noisy = _evaluation({"on_time_arrival_rate": [0.93, 0.90, 0.94, 0.92]})
    verdict = judge(spec, noisy, 100, incumbent, 100, 0.95)
    assert noisy.kpis["on_time_arrival_rate"].mean() > incumbent.kpis["on_time_arrival_rate"].mean()
    assert not verdict.accepted
    assert verdict.diff.low < 0 < verdict.diff.high


def test_a_lower_is_better_objective_wants_the_interval_below_zero() -> None:
    spec = DesignSpec(minimise="response_p90_h")
    incumbent = _evaluation({"response_p90_h": [3.0, 3.2, 3.1, 3.3]})
    faster = _evaluation({"response_p90_h": [2.9, 3.1, 3.0, 3.2]})
    assert judge(spec, faster, 9, incumbent, 9, 0.95).accepted
    assert not judge(spec, incumbent, 9, faster, 9, 0.95).accepted


def test_fewer_vans_are_accepted_only_while_the_requirement_holds() -> None:
    spec = DesignSpec(minimise="vans", require=(parse_requirement("on_time_arrival_rate>=0.93"),))
    incumbent = _evaluation({"on_time_arrival_rate": [0.95, 0.96, 0.95, 0.96]})
    kept = _evaluation({"on_time_arrival_rate": [0.94, 0.95, 0.945, 0.95]})
    broken = _evaluation({"on_time_arrival_rate": [0.92, 0.94, 0.93, 0.935]})
    assert judge(spec, kept, 90, incumbent, 100, 0.95).accepted
    verdict = judge(spec, broken, 90, incumbent, 100, 0.95)
    assert not verdict.accepted and "breaks" in verdict.reason
    assert not judge(spec, kept, 110, incumbent, 100, 0.95).accepted


def test_an_incumbent_short_of_a_requirement_takes_a_move_that_closes_the_gap() -> None:
    spec = DesignSpec(minimise="vans", require=(parse_requirement("on_time_arrival_rate>=0.93"),))
    short = _evaluation({"on_time_arrival_rate": [0.90, 0.91, 0.90, 0.91]})
    closer = _evaluation({"on_time_arrival_rate": [0.91, 0.92, 0.91, 0.92]})
    verdict = judge(spec, closer, 100, short, 100, 0.95)
    assert verdict.accepted and not verdict.feasible


def test_requirements_read_from_the_command_line() -> None:
    req = parse_requirement("on_time_repair_rate>=0.93")
    assert req == Requirement(kpi="on_time_repair_rate", at_least=0.93)
    assert req.met_by(Interval(0.95, 0.94, 0.96, 5))
    assert not req.met_by(Interval(0.95, 0.92, 0.98, 5))
    assert parse_requirement("response_p90_h<=4").met_by(Interval(3.5, 3.0, 3.9, 5))
    for bad in ("on_time_arrival_rate=0.9", "nonsense>=1", "on_time_arrival_rate>=x"):
        with pytest.raises(UserInputError) as caught:
            parse_requirement(bad)
        assert caught.value.field == "--require"


# --------------------------------------------------------------------------- the search


def test_accepted_moves_never_make_the_objective_worse(
    searched: tuple[OptimiseResult, Path],
) -> None:
    result, _ = searched
    history = result.history
    moves = history[history["kind"] != "current"]  # the seed replaces the current network too
    accepted = moves[moves["accepted"]]
    assert len(accepted) >= 1, "the test needs a search that accepts a move"
    # Each accepted move's paired interval lies wholly above zero ...
    assert (accepted["diff_low"] > 0).all()
    # A round that judges m candidates does so at level 1 - 0.05/m (Bonferroni).
    per_round = moves.groupby("round")["level"].agg(["first", "size"])
    rounds = per_round[per_round.index > 0]
    assert (rounds["size"] > 1).any(), "the test needs a round of several candidates"
    assert np.allclose(rounds["first"], 1 - 0.05 / rounds["size"])
    # ... and the incumbent's objective never goes down along the search.
    incumbent = history["incumbent_objective"].dropna().to_numpy()
    assert (np.diff(incumbent) >= 0).all()
    assert result.optimised_vans.sum() == result.current_vans.sum()  # the same fleet


def test_rejected_moves_leave_the_incumbent_alone(searched: tuple[OptimiseResult, Path]) -> None:
    history = searched[0].history
    moves = history[history["round"] > 0]
    for _, row in moves[~moves["accepted"]].iterrows():
        same_round = moves[moves["round"] == row["round"]]
        if not same_round["accepted"].any():
            before = history[history["round"] < row["round"]]["incumbent_objective"].dropna()
            assert row["incumbent_objective"] == before.iloc[-1]


def test_the_search_is_run_on_common_random_numbers(searched: tuple[OptimiseResult, Path]) -> None:
    result, store = searched
    runs = ResultStore(store).read_runs()
    search = runs[(runs["seed"] == result.scenario.seed) & (runs["replication"] < 4)]
    designs = len(result.history["design"].unique())
    assert designs >= 3 and len(search) == designs * 4  # each design's runs, kept once
    for _, same in search.groupby("replication"):
        assert same["calls_per_day"].nunique() == 1  # every design answered the same calls
    assert search["on_time_arrival_rate"].nunique() > 4
    # The first stage's probe, on a stream of its own, is kept there too.
    assert (runs["replication"] == PROBE_REPLICATION).sum() == 1


def test_a_search_run_again_resumes_from_its_store(
    searched: tuple[OptimiseResult, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    result, store = searched

    def no_runs(*args: object, **kwargs: object) -> None:
        raise AssertionError("a run was simulated again")

    monkeypatch.setattr(executor, "execute_task", no_runs)
    again = optimise(_busy_quick(), result.spec, store=store)
    pd.testing.assert_frame_equal(
        again.history.drop(columns="elapsed_s"), result.history.drop(columns="elapsed_s")
    )
    assert np.array_equal(again.optimised_vans, result.optimised_vans)


def test_fewer_vans_never_break_the_requirement(tmp_path: Path) -> None:
    spec = DesignSpec(
        minimise="vans",
        require=(parse_requirement("on_time_arrival_rate>=0.85"),),
        moves=("remove",),
        max_evaluations=4,
        probe_days=1,
        demand_sample_calls=3000,
    )
    result = optimise(_busy_quick(), spec, store=tmp_path / "store")
    history = result.history
    accepted = history[history["accepted"]]
    assert accepted["vans"].is_monotonic_decreasing
    assert result.optimised_vans.sum() < 70, "the test needs a search that removes vans"
    # Every accepted design with fewer vans keeps the whole interval above 85%.
    fewer = accepted[accepted["vans"] < 70]
    assert (fewer["on_time_arrival_rate_low"] >= 0.85).all()
    assert (history["on_time_arrival_rate_required"] == 0.85).all()


def test_evaluate_gives_each_design_its_own_runs_whatever_the_workers(tmp_path: Path) -> None:
    scenario = with_fields(_busy_quick(), {"horizon.days": 1, "horizon.warmup_days": 0.1})
    network = build_network(scenario)
    sites = candidate_sites(scenario, network)
    current = np.zeros(len(sites), dtype=np.int64)
    current[: network.n_stations] = network.vans_per_station
    other = current.copy()
    other[0] += 3
    other[1:4] -= 1
    designs = []
    for name, vans in (("a", current), ("b", other)):
        path = tmp_path / f"{name}.csv"
        path.write_text(design_csv(sites, vans), encoding="utf-8")
        designs.append(design_scenario(scenario, path))
    together = evaluate_module.evaluate_designs(designs, [0, 1], workers=2)
    alone = [evaluate_module.evaluate_designs([d], [0, 1])[0] for d in designs]
    for a, b in zip(together, alone, strict=True):
        pd.testing.assert_frame_equal(a.kpis, b.kpis)
        pd.testing.assert_frame_equal(a.stations, b.stations)
    assert not together[0].kpis.equals(together[1].kpis)


# --------------------------------------------------------------------------- the result


def test_the_stations_file_reloads_and_reproduces_the_reported_kpis(folder: Path) -> None:
    scenario = load_scenario(folder / "optimised.yaml")
    assert scenario.network.stations.csv == folder / "stations.csv"
    rerun = run(scenario)
    reported = pd.read_csv(folder / "kpis_by_replication.csv")
    optimised = reported[reported["network"] == "optimised"].drop(columns="network")
    mine = rerun.kpis_by_replication[optimised.columns]
    pd.testing.assert_frame_equal(mine.reset_index(drop=True), optimised.reset_index(drop=True))
    table = pd.read_csv(folder / "kpis.csv").set_index("kpi")
    assert (
        rerun.summary.at["on_time_arrival_rate", "mean"]
        == table.at["on_time_arrival_rate", "optimised"]
    )
    stations = pd.read_csv(folder / "stations.csv")
    assert list(stations.columns) == ["id", "lat", "lon", "vans", "workshop_bays"]
    assert stations["vans"].sum() == 70


def test_the_current_network_frozen_to_csv_is_the_scenario_itself(tmp_path: Path) -> None:
    scenario = _busy_quick()
    network = build_network(scenario)
    sites = candidate_sites(scenario, network)
    vans = np.zeros(len(sites), dtype=np.int64)
    vans[: network.n_stations] = network.vans_per_station
    csv = tmp_path / "current.csv"
    csv.write_text(design_csv(sites, vans), encoding="utf-8")
    frozen = run(design_scenario(scenario, csv), replications=2)
    own = run(scenario, replications=2)
    pd.testing.assert_frame_equal(frozen.kpis_by_replication, own.kpis_by_replication)


def test_the_folder_holds_the_changes_the_history_and_the_figures(folder: Path) -> None:
    changes = pd.read_csv(folder / "changes.csv")
    current = pd.read_csv(folder / "current_stations.csv").set_index("id")["vans"]
    optimised = pd.read_csv(folder / "stations.csv").set_index("id")["vans"]
    moved = optimised.sub(current, fill_value=0)
    assert set(changes["id"]) == set(moved[moved != 0].index)
    assert changes["vans_change"].sum() == 0
    by_province = pd.read_csv(folder / "changes_by_province.csv")
    assert by_province["vans_after"].sum() == 70 and by_province["vans_change"].sum() == 0
    history = pd.read_csv(folder / "history.csv")
    assert list(history["evaluation"]) == list(range(1, len(history) + 1))
    kpis = pd.read_csv(folder / "kpis.csv")
    assert {"current", "optimised", "diff", "diff_low", "diff_high"} <= set(kpis.columns)
    for name in ("objective", "changes_map"):
        assert (folder / "figures" / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    summary = json.loads((folder / "optimise.json").read_text(encoding="utf-8"))
    assert summary["stage1"]["van_solve"]["proven_optimal"]
    assert summary["confirm_seed"] == 8 and summary["search_seed"] == 7


def test_report_on_a_design_folder(folder: Path) -> None:
    result = runner.invoke(app, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 2
    assert "Changes by province" in page and "河南省" in page
    assert write_design_report(folder, folder / "again.html").is_file()


# --------------------------------------------------------------------------- stations


def test_a_station_is_named_in_the_prefecture_it_belongs_to() -> None:
    """Not the prefecture of the nearest seat: 安阳市-3 stands nearer 鹤壁市's seat."""
    scenario = load_scenario(QUICK)
    network = build_network(scenario)
    table = candidate_sites(scenario, network).table
    current = table[table["origin"] == "current"]
    own = network.areas.iloc[network.station_area]
    assert list(current["prefecture"]) == list(own["name"])
    assert list(current["province"]) == list(own["province"])
    assert list(current["adcode"]) == list(own["adcode"].astype(str))
    row = table.set_index("id").loc["安阳市-3"]
    assert (row["prefecture"], row["province"]) == ("安阳市", "河南省")
    seats = table[table["origin"] == "seat"]
    assert (seats["id"].str.split("-").str[0] == seats["prefecture"]).all()


def test_mclp_seeding_keeps_fixed_stations_and_the_station_limit(tmp_path: Path) -> None:
    scenario = _busy_quick()
    network = build_network(scenario)
    candidates = tmp_path / "dealers.csv"
    candidates.write_text(
        "id,lat,lon,opening_cost_cny\nD1,34.75,113.62,100000\nD2,32.99,112.53,50000\n",
        encoding="utf-8",
    )
    keep = [str(name) for name in network.station_name[:5]]
    spec = DesignSpec(
        stations_model="mclp",
        max_stations=55,
        fixed_stations=tuple(keep),
        candidates_csv=candidates,
        max_evaluations=2,
        probe_days=1,
        demand_sample_calls=3000,
    )
    result = optimise(scenario, spec, store=tmp_path / "store")
    ids = result.sites.ids
    seeded_open = set(ids[result.seed_vans > 0])
    assert set(keep) <= seeded_open
    assert len(seeded_open) <= 55
    assert result.seed_vans.sum() == 70
    assert result.stage1.station_solve is not None and result.stage1.station_solve.proven_optimal


# --------------------------------------------------------------------------- user errors


def test_spec_mistakes_name_the_file_line_and_field(tmp_path: Path) -> None:
    spec = tmp_path / "design.yaml"
    spec.write_text("maximise: on_time_arrival_rate\nmax_vans: -3\n", encoding="utf-8")
    with pytest.raises(UserInputError) as caught:
        load_spec(spec)
    assert (caught.value.file, caught.value.line, caught.value.field) == (str(spec), 2, "max_vans")
    spec.write_text("max_vans: 3\nminimise: vans\n", encoding="utf-8")
    with pytest.raises(UserInputError, match="needs a requirement") as caught:
        load_spec(spec)
    assert (caught.value.line, caught.value.field) == (2, "minimise")
    spec.write_text("require:\n  on_time_arrival_rate: {at_least: 0.93}\nminimise: vans\n")
    assert load_spec(spec).require[0].at_least == 0.93
    with pytest.raises(UserInputError) as caught:
        load_spec(None, {"maximise": "response_p90_h"}, {"maximise": "--maximise"})
    assert caught.value.field == "--maximise"
    # As the command line gives them: --minimise vans --require ..., all at once.
    given = {"maximise": None, "minimise": "vans"}
    with pytest.raises(UserInputError) as caught:
        load_spec(None, given, {"minimise": "--minimise"})
    assert caught.value.field == "--minimise"
    given["require"] = (parse_requirement("on_time_arrival_rate>=0.93"),)
    assert load_spec(None, given).objective == "vans"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--maximise", "nonsense"], "--maximise: maximise: 'nonsense' is not a KPI"),
        (["--require", "on_time_arrival_rate=0.9"], "--require: 'on_time_arrival_rate=0.9'"),
        (["--fixed", "nowhere"], "--fixed: 'nowhere' is not a current station"),
        (["--max-stations", "10"], "--max-stations: max_stations 10 is below the 60"),
        (["--moves", "teleport"], "--moves:"),
    ],
)
def test_cli_mistakes_are_one_line_and_exit_2(
    args: list[str], expected: str, tmp_path: Path
) -> None:
    result = runner.invoke(
        app, ["optimise", str(QUICK), "--out", str(tmp_path / "o"), "--days", "2", *args]
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert expected in lines[0]
    assert "Traceback" not in result.output


def test_a_bad_candidates_file_names_its_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "dealers.csv"
    bad.write_text("id,lat,lon\nD1,34.7,113.6\nD2,95,113\n", encoding="utf-8")
    result = runner.invoke(
        app,
        [
            "optimise",
            str(QUICK),
            "--out",
            str(tmp_path / "o"),
            "--days",
            "2",  # more than quick.yaml's warm-up of 1 day
            "--candidates",
            str(bad),
        ],
    )
    assert result.exit_code == 2
    assert f"error: {bad}:3: lat: missing or out of range" in result.output
    assert not (tmp_path / "o").exists()  # the folder claimed for it is released, empty
