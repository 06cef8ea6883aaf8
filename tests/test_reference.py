"""The reference data under seeds/: prefectures and the figures the articles publish."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from sim.model.reference import (
    PREFECTURE_COUNT,
    areas,
    data_dir,
    known_provinces,
    select_area_columns,
    select_areas,
)

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"

# China's bounding box, generously; 三沙市 (Sansha, 16.8N) lies legitimately far south.
LAT_RANGE = (3.0, 54.0)
LON_RANGE = (73.0, 136.0)
MUNICIPALITIES = {"北京市", "天津市", "上海市", "重庆市"}


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    with (SEEDS / "prefectures.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def figures() -> dict[str, Any]:
    data = YAML(typ="safe", pure=True).load((SEEDS / "published_figures.yaml").read_text("utf-8"))
    assert isinstance(data, dict)
    return data


def test_prefecture_count(rows: list[dict[str, str]]) -> None:
    assert len(rows) == 337 == PREFECTURE_COUNT
    kinds = [r["kind"] for r in rows]
    assert kinds.count("municipality") == 4
    assert len(rows) - kinds.count("municipality") == 333
    assert {r["name"] for r in rows if r["kind"] == "municipality"} == MUNICIPALITIES


def test_adcodes_are_unique_six_digit_codes(rows: list[dict[str, str]]) -> None:
    codes = [r["adcode"] for r in rows]
    assert all(re.fullmatch(r"[1-9]\d{5}", c) for c in codes), [
        c for c in codes if not re.fullmatch(r"[1-9]\d{5}", c)
    ]
    assert len(set(codes)) == len(codes)
    # The first two digits are the province: one prefix per province, 31 provinces.
    prefix_by_province: dict[str, set[str]] = {}
    for r in rows:
        prefix_by_province.setdefault(r["province"], set()).add(r["adcode"][:2])
    assert len(prefix_by_province) == 31
    assert all(len(p) == 1 for p in prefix_by_province.values()), prefix_by_province
    # A municipality is a province-level code (xx0000).
    assert all(r["adcode"].endswith("0000") for r in rows if r["kind"] == "municipality")


def test_names_are_unique(rows: list[dict[str, str]]) -> None:
    names = [r["name"] for r in rows]
    assert len(set(names)) == len(names)
    assert all(n.strip() == n and n for n in names)


def test_coordinates_inside_china(rows: list[dict[str, str]]) -> None:
    outside = [
        (r["name"], r["lat"], r["lon"])
        for r in rows
        if not (LAT_RANGE[0] <= float(r["lat"]) <= LAT_RANGE[1])
        or not (LON_RANGE[0] <= float(r["lon"]) <= LON_RANGE[1])
    ]
    assert outside == []
    sansha = next(r for r in rows if r["name"] == "三沙市")
    assert 15.0 < float(sansha["lat"]) < 18.0
    # Beijing's seat, as a sanity check of lat/lon order.
    beijing = next(r for r in rows if r["name"] == "北京市")
    assert float(beijing["lat"]) == pytest.approx(39.9, abs=0.2)
    assert float(beijing["lon"]) == pytest.approx(116.4, abs=0.2)


def test_population_weights_positive(rows: list[dict[str, str]]) -> None:
    weights = [float(r["population_weight"]) for r in rows]
    assert all(w > 0 for w in weights)
    by_name = {r["name"]: float(r["population_weight"]) for r in rows}
    assert by_name["上海市"] > by_name["三沙市"]


def test_sim_reference_reads_the_same_table(rows: list[dict[str, str]]) -> None:
    table = areas()
    assert len(table) == len(rows)
    assert table["adcode"].tolist() == sorted(r["adcode"] for r in rows)
    assert table["is_prefecture"].all()
    assert len(known_provinces()) == 31
    henan = select_areas(("河南省",), include_municipalities=False)
    assert len(henan) == sum(r["province"] == "河南省" for r in rows) == 17
    assert len(select_areas(None, include_municipalities=False)) == 333


def test_the_areas_are_what_pandas_reads_to_the_bit() -> None:
    """The csv-module reader (no pandas at validate) gives pandas' own table, exactly."""
    import pandas as pd

    read = pd.read_csv(data_dir("seeds") / "prefectures.csv", dtype={"adcode": str})
    read["is_prefecture"] = True
    read = read.sort_values("adcode", ignore_index=True)
    pd.testing.assert_frame_equal(areas(), read, check_exact=True)
    henan = read[(read["province"] == "河南省").to_numpy()].reset_index(drop=True)
    pd.testing.assert_frame_equal(select_areas(("河南省",), True), henan, check_exact=True)
    columns = select_area_columns(None, False)
    assert len(columns["adcode"]) == int((read["kind"] != "municipality").sum())


def test_published_dongfeng_figures(figures: dict[str, Any]) -> None:
    df = figures["dongfeng_light_truck"]
    for rate in ("complaint_closure_rate", "on_time_arrival_rate", "on_time_repair_rate"):
        assert df[rate] == 0.93
    assert df["service_stations_min"] == 1000
    assert df["mobile_service_vans"] == 2000
    assert df["prefecture_coverage_min"] == 0.90
    assert df["dispatch_rule"] == "nearest_station"


def test_published_henan_flood_figures(figures: dict[str, Any]) -> None:
    henan = figures["henan_flood_2021"]
    assert henan["emergency_hotline_centres"] == 19
    assert henan["rescue_services"] == 235
    assert henan["vehicles_rescued"] == 197
    assert henan["continuous_operation_hours"] == 72


def test_national_scenario_matches_published_figures(figures: dict[str, Any]) -> None:
    from sim import load_scenario

    df = figures["dongfeng_light_truck"]
    scenario = load_scenario(ROOT / "scenarios" / "dongfeng_light_truck.yaml")
    generate = scenario.network.stations.generate
    assert generate is not None
    assert generate.count >= df["service_stations_min"]
    assert generate.coverage_target >= df["prefecture_coverage_min"]
    assert scenario.network.vans.total == df["mobile_service_vans"]
    assert scenario.dispatch.policy == df["dispatch_rule"]
