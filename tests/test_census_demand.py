"""Demand follows the 2020 census: prefecture weights and the generated national network.

``seeds/prefectures.csv`` shares each province's census population among its divisions
by their GeoNames population (``seeds/build_prefectures.py``, stage 7). These tests need
no simulation: they read the seed tables and build the national network.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from sim import load_scenario
from sim.model.network import build_network
from sim.model.reference import areas, default_scenario_path

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
CENSUS_TOTAL = 1_409_778_724  # the 31 provinces of census communique No. 3
SHARE_TOLERANCE = 0.001  # 0.1 percentage points
# The provinces that the GeoNames weights had at 0.50-0.57x their census share.
UNDER_WEIGHTED_BEFORE = ("河南省", "河北省", "湖南省", "贵州省")
MIN_VANS_RELATIVE = 0.7


@pytest.fixture(scope="module")
def census() -> pd.DataFrame:
    table = pd.read_csv(SEEDS / "census2020_provinces.csv", dtype={"adcode": str})
    return table.set_index("province")


@pytest.fixture(scope="module")
def build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_prefectures", SEEDS / "build_prefectures.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_census_file_is_the_published_one(census: pd.DataFrame) -> None:
    # Guards the reference itself: weights can only agree with a census left as published.
    assert len(census) == 31
    assert int(census["population_2020"].sum()) == CENSUS_TOTAL
    population = census["population_2020"]
    assert population["河南省"] == 99_365_519
    assert population["广东省"] == 126_012_510
    assert set(census.index) == set(areas()["province"])


def test_every_province_weight_share_equals_its_census_share(census: pd.DataFrame) -> None:
    table = areas()
    weight_share = table.groupby("province")["population_weight"].sum()
    weight_share = weight_share / weight_share.sum()
    census_share = census["population_2020"] / census["population_2020"].sum()
    gap = (weight_share - census_share).abs()
    assert gap.index.size == 31
    assert gap.max() <= SHARE_TOLERANCE, gap.sort_values().tail(5).to_dict()


def test_within_province_shares_are_the_geonames_shares() -> None:
    table = areas().set_index("adcode")
    geonames = pd.read_csv(
        SEEDS / "prefecture_geonames_population.csv", dtype={"adcode": str}
    ).set_index("adcode")["geonames_population"]
    assert sorted(geonames.index) == sorted(table.index)
    province = table["province"]
    weight = table["population_weight"]
    # Each division's exact share of its province's census, before rounding to persons.
    exact = (
        geonames
        / geonames.groupby(province).transform("sum")
        * weight.groupby(province).transform("sum")
    )
    assert (weight - exact).abs().max() < 1.0


def test_the_census_stage_regenerates_the_committed_weights(build_script: ModuleType) -> None:
    units = build_script.read_out(build_script.OUT_PREF)
    weights = build_script.census_weights(
        units, build_script.read_geonames_population(), build_script.read_census()
    )
    assert {u["adcode"]: int(u["population_weight"]) for u in units} == weights


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (10, {"a": 1, "b": 1, "c": 1}, {"a": 4, "b": 3, "c": 3}),  # tie: first key
        (7, {"x": 5}, {"x": 7}),
        (100, {"a": 3, "b": 0, "c": 1}, {"a": 75, "b": 0, "c": 25}),
    ],
)
def test_apportion_adds_up_exactly(
    build_script: ModuleType, total: int, weights: dict[str, int], expected: dict[str, int]
) -> None:
    assert build_script.apportion(total, weights) == expected


def test_national_network_follows_census_demand(census: pd.DataFrame) -> None:
    network = build_network(load_scenario(default_scenario_path()))
    province = network.areas["province"].to_numpy()[network.station_area]
    vans = pd.Series(network.vans_per_station, index=province).groupby(level=0).sum()
    census_millions = census["population_2020"] / 1e6
    vans_per_million = vans.reindex(census.index, fill_value=0) / census_millions
    national = network.n_vans / census_millions.sum()
    relative = vans_per_million / national
    low = {p: round(float(relative[p]), 3) for p in UNDER_WEIGHTED_BEFORE}
    assert all(r >= MIN_VANS_RELATIVE for r in low.values()), low
