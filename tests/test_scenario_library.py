"""The scenario library: every file validates, and each scenario shows what it is about.

The Henan flood gets a statistical check: calls per hour and on-time arrival by the time
of the call, before, during and after the 72-hour surge, as paired differences over
replications (each replication is one whole flood, so windows of the same replication
are compared with each other) with Student-t 95% intervals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from sim import load_scenario, run
from sim.analysis.kpi_catalogue import published_targets
from sim.analysis.kpis import arrival_outcomes, confidence_interval
from sim.cli import app
from sim.model.geo import great_circle_km_array
from sim.model.network import build_network
from sim.model.reference import areas, data_dir

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
LIBRARY = (
    "henan_flood_2021.yaml",
    "double11_logistics_peak.yaml",
    "digital_service.yaml",
    "network_expansion.yaml",
    "dongfeng_rostered.yaml",
)


def test_the_library_is_there() -> None:
    names = {p.name for p in SCENARIOS}
    assert set(LIBRARY) <= names


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_validates(path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "scenario is valid" in result.output


@pytest.mark.parametrize("name", LIBRARY)
def test_library_scenarios_name_their_sources(name: str) -> None:
    text = (ROOT / "scenarios" / name).read_text(encoding="utf-8")
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert len(comments) >= 10
    assert "seed 00" in text  # every one cites the seed article it grows from


# --------------------------------------------------------------------------- Henan flood

HENAN = ROOT / "scenarios" / "henan_flood_2021.yaml"


@pytest.fixture(scope="module")
def henan():  # type: ignore[no-untyped-def]
    scenario = load_scenario(HENAN)
    return scenario, run(scenario, replications=6).calls


def _windows(scenario):  # type: ignore[no-untyped-def]
    surge = scenario.surges[0]
    return {
        "before": (scenario.horizon.warmup_h, surge.start_h),
        "during": (surge.start_h, surge.end_h),
        # A day after the surge for the backlog to clear, then the recovery.
        "after": (surge.end_h + 24.0, scenario.horizon.hours),
    }


def _per_replication(scenario, calls):  # type: ignore[no-untyped-def]
    """Calls per hour and on-time arrival in each window, one row per replication."""
    rows = []
    for r, c in calls.groupby("replication"):
        known, on_time = arrival_outcomes(c, scenario.horizon.hours)
        t = c["t_call_h"].to_numpy()
        row = {"replication": r}
        for name, (start, end) in _windows(scenario).items():
            inside = (t >= start) & (t < end)
            row[f"calls_h_{name}"] = inside.sum() / (end - start)
            row[f"on_time_{name}"] = on_time[inside].sum() / known[inside].sum()
        rows.append(row)
    return pd.DataFrame(rows).set_index("replication")


def test_henan_flood_is_the_2021_event() -> None:
    scenario = load_scenario(HENAN)
    (surge,) = scenario.surges
    assert surge.region.center_lat == pytest.approx(34.75, abs=0.05)
    assert surge.region.center_lon == pytest.approx(113.63, abs=0.05)
    assert surge.duration_h == 72  # seed 000: "连续奋战72小时"
    assert surge.start_day == 3 and scenario.horizon.days >= 9  # before, during and after
    assert surge.demand_multiplier > 1 and surge.speed_factor < 1
    assert surge.stations_shut_fraction > 0 and surge.extra_agents > 0
    assert scenario.geography.provinces == ("河南省",)


def test_henan_surge_raises_calls_and_sinks_on_time_arrival(henan) -> None:  # type: ignore[no-untyped-def]
    scenario, calls = henan
    table = _per_replication(scenario, calls)
    # Calls per hour during the 72 h well above before: the paired ratio's interval > 1.5.
    ratio = confidence_interval(table["calls_h_during"] / table["calls_h_before"])
    assert ratio.low > 1.5, ratio
    # On-time arrival drops during the surge: before - during, interval above 20 points.
    drop = confidence_interval(table["on_time_before"] - table["on_time_during"])
    assert drop.low > 0.20, drop
    # ... and recovers after: after - during clearly positive, and after close to before.
    recovery = confidence_interval(table["on_time_after"] - table["on_time_during"])
    assert recovery.low > 0.20, recovery
    gap = confidence_interval(table["on_time_before"] - table["on_time_after"])
    assert gap.mean < 0.08, gap
    # Before the surge the Henan network keeps the published promise.
    assert (
        confidence_interval(table["on_time_before"]).low
        > published_targets()["on_time_arrival_rate"]
    )


def test_henan_rescues_match_the_published_order_of_magnitude(henan) -> None:  # type: ignore[no-untyped-def]
    """Seed 000: 235 rescue services and 197 vehicles helped in the 72 hours (one car
    brand's 19 Henan centres, so only the order of magnitude is comparable)."""
    from ruamel.yaml import YAML

    scenario, calls = henan
    published = YAML(typ="safe").load(
        (data_dir("seeds") / "published_figures.yaml").read_text(encoding="utf-8")
    )["henan_flood_2021"]
    surge = scenario.surges[0]
    services, vehicles = [], []
    for _, c in calls.groupby("replication"):
        dist = great_circle_km_array(
            c["lat"].to_numpy(),
            c["lon"].to_numpy(),
            surge.region.center_lat,
            surge.region.center_lon,
        )
        t = c["t_call_h"].to_numpy()
        w = c[(dist <= surge.region.radius_km) & (t >= surge.start_h) & (t < surge.end_h)]
        services.append(int((w["assigned_h"] < surge.end_h).sum()))
        vehicles.append(int((w["arrived_h"] < surge.end_h).sum()))
    for simulated, figure in (
        (np.mean(services), published["rescue_services"]),
        (np.mean(vehicles), published["vehicles_rescued"]),
    ):
        assert figure / 3 < simulated < figure * 3, (simulated, figure)


# --------------------------------------------------------------------------- the others


def test_double11_puts_fleets_and_vans_at_the_hubs() -> None:
    peak = load_scenario(ROOT / "scenarios" / "double11_logistics_peak.yaml")
    national = load_scenario(ROOT / "scenarios" / "dongfeng_light_truck.yaml")
    share = {s.name: s.share for s in peak.demand.segments}
    national_share = {s.name: s.share for s in national.demand.segments}
    assert share["fleet"] > national_share["fleet"] + 0.05
    assert 12 <= peak.horizon.days <= 16  # two weeks
    # More calls a day than the region's share of the national demand.
    a = areas()
    region = a["province"].isin(peak.geography.provinces or ())
    weight = a.loc[region, "population_weight"].sum() / a["population_weight"].sum()
    assert peak.demand.mean_calls_per_day > 1.1 * weight * national.demand.mean_calls_per_day
    # Vans pre-positioned: hub-city stations hold more vans per unit of demand.
    network = build_network(peak)
    codes = network.areas["adcode"].to_numpy()[network.station_area]
    hubs = np.isin(codes, ["310000", "330100", "330700", "320500", "330400", "320100"])
    assert network.n_vans > 2 * network.n_stations
    assert network.vans_per_station[hubs].mean() > network.vans_per_station[~hubs].mean() + 0.5


def test_digital_service_cuts_roadside_calls() -> None:
    digital = load_scenario(ROOT / "scenarios" / "digital_service.yaml")
    national = load_scenario(ROOT / "scenarios" / "dongfeng_light_truck.yaml")
    assert digital.hotline.remote_diagnosis_share > national.hotline.remote_diagnosis_share
    assert digital.demand.mean_calls_per_day < national.demand.mean_calls_per_day
    assert digital.network == national.network  # the same stations and vans


def test_network_expansion_adds_stations_where_the_baseline_is_late() -> None:
    expansion = load_scenario(ROOT / "scenarios" / "network_expansion.yaml")
    national = load_scenario(ROOT / "scenarios" / "dongfeng_light_truck.yaml")
    grown, base = build_network(expansion), build_network(national)
    assert grown.n_stations > base.n_stations and grown.n_vans > base.n_vans
    assert expansion.demand == national.demand and expansion.seed == national.seed
    # Each new station stands within ~25 km of the seat of the prefecture it serves.
    new = np.char.endswith(grown.station_name.astype(str), "-new")
    assert new.sum() == grown.n_stations - base.n_stations
    seats = areas().set_index("adcode")
    codes = [name.split("-")[0] for name in grown.station_name[new]]
    km = great_circle_km_array(
        grown.station_lat[new],
        grown.station_lon[new],
        seats.loc[codes, "lat"].to_numpy(),
        seats.loc[codes, "lon"].to_numpy(),
    )
    assert km.max() < 25.0
