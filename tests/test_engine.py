"""The experiment engine: keys, the result store and resuming, failures, caches, progress.

Short runs (quick.yaml over two days); the Dask engine is in test_dask.py, interrupted
sweeps in test_interrupt.py.
"""

from __future__ import annotations

import importlib
import io
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

import sim
from sim.cli import app
from sim.errors import PolicyFailure, UserInputError
from sim.experiments.runs import executor as engine_module
from sim.experiments.runs import keys as keys_module
from sim.experiments.runs import worker as worker_module
from sim.experiments.runs.executor import Experiment, LocalEngine, RunSpec
from sim.experiments.runs.keys import run_key
from sim.experiments.runs.progress import LineReporter, ProgressState, progress_line
from sim.experiments.runs.run import RunFailedError, run, run_all
from sim.experiments.runs.store import ResultStore
from sim.experiments.runs.sweep import Parameter, sweep
from sim.experiments.runs.worker import execute_task, failing_call
from sim.model.dispatch import DispatchView, NearestStation, Order, Van
from sim.model.loading import load_scenario, with_fields
from sim.model.scenario import Scenario
from sim.outputs.run_folder import read_run, write_run

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quick.yaml"
FLEET = Parameter("network.vans.total", (70, 140))
runner = CliRunner()


@pytest.fixture(scope="module")
def quick() -> Scenario:
    return load_scenario(QUICK).with_overrides(
        horizon={"days": 2, "warmup_days": 0.2}, replications=3
    )


class FailsWithManyVans(NearestStation):
    """The published rule, except that with 140 vans or more it raises at call 5."""

    name = "fails_with_many_vans"

    def setup(self, view: DispatchView) -> None:
        super().setup(view)
        self._fail = view.network.n_vans >= 140

    def assign(self, order: Order, view: DispatchView) -> Van | None:
        if self._fail and order.call >= 5:
            raise ValueError("no van may go")
        return super().assign(order, view)


def _state_log() -> tuple[list[ProgressState], Any]:
    states: list[ProgressState] = []
    return states, states.append


# --------------------------------------------------------------------------- keys


def test_a_run_key_depends_on_what_the_numbers_depend_on(quick: Scenario) -> None:
    key = run_key(quick, None, 0)
    assert run_key(quick, None, 0) == key
    assert run_key(quick.with_overrides(replications=9), None, 0) == key  # how many: not a run
    assert run_key(quick, "nearest_station", 0) == key  # the scenario's own policy, named
    assert run_key(quick, None, 1) != key
    assert run_key(quick, "nearest_idle_van", 0) != key
    assert run_key(quick, FailsWithManyVans, 0) != key
    assert run_key(quick.with_overrides(seed=quick.seed + 1), None, 0) != key
    assert run_key(with_fields(quick, {"network.vans.total": 111}), None, 0) != key


