"""Sweep files: grids and sampled ranges (Latin hypercube, Sobol') of a base scenario."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.errors import UserInputError
from sim.experiments.runs.sweep import Parameter, sweep, sweep_points
from sim.experiments.runs.sweep_file import SweepFile, is_sweep_file, read_sweep_file
from sim.model.loading import load_scenario
from sim.model.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quick.yaml"
runner = CliRunner()


@pytest.fixture(scope="module")
def quick() -> Scenario:
    return load_scenario(QUICK).with_overrides(
        horizon={"days": 1, "warmup_days": 0.1}, replications=2
    )


def _write(tmp_path: Path, text: str, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def _study(tmp_path: Path, text: str) -> SweepFile:
    return read_sweep_file(_write(tmp_path, f"base: {QUICK}\n" + textwrap.dedent(text)))


def test_a_grid_file_is_the_grid_of_vary(tmp_path: Path, quick: Scenario) -> None:
    study = _study(
        tmp_path,
        """
        replications: 2
        factors:
          network.vans.total: [70, 140]
          hotline.max_attempts: [1, 3]
        """,
    )
    assert study.base == QUICK and study.replications == 2
    parameters, points = study.points(quick)
    assert [p.values for p in points] == [
        {"network.vans.total": 70, "hotline.max_attempts": 1},
        {"network.vans.total": 70, "hotline.max_attempts": 3},
        {"network.vans.total": 140, "hotline.max_attempts": 1},
        {"network.vans.total": 140, "hotline.max_attempts": 3},
    ]
    from_file = sweep_points(quick, parameters, points)
    from_vary = sweep(
        quick,
        [Parameter("network.vans.total", (70, 140)), Parameter("hotline.max_attempts", (1, 3))],
    )
    pd.testing.assert_frame_equal(from_file.rows, from_vary.rows, check_exact=True)


def test_a_latin_hypercube_puts_one_point_in_each_slice(tmp_path: Path, quick: Scenario) -> None:
    study = _study(
        tmp_path,
        """
        factors:
          hotline.redial_probability: {low: 0.2, high: 0.8}
          network.vans.total: {low: 70, high: 149, integer: true}
        sample: {method: latin_hypercube, points: 8, seed: 3}
        """,
    )
    design = study.design(quick)
    assert len(design) == 8
    redial = np.array([row["hotline.redial_probability"] for row in design])
    slices = np.floor((redial - 0.2) / 0.6 * 8).astype(int)
    assert sorted(slices) == list(range(8))
    vans = [row["network.vans.total"] for row in design]
    assert all(isinstance(v, int) for v in vans)
    # 80 integers in 8 slices of 10: one value in each.
    assert sorted((v - 70) // 10 for v in vans) == list(range(8))
    assert study.design(quick) == design  # the same seed, the same design
    text = study.path.read_text(encoding="utf-8").replace("seed: 3", "seed: 4")
    other = read_sweep_file(_write(tmp_path, text, "other.yaml"))
    assert other.design(quick) != design


def test_an_integer_range_reaches_both_ends(tmp_path: Path, quick: Scenario) -> None:
    study = _study(
        tmp_path,
        """
        factors:
          hotline.max_attempts: {low: 1, high: 3, integer: true}
        sample: {method: latin_hypercube, points: 30}
        """,
    )
    values = [row["hotline.max_attempts"] for row in study.design(quick)]
    assert sorted(set(values)) == [1, 2, 3]
    assert sorted(values.count(v) for v in (1, 2, 3)) == [10, 10, 10]


def test_sobol_points_cross_the_grid(tmp_path: Path, quick: Scenario) -> None:
    study = _study(
        tmp_path,
        """
        policies: [nearest_station, nearest_idle_van]
        factors:
          hotline.redial_probability: {low: 0.0, high: 1.0}
          stations.tow_speed_kmh: {low: 25, high: 55}
        sample: {method: sobol, points: 4}
        """,
    )
    design = study.design(quick)
    assert len(design) == 2 * 4
    assert [row["dispatch.policy"] for row in design] == ["nearest_station"] * 4 + [
        "nearest_idle_van"
    ] * 4
    first, second = design[:4], design[4:]
    assert [{k: v for k, v in r.items() if k != "dispatch.policy"} for r in first] == [
        {k: v for k, v in r.items() if k != "dispatch.policy"} for r in second
    ]
    # A scrambled Sobol' set of 4 in one dimension: one point in each quarter.
    quarters = sorted(int(r["hotline.redial_probability"] * 4) for r in first)
    assert quarters == [0, 1, 2, 3]
    parameters, points = study.points(quick)
    assert [p.path for p in parameters] == [
        "dispatch.policy", "hotline.redial_probability", "stations.tow_speed_kmh"
    ]  # fmt: skip
    assert points[5].scenario.dispatch.policy == "nearest_idle_van"
    assert points[5].scenario.stations.tow_speed_kmh == design[5]["stations.tow_speed_kmh"]


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        ("factors:\n  network.vans.total: [70]\nsampel: {}\n", 4, "sampel", "unknown field"),
        ("factors: {}\n", 2, "factors", "at least one factor"),
        ("factors:\n  network.vans.total: [70, 70]\n", 3, "factors.network.vans.total", "twice"),
        ("factors:\n  seed: [1, 2]\n", 3, "factors.seed", "share their random numbers"),
        (
            "factors:\n  hotline.redial_probability: {low: 0.8, high: 0.2}\n"
            "sample: {method: sobol, points: 4}\n",
            3,
            "factors.hotline.redial_probability",
            "low (0.8) must be below high (0.2)",
        ),
        (
            "factors:\n  hotline.redial_probability: {low: 0, high: 1}\n",
            3,
            "sample",
            "ranges need a sample",
        ),
        (
            "factors:\n  hotline.redial_probability: {low: 0, high: 1}\n"
            "sample: {method: sobol, points: 6}\n",
            4,
            "sample.points",
            "use 4 or 8",
        ),
        (
            "factors:\n  hotline.redial_probability: {low: 0, high: 1}\n"
            "sample: {method: halton, points: 6}\n",
            4,
            "sample.method",
            "unknown method 'halton'",
        ),
        (
            "factors:\n  network.vans: [{}]\n  network.vans.total: [9]\n",
            4,
            "factors.network.vans.total",
            "overlaps network.vans",
        ),
    ],
)
def test_a_mistake_names_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str, message: str
) -> None:
    path = _write(tmp_path, f"base: {QUICK}\n{text}")
    with pytest.raises(UserInputError) as caught:
        read_sweep_file(path)
    error = caught.value
    assert (error.file, error.line, error.field) == (str(path), line, field), str(error)
    assert message in error.message, error.message


def test_a_point_the_scenario_refuses_names_the_sweep_file(tmp_path: Path, quick: Scenario) -> None:
    study = _study(tmp_path, "factors:\n  network.vans.total: [100, 40]\n")
    with pytest.raises(UserInputError) as caught:
        study.points(quick)
    assert caught.value.file == str(study.path)
    assert caught.value.field == "factors network.vans.total=40: network.vans.total"


def test_the_command_runs_a_sweep_file(tmp_path: Path) -> None:
    study = _write(
        tmp_path,
        f"""
        base: {QUICK}
        replications: 2
        factors:
          network.vans.total: [70, 140]
          hotline.redial_probability: {{low: 0.2, high: 0.8}}
        sample: {{method: latin_hypercube, points: 2, seed: 1}}
        """,
    )
    assert is_sweep_file(study) and not is_sweep_file(QUICK)
    out = tmp_path / "sweep"
    result = runner.invoke(app, ["sweep", str(study), "--days", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(out / "sweep.csv")
    assert len(rows) == 4 * 2
    assert list(rows.columns[:4]) == [
        "point", "network.vans.total", "hotline.redial_probability", "replication"
    ]  # fmt: skip
    payload = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert len(payload["points"]) == 4 and payload["replications"] == 2
    refused = runner.invoke(app, ["sweep", str(study), "--vary", "network.vans.total=90"])
    assert refused.exit_code == 2
    assert refused.stderr.startswith("error: --vary: a sweep file gives the factors")
    missing = _write(
        tmp_path, "base: nowhere.yaml\nfactors:\n  network.vans.total: [90]\n", "m.yaml"
    )
    refused = runner.invoke(app, ["sweep", str(missing)])
    assert refused.exit_code == 2
    assert refused.stderr.startswith(f"error: {tmp_path / 'nowhere.yaml'}: scenario file not found")
