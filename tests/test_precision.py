"""Replications by precision: batches until every point's 95% half-width meets the target."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from sim.cli import app
from sim.errors import UserInputError
from sim.experiments.runs.precision import (
    PrecisionCheck,
    PrecisionTarget,
    check,
    half_width,
    next_replications,
    parse_precision,
)
from sim.experiments.runs.run import run
from sim.experiments.runs.sweep import Parameter, sweep
from sim.model.loading import load_scenario
from sim.model.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quick.yaml"
KPI = "on_time_arrival_rate"
runner = CliRunner()


@pytest.fixture(scope="module")
def quick() -> Scenario:
    return load_scenario(QUICK).with_overrides(horizon={"days": 2, "warmup_days": 0.2})


def _check(width: float, target: float = 0.01, n: int = 4) -> PrecisionCheck:
    return PrecisionCheck(PrecisionTarget(KPI, target), width, n)


def test_the_half_width_is_students() -> None:
    values = [0.91, 0.93, 0.90, 0.95, 0.92]
    expected = stats.t.ppf(0.975, 4) * np.std(values, ddof=1) / math.sqrt(5)
    assert half_width(values) == pytest.approx(expected, rel=1e-12)
    assert math.isnan(half_width([0.9]))
    assert half_width([0.9, float("nan"), 0.92]) == half_width([0.9, 0.92])


def test_each_batch_projects_the_replications_needed() -> None:
    assert next_replications(1, [], cap=50) == 2  # an interval needs two
    assert next_replications(4, [_check(0.009)], cap=50) == 4  # met: done
    # (0.015 / 0.01)^2 = 2.25 times as many: ceil(4 x 2.25) = 9, but at most double.
    assert next_replications(4, [_check(0.015)], cap=50) == 8
    assert next_replications(8, [_check(0.0105, n=8)], cap=50) == 9  # at least one more
    assert next_replications(4, [_check(0.012)], cap=50) == math.ceil(4 * 1.2**2)
    assert next_replications(4, [_check(0.015)], cap=6) == 6  # the cap
    assert next_replications(6, [_check(0.015, n=6)], cap=6) == 6
    # The worst of several targets decides; a KPI with no value cannot be helped.
    assert next_replications(4, [_check(0.009), _check(0.014)], cap=50) == 8
    assert next_replications(4, [_check(math.nan)], cap=50) == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("on_time_arrival_rate", "write KPI=HALFWIDTH"),
        ("speed=0.1", "unknown KPI 'speed'"),
        ("on_time_arrival_rate=fast", "'fast' is not a number"),
        ("on_time_arrival_rate=0", "must be positive"),
    ],
)
def test_a_bad_target_names_the_option(text: str, message: str) -> None:
    with pytest.raises(UserInputError) as caught:
        parse_precision(text, [KPI])
    assert caught.value.field == "--precision"
    assert message in caught.value.message


def test_a_run_stops_at_the_first_batch_that_meets_the_target(quick: Scenario) -> None:
    target = PrecisionTarget(KPI, 0.01)
    result = run(quick, replications=3, precision=[target], max_replications=60)
    values = result.kpis_by_replication[KPI].to_numpy()
    n = len(values)
    (final,) = result.precision
    assert final.met and final.replications == n
    assert half_width(values) <= 0.01
    # Replay the procedure on the same replications: the same batches, the same stop.
    batches = [3]
    while True:
        more = next_replications(batches[-1], [check(target, values[: batches[-1]])], 60)
        if more == batches[-1]:
            break
        batches.append(more)
    assert batches[-1] == n and len(batches) > 1, batches
    assert half_width(values[: batches[-2]]) > 0.01  # the batch before did not meet it


def test_every_point_of_a_sweep_gets_its_own_replications(quick: Scenario) -> None:
    result = sweep(
        quick,
        [Parameter("network.vans.total", (70, 140))],
        replications=3,
        precision=[PrecisionTarget(KPI, 0.02)],
    )
    counts = [len(point.replications) for point in result.results]
    assert counts[0] > counts[1], counts  # the short fleet varies more: it needs more
    for point in result.results:
        (final,) = point.precision
        assert final.met
        assert half_width(point.kpis_by_replication[KPI].to_numpy()) <= 0.02
    # Every point keeps replications 0..n-1: common random numbers where they overlap.
    for point in result.results:
        assert [r.replication for r in point.replications] == list(range(len(point.replications)))


def test_the_command_stops_with_the_half_width_under_the_target(tmp_path: Path) -> None:
    # 0.006 takes some 19 replications, not the first 3 (0.004 took 38, for the same checks).
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "run", str(QUICK), "--days", "2", "--replications", "3",
            "--precision", f"{KPI}=0.006", "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    values = [row[KPI] for row in summary["kpis_by_replication"]]
    assert summary["replications"] == len(values) > 3
    assert half_width(values) <= 0.006
    note = next(line for line in result.stdout.splitlines() if "replications;" in line)
    assert note.startswith(f"{len(values)} replications; {KPI} half-width ")
    assert note.endswith("<= 0.006")


def test_the_cap_stops_a_target_out_of_reach(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "run", str(QUICK), "--days", "2", "--replications", "2",
            "--precision", f"{KPI}=0.00001", "--max-replications", "4",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    note = next(line for line in result.stdout.splitlines() if "replications;" in line)
    assert note.startswith("4 replications;") and "> 1e-05" in note
    refused = runner.invoke(
        app, ["run", str(QUICK), "--replications", "5", "--precision", f"{KPI}=0.01",
              "--max-replications", "3"],
    )  # fmt: skip
    assert refused.exit_code == 2
    assert refused.stderr.startswith("error: --max-replications: must be at least")
