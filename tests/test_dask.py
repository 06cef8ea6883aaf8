"""Runs on a Dask cluster give the numbers of local processes (the ``cluster`` extra)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.experiments.runs import executor as engine_module
from sim.experiments.runs.executor import DaskEngine, make_engine
from sim.experiments.runs.run import run
from sim.experiments.runs.store import ResultStore
from sim.experiments.runs.sweep import Parameter, sweep
from sim.model.loading import load_scenario
from sim.model.scenario import Scenario

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quick.yaml"
runner = CliRunner()


@pytest.fixture(scope="module")
def quick() -> Scenario:
    return load_scenario(QUICK).with_overrides(
        horizon={"days": 2, "warmup_days": 0.2}, replications=2
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A LocalCluster of two worker processes, as `dask scheduler` + two `dask worker`."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        yield local.scheduler_address


@pytest.mark.slow  # two sweeps and two runs, one of each on the cluster: some 20-40 s
def test_a_sweep_through_the_scheduler_address_equals_local_processes(
    quick: Scenario, cluster: str, tmp_path: Path
) -> None:
    fleet = [Parameter("network.vans.total", (70, 140)), Parameter("hotline.max_attempts", (1, 3))]
    local = sweep(quick, fleet)
    with DaskEngine(cluster) as engine:
        remote = sweep(quick, fleet, engine=engine, store=ResultStore(tmp_path / "store"))
    pd.testing.assert_frame_equal(remote.rows, local.rows, check_exact=True)
    # The tables a Dask worker writes into the store are those of a local run.
    with DaskEngine(cluster) as engine:
        stored = run(quick, engine=engine, store=ResultStore(tmp_path / "tables"))
    assert all(r.table_path("calls") is not None for r in stored.replications)
    pd.testing.assert_frame_equal(stored.calls, run(quick).calls, check_exact=True)


def test_the_command_runs_a_sweep_on_the_cluster(cluster: str, tmp_path: Path) -> None:
    args = [
        "sweep", str(QUICK), "--vary", "network.vans.total=70,140", "--days", "2",
        "--replications", "2",
    ]  # fmt: skip
    local = runner.invoke(app, [*args, "--out", str(tmp_path / "local")])
    remote = runner.invoke(app, [*args, "--scheduler", cluster, "--out", str(tmp_path / "dask")])
    assert local.exit_code == 0, local.output
    assert remote.exit_code == 0, remote.output
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "dask" / "sweep.csv"),
        pd.read_csv(tmp_path / "local" / "sweep.csv"),
        check_exact=True,
    )
    manifest = ResultStore(tmp_path / "dask" / "store").read_manifest()
    assert manifest["engine"] == "dask" and manifest["counts"]["finished"] == 4


def test_an_unreachable_scheduler_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "CONNECT_TIMEOUT_S", 2.0)
    result = runner.invoke(
        app,
        [
            "run", str(QUICK), "--days", "2", "--replications", "1",
            "--scheduler", "tcp://127.0.0.1:9", "--out", str(tmp_path / "run"),
        ],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1].startswith(
        "error: --scheduler: cannot reach the Dask scheduler at tcp://127.0.0.1:9"
    )
    assert "Traceback" not in result.output


def test_engine_options(cluster: str) -> None:
    assert isinstance(make_engine("dask", 2), DaskEngine)
    # A scheduler's address is checked by a handshake when the engine is made.
    assert make_engine("local", 1, cluster).name == "dask"


@pytest.mark.slow  # a network design search run twice (local, cluster): some 30-60 s
def test_the_optimiser_searches_the_same_way_on_the_cluster(cluster: str, tmp_path: Path) -> None:
    """`optimise --scheduler` runs every design on the cluster and takes the same path."""
    args = [
        "optimise", str(QUICK), "--days", "2", "--replications", "3", "--budget", "3",
        "--moves", "vans", "--max-vans", "100",
    ]  # fmt: skip
    local = runner.invoke(app, [*args, "--out", str(tmp_path / "local")])
    remote = runner.invoke(app, [*args, "--scheduler", cluster, "--out", str(tmp_path / "dask")])
    assert local.exit_code == 0, local.output
    assert remote.exit_code == 0, remote.output
    for name in ("history.csv", "stations.csv", "kpis.csv"):
        # The wall time of each step is the only column allowed to differ.
        remote_table = pd.read_csv(tmp_path / "dask" / name).drop(
            columns="elapsed_s", errors="ignore"
        )
        local_table = pd.read_csv(tmp_path / "local" / name).drop(
            columns="elapsed_s", errors="ignore"
        )
        pd.testing.assert_frame_equal(remote_table, local_table, check_exact=True)
    assert len(pd.read_csv(tmp_path / "local" / "history.csv")) >= 2


def test_sensitivity_on_the_cluster_gives_the_local_indices(cluster: str) -> None:
    args = [
        "sensitivity", str(QUICK), "--days", "2", "--replications", "1", "--trajectories", "2",
        "--param", "network.vans.total=60..110", "--param", "travel.detour_factor=1.0..2.0",
    ]  # fmt: skip
    local = runner.invoke(app, args)
    remote = runner.invoke(app, [*args, "--scheduler", cluster])
    assert local.exit_code == 0, local.output
    assert remote.exit_code == 0, remote.output
    assert remote.stdout == local.stdout
