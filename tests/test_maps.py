"""sim.outputs.plots.maps: every map draws the data it was given, on the real outlines,
captioned; and the tables behind them (sim.analysis.tables)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import Collection, PathCollection
from matplotlib.figure import Figure

from sim import load_scenario, run
from sim.analysis import tables
from sim.analysis.kpis import KpiSettings, arrival_outcomes, call_kpis
from sim.experiments.runs.run import RunResult
from sim.model.network import Network, build_network
from sim.model.scenario import Scenario
from sim.outputs.outlines import OUTLINE_CAPTION, read_outlines, region_path
from sim.outputs.plots import maps

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quick.yaml"
NATIONAL = ROOT / "scenarios" / "dongfeng_light_truck.yaml"
EXPANSION = ROOT / "scenarios" / "network_expansion.yaml"

Quick = tuple[Scenario, RunResult, Network]


@pytest.fixture(scope="module")
def quick() -> Quick:
    scenario = load_scenario(QUICK).with_overrides(
        horizon={"days": 2, "warmup_days": 0.25}, replications=2
    )
    return scenario, run(scenario), build_network(scenario)


def _save(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    return buffer.getvalue()


def _by_gid(ax: Axes, gid: str) -> Collection:
    (found,) = [c for c in ax.collections if c.get_gid() == gid]
    return found


def _caption(fig: Figure) -> str:
    """The figure-level text under the map (its supxlabel), wrapped lines joined."""
    texts = [" ".join(t.get_text().split()) for t in fig.texts]
    return next((t for t in texts if t.startswith("Outlines:")), "")


def _label(artist: Collection) -> str:
    return str(artist.get_label())


def _stations(ax: Axes) -> PathCollection:
    (found,) = [c for c in ax.collections if _label(c).startswith("stations")]
    assert isinstance(found, PathCollection)
    return found


# --------------------------------------------------------------------------- network map


def test_network_map_sizes_stations_by_vans_on_the_outlines(quick: Quick) -> None:
    scenario, _, network = quick
    fig = maps.network_map(network, surges=scenario)
    ax = fig.axes[0]
    stations = _stations(ax)
    assert len(np.asarray(stations.get_offsets())) == network.n_stations
    sizes = stations.get_sizes()
    vans = network.vans_per_station
    assert sizes[np.argmax(vans)] == sizes.max() and sizes[np.argmin(vans)] == sizes.min()
    assert f"({network.n_stations}; {network.n_vans} vans)" in _label(stations)
    assert len(_by_gid(ax, "province_borders").get_paths()) == 34
    assert len(_by_gid(ax, "prefecture_cells").get_paths()) == 337
    # A province scenario shows its province: every station in view, the view not national.
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    assert x0 < network.station_lon.min() and network.station_lon.max() < x1
    assert y0 < network.station_lat.min() and network.station_lat.max() < y1
    assert x1 - x0 < maps.NATIONAL_SPAN_DEG
    _save(fig)


def test_network_map_takes_a_station_table_or_arrays() -> None:
    table = pd.DataFrame({"lat": [30.0, 31.0], "lon": [114.0, 115.0], "vans": [1, 4]})
    for stations in (table, (table["lat"], table["lon"], table["vans"])):
        fig = maps.network_map(stations=stations)
        sizes = _stations(fig.axes[0]).get_sizes()
        assert sizes[1] > sizes[0]
    with pytest.raises(ValueError, match="network or a station table"):
        maps.network_map()


# --------------------------------------------------------------------------- on-time map


def test_on_time_map_colours_prefecture_cells_by_their_rate(quick: Quick) -> None:
    scenario, result, network = quick
    h = scenario.horizon.hours
    fig = maps.on_time_map(result.calls, network, horizon_h=h, surges=scenario)
    ax = fig.axes[0]
    cells = _by_gid(ax, "on_time_cells")
    expected = tables.prefecture_on_time(result.calls, horizon_h=h)
    assert len(expected) == 17  # Henan's prefectures (quick.yaml leaves out municipalities)
    # Each coloured path is its prefecture's cell, carrying that prefecture's rate.
    outlines = read_outlines()
    rate = dict(zip(expected["adcode"], expected["on_time_rate"], strict=True))
    coloured = {
        np.asarray(p.vertices).tobytes(): value
        for p, value in zip(cells.get_paths(), np.asarray(cells.get_array()), strict=True)
    }
    assert len(coloured) == 17
    for adcode, value in rate.items():
        assert coloured[np.asarray(region_path(outlines.cell(adcode)).vertices).tobytes()] == value
    # One prefecture's rate, recomputed from its calls as the KPI counts them.
    c = result.calls[result.calls["adcode"] == "410100"]
    known, on_time = arrival_outcomes(c, h)
    assert rate["410100"] == pytest.approx(on_time.sum() / known.sum())
    assert fig.axes[1].get_ylabel().startswith("on-time arrival rate")
    _save(fig)


# --------------------------------------------------------------------------- province KPIs


def test_province_kpis_are_the_kpi_functions_per_province(quick: Quick) -> None:
    scenario, result, _ = quick
    w, h = scenario.horizon.warmup_h, scenario.horizon.hours
    calls = result.calls.copy()
    # Pretend the northern half of Henan's calls came from Hebei: two provinces to tell apart.
    north = (calls["lat"] > 34.8).to_numpy()
    calls.loc[north, "adcode"] = "130100"
    table = tables.province_kpis(calls, KpiSettings(warmup_h=w, horizon_h=h))
    assert list(table.index) == ["130000", "410000"]
    assert table["calls"].sum() == (calls["t_call_h"] >= w).sum()
    settings = KpiSettings(warmup_h=w, horizon_h=h, contact_promise_h=0.5, service_level_s=20.0)
    for code, mask in (("130000", north), ("410000", ~north)):
        per_rep = [
            call_kpis(group, settings)["on_time_arrival_rate"]
            for _, group in calls[mask].groupby("replication")
        ]
        assert table.loc[code, "on_time_arrival_rate"] == pytest.approx(np.mean(per_rep))
    # calls_per_day is per replication, as in the run summary: the provinces add up to it.
    whole = result.summary.loc["calls_per_day", "mean"]
    assert table["calls_per_day"].sum() == pytest.approx(whole)


# --------------------------------------------------------------------------- choropleth


def test_province_choropleth_colours_each_named_province() -> None:
    values = {"410000": 0.91, "河北省": 0.95, "Hubei": 0.80}
    fig = maps.province_choropleth(values, kpi="on_time_arrival_rate")
    ax = fig.axes[0]
    coloured = _by_gid(ax, "province_values")
    outlines = read_outlines()
    expected = {"410000": 91.0, "130000": 95.0, "420000": 80.0}  # percent
    got = {}
    for path, value in zip(coloured.get_paths(), np.asarray(coloured.get_array()), strict=True):
        (code,) = [
            r.adcode
            for r in outlines.provinces
            if np.array_equal(region_path(r).vertices, path.vertices)
        ]
        got[code] = float(value)
    assert got == pytest.approx(expected)
    assert coloured.get_cmap().name == "RdYlGn"  # higher is better: green high
    texts = {t.get_text() for t in ax.texts}
    # Each value under its province's name.
    assert {"Henan\n91.0%", "Hebei\n95.0%", "Hubei\n80.0%"} <= texts
    grey = [c for c in ax.collections if isinstance(c, PathCollection) and c.get_gid() is None]
    assert any(len(c.get_paths()) == 31 - 3 for c in grey)  # the other provinces: no value


def test_province_choropleth_scales_and_directions() -> None:
    lower_better = maps.province_choropleth({"110000": 2.5, "310000": 3.0}, kpi="response_p90_h")
    cells = _by_gid(lower_better.axes[0], "province_values")
    assert cells.get_cmap().name == "RdYlGn_r"
    assert sorted(np.asarray(cells.get_array())) == [2.5, 3.0]
    neutral = maps.province_choropleth(pd.Series({"110000": 5.0}), label="calls per day")
    cells = _by_gid(neutral.axes[0], "province_values")
    assert cells.get_cmap().name == "viridis"
    assert 0.0 < np.asarray(cells.norm(np.array([5.0])))[0] < 1.0  # one value: a band around it
    assert neutral.axes[1].get_ylabel() == "calls per day"
    with pytest.raises(KeyError, match="Atlantis"):
        maps.province_choropleth({"Atlantis": 1.0})


# --------------------------------------------------------------------------- two networks


def _table(rows: list[tuple[str, float, float, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["name", "lat", "lon", "vans"])


def test_network_changes_site_by_site() -> None:
    before = _table(
        [("a", 30.0, 114.0, 2), ("b", 31.0, 114.0, 2), ("c", 32.0, 114.0, 2),
         ("d", 33.0, 114.0, 1), ("e", 34.0, 114.0, 3)]
    )  # fmt: skip
    after = _table(
        [("A", 30.0, 114.0, 2), ("b", 31.0, 114.0, 5), ("c", 32.0, 114.0, 1),
         ("d", 33.5, 114.0, 1), ("f", 35.0, 115.0, 4)]
    )  # fmt: skip
    changes = tables.network_changes(before, after).set_index("lat")
    assert changes["change"].to_dict() == {
        30.0: "unchanged",  # renamed only: a station is its site
        31.0: "more vans",
        32.0: "fewer vans",
        33.0: "closed",  # moved: closed here ...
        33.5: "opened",  # ... and opened there
        34.0: "closed",
        35.0: "opened",
    }
    assert changes.at[34.0, "vans_before"] == 3 and changes.at[34.0, "vans_after"] == 0
    assert changes.at[35.0, "name"] == "f" and changes.at[30.0, "name"] == "A"
    assert changes["vans_after"].sum() == after["vans"].sum()
    assert changes["vans_before"].sum() == before["vans"].sum()


def test_network_difference_map_marks_every_change() -> None:
    before = _table([("a", 30.0, 114.0, 2), ("b", 31.0, 114.0, 2), ("c", 32.0, 114.0, 2)])
    after = _table([("a", 30.0, 114.0, 2), ("b", 31.0, 114.0, 4), ("d", 33.0, 113.0, 3)])
    fig = maps.network_difference_map(before, after, labels=("today", "plan"))
    ax = fig.axes[0]
    expected = {"unchanged": 1, "more_vans": 1, "opened": 1, "closed": 1}
    for change, n in expected.items():
        points = _by_gid(ax, f"change_{change}")
        assert len(np.asarray(points.get_offsets())) == n
    assert not [c for c in ax.collections if c.get_gid() == "change_fewer_vans"]
    opened = _by_gid(ax, "change_opened")
    assert list(np.asarray(opened.get_offsets())[0]) == [113.0, 33.0]
    assert _label(opened) == "stations opened (1, +3 vans)"
    assert _label(_by_gid(ax, "change_more_vans")) == "more vans (1, +2 vans)"
    assert ax.get_title() == "plan against today\nstations 3 -> 3, vans 6 -> 9"
    _save(fig)


def test_network_difference_of_the_expansion_scenario() -> None:
    """network_expansion.yaml: the national network plus 50 stations and 100 vans."""
    base = build_network(load_scenario(NATIONAL))
    expanded = build_network(load_scenario(EXPANSION))
    changes = tables.network_changes(base, expanded)
    counts = changes["change"].value_counts().to_dict()
    assert counts == {
        "unchanged": 1050, "opened": 50, "closed": 0, "more vans": 0, "fewer vans": 0
    }  # fmt: skip
    assert (changes["vans_after"] - changes["vans_before"]).sum() == 100
    fig = maps.network_difference_map(base, expanded)
    ax = fig.axes[0]
    assert ax.get_xlim()[1] - ax.get_xlim()[0] > maps.NATIONAL_SPAN_DEG  # the whole country


# --------------------------------------------------------------------------- every map


MAPS: dict[str, Callable[[Quick], Figure]] = {
    "network": lambda q: maps.network_map(q[2]),
    "on_time": lambda q: maps.on_time_map(q[1].calls, q[2]),
    "choropleth": lambda q: maps.province_choropleth({"410000": 0.9}),
    "difference": lambda q: maps.network_difference_map(q[2], q[2]),
}


@pytest.mark.parametrize("name", sorted(MAPS))
def test_every_map_names_its_outlines_and_says_it_is_approximate(name: str, quick: Quick) -> None:
    fig = MAPS[name](quick)
    caption = _caption(fig)
    assert caption == OUTLINE_CAPTION
    assert "DCW-GMT" in caption and "not a surveyed standard map" in caption
    assert len(_by_gid(fig.axes[0], "province_borders").get_paths()) == 34


def test_maps_read_another_outline_file(tmp_path: Path) -> None:
    square: dict[str, Any] = {
        "type": "Polygon",
        "coordinates": [[[113, 29], [116, 29], [116, 32], [113, 32], [113, 29]]],
    }
    feature = {"type": "Feature", "properties": {"adcode": "420000"}, "geometry": square}
    path = tmp_path / "one.geojson"
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": [feature]}),
        encoding="utf-8",
    )
    stations = pd.DataFrame({"lat": [30.0], "lon": [114.0], "vans": [2]})
    fig = maps.network_map(stations=stations, outlines=path)
    assert len(_by_gid(fig.axes[0], "province_borders").get_paths()) == 1


def _label_boxes(fig: Figure) -> list[Any]:
    """The window boxes of the texts written on the map, as the saved figure draws them."""
    _save(fig)  # lays the figure out as saving does (constrained layout, aspect)
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    return [t.get_window_extent(renderer) for t in fig.axes[0].texts]


def _no_overlap(boxes: list[Any]) -> bool:
    return not any(a.overlaps(b) for k, a in enumerate(boxes) for b in boxes[k + 1 :])


def test_maps_name_their_places_without_overlap(quick: Quick) -> None:
    """Prefecture names on a province map, province names on a national one, none over
    another; a crowded choropleth leaves out the values that would not fit."""
    _, result, network = quick
    texts = {t.get_text() for t in maps.network_map(network).axes[0].texts}
    assert {"Zhengzhou", "Luoyang", "Nanyang", "Xinyang"} <= texts
    fig = maps.on_time_map(result.calls, network)
    assert "Zhengzhou" in {t.get_text() for t in fig.axes[0].texts}
    assert _no_overlap(_label_boxes(fig))
    national = maps.network_map(build_network(load_scenario(NATIONAL)))
    names = {t.get_text() for t in national.axes[0].texts}
    assert {"Xinjiang", "Tibet", "Sichuan", "Inner Mongolia", "Henan"} <= names
    assert not any(name in names for name in ("Zhengzhou", "Luoyang"))  # no prefectures
    assert _no_overlap(_label_boxes(national))
    every = {code: 0.9 for code in ("110000", "120000", "130000", "310000", "320000", "330000")}
    every.update({f"{p}0000": 0.95 for p in (41, 42, 43, 51, 52, 53, 54, 62, 63, 65, 15)})
    crowded = maps.province_choropleth(every, kpi="on_time_arrival_rate")
    written = {t.get_text().split("\n")[0] for t in crowded.axes[0].texts}
    assert {"Xinjiang", "Tibet", "Henan"} <= written and len(written) < len(every)
    assert _no_overlap(_label_boxes(crowded))
