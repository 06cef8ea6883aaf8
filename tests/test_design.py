"""The first stage of network design: sites, demand points, coverage, the van model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim import load_scenario
from sim.errors import UserInputError
from sim.experiments.design.sites import (
    DemandPoints,
    candidate_sites,
    cover_matrix,
    coverage,
    demand_points,
    design_csv,
    design_table,
)
from sim.model.demand import hourly_rates
from sim.model.geo import great_circle_km_array
from sim.model.network import build_network
from sim.model.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quick.yaml"


@pytest.fixture(scope="module")
def quick() -> Scenario:
    return load_scenario(QUICK).with_overrides(horizon={"days": 2, "warmup_days": 0.2})


def test_demand_points_keep_the_scenarios_calls_an_hour(quick: Scenario) -> None:
    points = demand_points(quick, build_network(quick), min_calls=6000, cell_km=10.0)
    assert points.sampled_calls >= 6000
    expected = hourly_rates(quick).mean()  # Monday and Tuesday: above the weekly mean
    assert points.calls_per_h.sum() == pytest.approx(expected, rel=0.05)
    assert len(points) < points.sampled_calls  # pooled into cells
    # Henan's calls stay in and around Henan.
    assert points.lat.min() > 31.0 and points.lat.max() < 37.5


def test_the_coverage_radius_is_where_the_on_time_chance_first_drops(quick: Scenario) -> None:
    cover = coverage(quick, 0.93)
    p = cover.probability
    r = int(cover.radius_road_km)
    assert (p[: r + 1] >= 0.93).all()
    assert p[r + 1] < 0.93
    assert p[0] > 0.99 and p[-1] < 0.05  # next door, and 1500 km away
    assert 0 < cover.radius_gc_km < cover.radius_road_km  # roads detour
    assert coverage(quick, 0.99).radius_road_km < cover.radius_road_km


def test_the_cover_matrix_is_every_site_within_the_radius(quick: Scenario) -> None:
    rng = np.random.default_rng(3)
    points = DemandPoints(33 + 3 * rng.random(40), 111 + 4 * rng.random(40), np.ones(40), 40, 1)
    lat, lon = 33 + 3 * rng.random(12), 111 + 4 * rng.random(12)
    a = cover_matrix(points, lat, lon, 80.0).toarray() > 0
    km = great_circle_km_array(points.lat[:, None], points.lon[:, None], lat[None, :], lon[None, :])
    assert (a == (km <= 80.0)).all()
    assert a.any() and not a.all()


def test_candidate_sites_and_designs(quick: Scenario, tmp_path: Path) -> None:
    network = build_network(quick)
    sites = candidate_sites(quick, network)
    # quick.yaml covers every seat: the seats are stations already.
    assert len(sites) == network.n_stations
    assert (sites.table["province"] == "河南省").all()
    dealers = tmp_path / "dealers.csv"
    dealers.write_text("id,lat,lon,opening_cost_cny\nD1,34.3,113.2,80000\n", encoding="utf-8")
    more = candidate_sites(quick, network, candidates_csv=dealers)
    assert list(more.table["origin"].iloc[-1:]) == ["candidate"]
    assert more.opening_cost_cny[-1] == 80000
    vans = np.zeros(len(more), dtype=np.int64)
    vans[[0, 5, len(more) - 1]] = [2, 1, 3]
    table = design_table(more, vans)
    assert list(table["id"]) == [more.ids[0], more.ids[5], "D1"]
    assert design_csv(more, vans).splitlines()[0] == "id,lat,lon,vans,workshop_bays"
    clash = tmp_path / "clash.csv"
    clash.write_text(f"id,lat,lon\n{network.station_name[0]},34,113\n", encoding="utf-8")
    with pytest.raises(UserInputError) as caught:
        candidate_sites(quick, network, candidates_csv=clash)
    assert (caught.value.line, caught.value.field) == (2, "id")