def test_a_run_key_changes_with_the_code_and_the_input_files(
    quick: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = run_key(quick, None, 0)
    monkeypatch.setattr(keys_module, "code_digest", lambda: "other code")
    assert run_key(quick, None, 0) != key
    monkeypatch.undo()
    assert run_key(quick, None, 0) == key
    # A stations CSV named by the scenario: its content, not its name, is in the key.
    stations = tmp_path / "stations.csv"
    stations.write_text("id,lat,lon,vans\nA,34.75,113.62,3\nB,34.80,114.30,2\n", encoding="utf-8")
    with_csv = with_fields(
        quick, {"network.stations.generate": None, "network.stations.csv": str(stations)}
    )
    before = run_key(with_csv, None, 0)
    # Nor the folder it lies in: the same file elsewhere (a design's stations file in a
    # staging folder, then in the output folder that replaced it) finds the same runs.
    moved = tmp_path / "elsewhere" / "stations.csv"
    moved.parent.mkdir()
    moved.write_bytes(stations.read_bytes())
    assert run_key(with_fields(with_csv, {"network.stations.csv": str(moved)}), None, 0) == before
    stations.write_text("id,lat,lon,vans\nA,34.75,113.62,4\nB,34.80,114.30,2\n", encoding="utf-8")
    assert run_key(with_csv, None, 0) != before


# --------------------------------------------------------------------------- the store


def test_a_rerun_on_the_same_store_runs_only_what_is_missing(
    quick: Scenario, tmp_path: Path
) -> None:
    store = ResultStore(tmp_path / "store")
    first = sweep(quick, [FLEET], replications=2, store=store)
    assert len(list((store.root / "runs").glob("*.parquet"))) == 4
    states, report = _state_log()
    again = sweep(quick, [FLEET], replications=3, store=store, report=report)
    final = states[-1]
    assert (final.total, final.finished, final.reused, final.failed) == (6, 6, 4, 0)
    assert len(list((store.root / "runs").glob("*.parquet"))) == 6
    pd.testing.assert_frame_equal(
        again.rows[again.rows["replication"] < 2].reset_index(drop=True),
        first.rows,
        check_exact=True,
    )
    # Without the store, the same numbers.
    fresh = sweep(quick, [FLEET], replications=3)
    pd.testing.assert_frame_equal(again.rows, fresh.rows, check_exact=True)
    manifest = store.read_manifest()
    assert manifest["counts"] == {
        "runs": 6, "finished": 6, "reused": 4, "failed": 0, "pending": 0
    }  # fmt: skip
    assert {run["status"] for run in manifest["runs"]} == {"done"}
    assert not list(store.root.rglob("*.tmp"))


def test_a_run_made_by_other_code_is_not_reused(
    quick: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ResultStore(tmp_path / "store")
    run(quick, replications=2, store=store, keep_tables=False)
    monkeypatch.setattr(keys_module, "code_digest", lambda: "changed code")
    states, report = _state_log()
    run(quick, replications=2, store=store, keep_tables=False, report=report)
    assert states[-1].reused == 0 and states[-1].finished == 2


def test_tables_are_written_by_the_runs_and_read_back_from_the_store(
    quick: Scenario, tmp_path: Path
) -> None:
    store = ResultStore(tmp_path / "store")
    stored = run(quick, workers=2, store=store)
    memory = run(quick)
    for replication in stored.replications:
        path = replication.table_path("calls")
        assert path is not None and path.parent == store.root / "calls"
    pd.testing.assert_frame_equal(stored.calls, memory.calls, check_exact=True)
    pd.testing.assert_frame_equal(stored.units, memory.units, check_exact=True)
    # The run folder is assembled from the parts, one replication at a time.
    folder = write_run(stored, tmp_path / "run", QUICK)
    calls, units, summary = read_run(folder)
    pd.testing.assert_frame_equal(calls, memory.calls, check_exact=True, check_categorical=False)
    pd.testing.assert_frame_equal(units, memory.units, check_exact=True, check_categorical=False)
    assert summary["replications"] == 3
    # Runs stored without tables are run again when tables are wanted.
    lean_store = ResultStore(tmp_path / "lean")
    run(quick, replications=1, store=lean_store, keep_tables=False)
    states, report = _state_log()
    with_tables = run(quick, replications=1, store=lean_store, report=report)
    assert states[-1].reused == 0
    assert with_tables.replications[0].table_path("units") is not None


def test_a_second_command_cannot_use_a_store_in_use(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "store")
    refused = pytest.raises(UserInputError, match="another command is using this result store")
    with store.locked(), refused, ResultStore(tmp_path / "store").locked():
        pass
    with store.locked():  # released
        pass


def test_equal_points_run_once(quick: Scenario) -> None:
    states, report = _state_log()
    same = with_fields(quick, {"network.vans.total": 90})
    first, second = run_all([(same, None), (same, None)], 2, report=report)
    assert (states[-1].total, states[-1].finished) == (2, 2)  # two distinct runs, not four
    pd.testing.assert_frame_equal(
        first.kpis_by_replication, second.kpis_by_replication, check_exact=True
    )


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_point_does_not_stop_the_others(
    quick: Scenario, tmp_path: Path, workers: int
) -> None:
    store = ResultStore(tmp_path / "store")
    states, report = _state_log()
    result = sweep(
        quick,
        [FLEET],
        replications=2,
        policy=FailsWithManyVans,
        workers=workers,
        store=store,
        raise_on_failure=False,
        report=report,
    )
    assert (states[-1].finished, states[-1].failed, states[-1].remaining) == (2, 2, 0)
    ok, failing = result.results
    assert len(ok.replications) == 2 and not ok.failures
    assert not failing.replications
    assert [(f.point, f.replication) for f in result.failures] == [(1, 0), (1, 1)]
    for failure in result.failures:
        assert failure.policy == "fails_with_many_vans"
        assert (failure.error_type, failure.message) == ("ValueError", "no van may go")
        assert failure.call_id == 5
        assert "assign" in failure.traceback
    assert "point 1 (network.vans.total=140)" in result.failures[0].describe(result.point_label(1))
    # The point that finished is stored; the failures are recorded beside it.
    stored = store.read_runs()
    assert sorted(stored["replication"]) == [0, 1] and set(stored["point"]) == {0}
    assert {(f.point, f.error_type) for f in store.failures()} == {(1, "ValueError")}
    assert list(result.rows["network.vans.total"]) == [70, 70]
    expected = sweep(quick, [Parameter("network.vans.total", (70,))], replications=2)
    pd.testing.assert_frame_equal(result.rows, expected.rows, check_exact=True)


def test_a_failure_raises_once_the_others_have_run(quick: Scenario) -> None:
    # In this process: the policy's failure, named as such, with the original as cause.
    with pytest.raises(PolicyFailure, match="no van may go") as info:
        sweep(quick, [FLEET], replications=1, policy=FailsWithManyVans)
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(RunFailedError, match=r"point 1, policy fails_with_many_vans"):
        sweep(quick, [FLEET], replications=2, policy=FailsWithManyVans, workers=2)


def test_the_failing_call_is_found_in_the_traceback() -> None:
    assert failing_call(KeyError("x")) is None
    tagged = RuntimeError("tagged")
    tagged.call_id = 17  # type: ignore[attr-defined]
    assert failing_call(tagged) == 17


def test_the_command_lists_the_failure_and_exits_non_zero(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    result = runner.invoke(
        app,
        [
            "sweep", str(QUICK), "--vary", "network.vans.total=70,140", "--days", "2",
            "--replications", "2", "--policy", "test_engine:FailsWithManyVans", "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "failed run(s)" in result.stdout and "no van may go" in result.stdout
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: 2 of 4 runs failed; the 2 others are kept in"), last
    assert "point 1 (network.vans.total=140)" in last and "at call 5" in last
    assert not (out / "sweep.json").exists()  # an incomplete sweep writes no summary
    assert len(list((out / "store" / "runs").glob("*.parquet"))) == 2
    assert len(list((out / "store" / "failed").glob("*.json"))) == 2


class _ClusterMishaps(LocalEngine):
    """Workers that run other code, or write tables where this machine cannot see them."""

    def run(self, tasks: Any, on_result: Any, on_tick: Any) -> None:
        for k, task in enumerate(tasks):
            result = execute_task(replace(task, store_root=None))
            if k == 0:
                result.code = "another version"
            else:
                result.tables_written = True  # ...into a folder not shared with us
            on_result(task, result)


def test_a_worker_with_other_code_or_another_folder_fails_its_run(
    quick: Scenario, tmp_path: Path
) -> None:
    experiment = Experiment(_ClusterMishaps(), ResultStore(tmp_path / "store"), tables=True)
    first, second = experiment.execute([RunSpec(quick, None, 0), RunSpec(quick, None, 1)])
    assert first.failure is not None and first.failure.error_type == "OtherCode"
    assert "install the same version on every worker" in first.failure.message
    assert second.failure is not None and second.failure.error_type == "StoreNotShared"
    assert "put --out on a folder every worker shares" in second.failure.message


# --------------------------------------------------------------------------- workers


def test_results_do_not_depend_on_workers_or_order(quick: Scenario) -> None:
    alone = sweep(quick, [FLEET], replications=3)
    pooled = sweep(quick, [FLEET], replications=3, workers=2)
    pd.testing.assert_frame_equal(pooled.rows, alone.rows, check_exact=True)
    # A run alone, last, or in another experiment: the same numbers.
    (single,) = Experiment(LocalEngine(1), tables=False).execute(
        [RunSpec(with_fields(quick, {"network.vans.total": 140}), None, 2, point=1)]
    )
    last = alone.rows[(alone.rows["point"] == 1) & (alone.rows["replication"] == 2)]
    assert single.kpis is not None
    for kpi, value in single.kpis.items():
        assert last[kpi].iloc[0] == value or (pd.isna(value) and pd.isna(last[kpi].iloc[0]))


def test_a_network_is_built_once_per_point(
    quick: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Built where the points are checked, then kept: forked workers build none."""
    log = tmp_path / "builds.txt"
    from sim.model.network import build_network as original

    def counted(scenario: Scenario) -> Any:
        with log.open("a") as handle:
            handle.write(f"{os.getpid()}\n")
        return original(scenario)

    monkeypatch.setattr(worker_module, "build_network", counted)
    worker_module._NETWORKS.clear()
    sweep(quick, [FLEET], replications=3, workers=2, policy="nearest_idle_van")
    builds = log.read_text().split()
    if engine_module._start_method() == "fork":
        assert builds == [str(os.getpid())] * 2
    else:  # spawned workers build each point once at most
        assert len(builds) <= 2 * 3


def test_the_command_builds_the_network_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked before the runs, then reused by them (it was built twice)."""
    from sim.model.network import build_network as original

    builds: list[int] = []

    def counted(scenario: Scenario) -> Any:
        builds.append(1)
        return original(scenario)

    import sim.model.network

    monkeypatch.setattr(worker_module, "build_network", counted)
    monkeypatch.setattr(sim.model.network, "build_network", counted)  # imported when used
    worker_module._NETWORKS.clear()
    result = runner.invoke(app, ["run", str(QUICK), "--days", "2", "--replications", "2"])
    assert result.exit_code == 0, result.output
    assert len(builds) == 1


# --------------------------------------------------------------------------- progress


def test_progress_counts_and_eta() -> None:
    state = ProgressState(total=10, finished=4, failed=1, reused=2, running=0.5, elapsed_s=30.0)
    assert state.remaining == 5
    assert state.fraction == pytest.approx(0.55)
    # 3.5 runs done here in 30 s: 4.5 runs still to go take 30 / 3.5 * 4.5 s.
    assert state.eta_s == pytest.approx(30 / 3.5 * 4.5)
    assert ProgressState(total=3).eta_s is None
    line = progress_line(state, "sweep")
    assert line == (
        "sweep: 5/10 runs, 4 finished (2 reused), 1 failed, 5 remaining, elapsed 30s, ETA 39s"
    )


def test_progress_lines_come_every_few_seconds_and_at_the_end() -> None:
    now = [0.0]
    stream = io.StringIO()
    lines = LineReporter(stream, "run", interval_s=5.0, clock=lambda: now[0])
    for second in range(12):
        now[0] = float(second)
        lines(ProgressState(total=12, finished=second, elapsed_s=float(second)))
    lines.close()
    written = stream.getvalue().splitlines()
    assert [line.split(" runs")[0] for line in written] == ["run: 5/12", "run: 10/12", "run: 11/12"]
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()


def test_a_command_prints_progress_lines_when_not_on_a_terminal(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["run", str(QUICK), "--days", "2", "--replications", "2", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "quick_henan x2: 2/2 runs, 2 finished, 0 failed, 0 remaining" in result.stderr
    assert "ETA" in result.stderr
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["command"] == "run" and manifest["counts"]["finished"] == 2


# --------------------------------------------------------------------------- agents on duty


@pytest.mark.parametrize("workers", [1, 2])
def test_store_parts_carry_the_agents_table(quick: Scenario, tmp_path: Path, workers: int) -> None:
    """Kept tables include the hotline's agents on duty, in the store and the run folder."""
    in_memory = run(quick, replications=2)
    store = ResultStore(tmp_path / "store")
    stored = run(quick, replications=2, workers=workers, store=store, keep_tables=True)
    for replication in stored.replications:
        assert replication.table_path("agents") is not None
        assert replication.table_path("agents").is_file()  # type: ignore[union-attr]
    pd.testing.assert_frame_equal(stored.agents, in_memory.agents, check_exact=True)
    out = write_run(stored, tmp_path / "run")
    from sim.outputs.run_folder import read_agents

    pd.testing.assert_frame_equal(read_agents(out), in_memory.agents, check_exact=True)
    assert stored.kpis_by_replication.equals(in_memory.kpis_by_replication)


def test_without_dask_the_cluster_options_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_import = importlib.import_module

    def no_dask(name: str, *args: Any) -> Any:
        if name == "distributed":
            raise ImportError("No module named 'distributed'")
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", no_dask)
    result = runner.invoke(app, ["run", str(QUICK), "--days", "2", "--engine", "dask"])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "error: --engine: needs dask.distributed: pip install 'rescue-sim[cluster]'"
    ]
    result = runner.invoke(app, ["run", str(QUICK), "--engine", "spark"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --engine: unknown engine 'spark'; known: local, dask")
    result = runner.invoke(app, ["run", str(QUICK), "--scheduler", "10.0.0.1:8786"])
    assert result.stderr.startswith("error: --scheduler: '10.0.0.1:8786': give the scheduler's")


def test_a_store_part_that_cannot_be_written_is_an_output_error(tmp_path: Path) -> None:
    """Disk full, a read-only folder, a file in the way: one line naming the path."""
    from sim.errors import OutputError
    from sim.experiments.runs.store import write_table

    blocker = tmp_path / "store"
    blocker.write_text("not a folder", encoding="utf-8")
    with pytest.raises(OutputError, match=r"cannot write .*store/calls/k\.parquet"):
        write_table(blocker, "calls", "k", pd.DataFrame({"x": [1]}))


def test_a_run_with_no_finished_replication_has_empty_tables() -> None:
    # Every replication failed (or none ran): each table is an empty frame, relocations
    # too (it raised "No objects to concatenate" before).
    from sim.experiments.runs.run import RunResult

    result = RunResult(load_scenario(QUICK), "nearest_station")
    for table in (result.calls, result.units, result.agents, result.relocations):
        assert isinstance(table, pd.DataFrame)
        assert table.empty


def test_the_code_digest_covers_the_whole_package() -> None:
    # Computed over every module of sim/, found from sim/version.py (it lived in a module
    # that moved a folder deeper once, and then hashed only sim/experiments/).
    from sim.version import package_root

    root = package_root()
    assert root == Path(sim.__file__).resolve().parent
    assert (root / "model" / "simulation.py").is_file()
    assert (root / "cli" / "app.py").is_file()


class _OtherCodeEverywhere(LocalEngine):
    """Every worker runs other code: every run fails, none with a policy's error."""

    def run(self, tasks: Any, on_result: Any, on_tick: Any) -> None:
        for task in tasks:
            result = execute_task(task)
            result.code = "another version"
            on_result(task, result)


def test_a_sweep_whose_every_run_failed_lists_them_without_a_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It ended in "internal error: KeyError: None of ['kpi'] are in the columns" (the
    # table of a sweep with no finished run) before listing the failures.
    monkeypatch.setattr(engine_module, "make_engine", lambda *args: _OtherCodeEverywhere(1))
    result = runner.invoke(
        app,
        [
            "sweep", str(QUICK), "--vary", "network.vans.total=70,140", "--days", "2",
            "--replications", "1", "--out", str(tmp_path / "sweep"),
        ],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "internal error" not in result.output
    assert "OtherCode" in result.stdout
    assert result.stderr.splitlines()[-1].startswith("error: 2 of 2 runs failed")
