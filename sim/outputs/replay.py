"""A day of a run, replayed in the browser: one self-contained HTML page from a run folder.

:func:`replay_data` reads what ``rescue-sim run --out`` wrote (calls.parquet,
units.parquet, relocations.parquet, summary.json) and the network rebuilt from the
stored scenario, for one replication and a window of hours, and packs it as columns:
times in whole seconds from the window's start, coordinates in thousandths of a degree
(about 100 m), outlines in hundredths (the outlines are simplified to a few km anyway).
:func:`replay_html` puts that into the page template (``replay_page.html`` beside this
module: a canvas and plain JavaScript, no framework, nothing fetched), which draws the
calls by state, each van's recorded legs (base to site at its departure and arrival
times, back home until its next record) and the counters.
:func:`sim.outputs.report.write_replay` writes the page, claimed before anything is
read, as the report is.

Nothing is simulated or interpolated beyond a straight line between a leg's two ends:
a van's position on a drive is the share of the recorded drive time elapsed.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.tables import surges_of
from sim.errors import UserInputError
from sim.model.outlines import Outlines, Region, read_outlines
from sim.model.records import (
    IDLE,
    OFF_DUTY,
    ON_BREAK,
    ON_SITE,
    RELOCATING,
    RETURNING,
    TO_SITE,
    VAN_STATES,
)
from sim.model.reference import PROVINCE_PINYIN
from sim.outputs.place_names import label_point, latin_name
from sim.outputs.plots.labels import population_weights
from sim.outputs.run_folder import read_relocations
from sim.version import __version__

# A run folder as sim.outputs.report.load_run reads it (calls, units, summary, network,
# horizon_h, warmup_h, scenario_dict, path): typed Any, as the report imports this module.
RunFolder = Any

TEMPLATE = "replay_page.html"
DATA_MARK = "/*REPLAY_DATA*/null"
POINT_SCALE = 1000  # calls, stations, vans: thousandths of a degree
OUTLINE_SCALE = 100  # outlines: hundredths of a degree
MAX_HOURS = 24.0 * 7  # a longer window makes a page too big to open quickly
KM_PER_DEGREE = 111.2


@dataclass(frozen=True)
class Window:
    """What is replayed: one replication, from ``start_h`` to ``end_h`` (run hours)."""

    replication: int
    start_h: float
    end_h: float
    region: Region | None  # a province, or None for the whole run


# --------------------------------------------------------------------------- checks


def find_province(name: str, outlines: Outlines | None = None) -> Region:
    """The province named by adcode, Chinese name or pinyin (any case); UserInputError if none."""
    shapes = outlines or read_outlines()
    key = name.strip()
    for region in shapes.provinces:
        pinyin = PROVINCE_PINYIN.get(region.adcode[:2], "")
        short = region.name.rstrip("省市").removesuffix("自治区").removesuffix("特别行政区")
        if key in (region.adcode, region.adcode[:2], region.name, short) or (
            key.casefold() == pinyin.casefold()
        ):
            if not region.in_model:
                raise UserInputError(f"{name!r} is outside the model", field="--region")
            return region
    raise UserInputError(
        f"unknown province {name!r}: give its adcode, Chinese name or pinyin (e.g. Henan)",
        field="--region",
    )


def busiest_day(calls: pd.DataFrame, warmup_h: float, horizon_h: float, replication: int) -> int:
    """The whole day after the warm-up with the most calls in ``replication`` (the first
    of equals); the first day after the warm-up when the run has none."""
    first = math.ceil(warmup_h / 24.0 - 1e-9)
    last = max(first, math.floor(horizon_h / 24.0 + 1e-9) - 1)
    t = calls.loc[calls["replication"] == replication, "t_call_h"].to_numpy(float)
    days = np.floor(t / 24.0).astype(np.int64)
    counts = np.bincount(days[(days >= first) & (days <= last)] - first, minlength=last - first + 1)
    return first + int(np.argmax(counts)) if len(counts) else first


def check_options(
    *, replication: int | None, start_day: float | None, hours: float, region: str | None
) -> None:
    """The checks that need no run: before anything is read."""
    if replication is not None and replication < 0:
        raise UserInputError("must be 0 or more", field="--replication")
    if start_day is not None and not (math.isfinite(start_day) and start_day >= 0):
        raise UserInputError("must be a day of the run, 0 or more", field="--start")
    if not (math.isfinite(hours) and 0 < hours <= MAX_HOURS):
        raise UserInputError(f"must be more than 0 and at most {MAX_HOURS:g}", field="--hours")
    if region is not None:
        find_province(region)


def replay_window(
    run: RunFolder,
    *,
    replication: int | None = None,
    start_day: float | None = None,
    hours: float = 24.0,
    region: str | None = None,
) -> Window:
    """Check the options against the run: one line naming the option for each mistake."""
    present = sorted(int(r) for r in run.calls["replication"].unique())
    rep = present[0] if replication is None and present else replication
    if rep is None or rep not in present:
        shown = f"0-{present[-1]}" if present else "none"
        raise UserInputError(
            f"the run has no replication {replication} (it has {shown})", field="--replication"
        )
    horizon_h = run.horizon_h
    check_options(replication=replication, start_day=start_day, hours=hours, region=region)
    if start_day is None:
        start_day = busiest_day(run.calls, run.warmup_h, horizon_h, rep)
    start_h = float(start_day) * 24.0
    if not (math.isfinite(start_h) and 0 <= start_h < horizon_h):
        raise UserInputError(
            f"day {start_day:g} is outside the run (days 0 to {horizon_h / 24:g})", field="--start"
        )
    if start_h + hours > horizon_h + 1e-9:
        raise UserInputError(
            f"{hours:g} hours from day {start_day:g} go past the run's end "
            f"(hour {horizon_h:g}); give fewer --hours or an earlier --start",
            field="--hours",
        )
    province = find_province(region) if region is not None else None
    if (
        province is not None
        and not run.calls["adcode"].astype(str).str[:2].eq(province.adcode[:2]).any()
    ):
        raise UserInputError(f"the run has no call in {region}", field="--region")
    return Window(rep, start_h, start_h + hours, province)


# --------------------------------------------------------------------------- packing


def _seconds(t_h: np.ndarray, start_h: float) -> list[int | None]:
    """Run hours as whole seconds from the window's start; None where unknown."""
    out = np.round((np.asarray(t_h, float) - start_h) * 3600.0)
    return [None if not math.isfinite(v) else int(v) for v in out.tolist()]


def _points(values: Any, scale: int = POINT_SCALE) -> list[int]:
    return [int(v) for v in np.round(np.asarray(values, float) * scale).tolist()]


def _closed_h(calls: pd.DataFrame) -> np.ndarray:
    """When each call ended for the customer: repaired, hung up, or settled by phone."""
    closed = calls["repaired_h"].to_numpy(float)
    closed = np.where(np.isfinite(closed), closed, calls["abandoned_h"].to_numpy(float))
    remote = calls["final_state"].astype(str).to_numpy() == "remote"
    by_phone = (calls["answered_h"] + calls["handling_h"]).to_numpy(float)
    result: np.ndarray = np.where(np.isfinite(closed) | ~remote, closed, by_phone)
    return result


def _calls(calls: pd.DataFrame, window: Window) -> dict[str, Any]:
    closed = _closed_h(calls)
    t_call = calls["t_call_h"].to_numpy(float)
    keep = (t_call < window.end_h) & ~(closed < window.start_h)
    table = calls[keep]
    s = window.start_h
    names = sorted(set(table["prefecture"].astype(str)))
    faults = sorted(set(table["fault"].astype(str)))
    return {
        "id": table["call_id"].astype(int).tolist(),
        "t": _seconds(table["t_call_h"].to_numpy(), s),
        "assigned": _seconds(table["assigned_h"].to_numpy(), s),
        "departed": _seconds(table["departed_h"].to_numpy(), s),
        "arrived": _seconds(table["arrived_h"].to_numpy(), s),
        "released": _seconds(table["van_released_h"].to_numpy(), s),
        "closed": _seconds(closed[keep], s),
        "promise": _seconds(table["arrival_promise_h"].to_numpy(), 0.0),
        # The van arrived by the promise: the KPI's deadline, on the exact times.
        "ontime": (table["arrived_h"] <= table["t_call_h"] + table["arrival_promise_h"])
        .astype(int)
        .tolist(),
        "x": _points(table["lon"]),
        "y": _points(table["lat"]),
        "van": table["van"].astype(int).tolist(),
        "towed": table["towed"].astype(int).tolist(),
        "contractor": table["contractor"].astype(int).tolist(),
        "final": [str(v) for v in table["final_state"].astype(str)],
        "prefecture": [names.index(v) for v in table["prefecture"].astype(str)],
        "fault": [faults.index(v) for v in table["fault"].astype(str)],
        "prefectures": names,
        "faults": faults,
    }


def _legs(
    units: pd.DataFrame,
    calls: pd.DataFrame,
    moves: pd.DataFrame | None,
    run: RunFolder,
    window: Window,
    vans: np.ndarray,
) -> dict[str, list[Any]]:
    """Each van's recorded legs: (van, from, to, state, x0, y0, x1, y1, call), in order.

    A leg starts at a unit-log record and ends at the van's next one (the run's end for
    the last). A drive to a site is split at the recorded departure: turning out at the
    start point, then on the road until the recorded arrival. A van returning home or
    moving to a new base drives from where it was to its base until its next record.
    """
    network = run.network
    lat_s, lon_s = network.station_lat, network.station_lon
    site: dict[int, tuple[float, float, float, float]] = {
        int(row[0]): (float(row[1]), float(row[2]), float(row[3]), float(row[4]))
        for row in calls[["call_id", "lat", "lon", "departed_h", "arrived_h"]].itertuples(
            index=False
        )
    }
    moved: dict[tuple[int, float], int] = {}
    if moves is not None:
        for van, t_h, to in moves[["van", "t_h", "to_station"]].itertuples(index=False):
            moved[(int(van), float(t_h))] = int(to)
    order = np.lexsort((np.arange(len(units)), units["t_h"].to_numpy(), units["van"].to_numpy()))
    table = units.iloc[order]
    t_all = table["t_h"].to_numpy(float)
    van_all = table["van"].to_numpy(np.int64)
    codes = pd.Categorical(table["state"].astype(str), categories=VAN_STATES).codes
    call_all = table["call_id"].to_numpy(np.int64)
    horizon = run.horizon_h
    out: dict[str, list[Any]] = {k: [] for k in ("van", "t0", "t1", "s", "x0", "y0", "x1", "y1")}
    out["call"] = []
    chosen = set(vans.tolist())

    def leg(van: int, t0: float, t1: float, state: int, a: Any, b: Any, call: int) -> None:
        if t1 < window.start_h or t0 > window.end_h:
            return
        for key, value in zip(
            ("van", "t0", "t1", "s", "x0", "y0", "x1", "y1", "call"),
            (van, t0, t1, state, a[1], a[0], b[1], b[0], call),
            strict=True,
        ):
            out[key].append(value)

    starts = np.flatnonzero(np.r_[True, van_all[1:] != van_all[:-1]])
    for first, stop in zip(starts, np.r_[starts[1:], len(van_all)], strict=True):
        van = int(van_all[first])
        if van not in chosen:
            continue
        base = int(network.van_station[van])
        where = (lat_s[base], lon_s[base])
        for k in range(first, stop):
            t0, state, call = t_all[k], int(codes[k]), int(call_all[k])
            t1 = t_all[k + 1] if k + 1 < stop else horizon
            home = (lat_s[base], lon_s[base])
            if state == TO_SITE and call in site:
                lat, lon, departed, arrived = site[call]
                target = (lat, lon)
                if math.isfinite(departed) and departed > t0:
                    leg(van, t0, min(departed, t1), TO_SITE, where, where, call)
                    t0 = departed
                if math.isfinite(arrived):
                    leg(van, t0, arrived, TO_SITE, where, target, call)
                    where = target
                else:  # the run ended on the way: where it went is known, not how far
                    leg(van, t0, t1, TO_SITE, where, where, call)
            elif state == ON_SITE:
                leg(van, t0, t1, ON_SITE, where, where, call)
            elif state in (RETURNING, RELOCATING):
                if state == RELOCATING:
                    base = moved.get((van, float(t0)), base)
                    home = (lat_s[base], lon_s[base])
                ended = k + 1 < stop
                leg(van, t0, t1, state, where, home if ended else where, call)
                where = home if ended else where
            else:  # idle, off duty, on a break: at the base
                where = home
                leg(van, t0, t1, state, where, where, call)
    s = window.start_h
    return {
        "van": out["van"],
        "t0": _seconds(np.array(out["t0"]), s),
        "t1": _seconds(np.array(out["t1"]), s),
        "s": out["s"],
        "x0": _points(out["x0"]),
        "y0": _points(out["y0"]),
        "x1": _points(out["x1"]),
        "y1": _points(out["y1"]),
        "call": out["call"],
    }


def _extent(lon: np.ndarray, lat: np.ndarray) -> tuple[float, float, float, float]:
    x0, x1, y0, y1 = float(lon.min()), float(lon.max()), float(lat.min()), float(lat.max())
    pad_x, pad_y = max((x1 - x0) * 0.06, 0.4), max((y1 - y0) * 0.06, 0.4)
    return x0 - pad_x, y0 - pad_y, x1 + pad_x, y1 + pad_y


def _rings(region: Region) -> list[list[int]]:
    return [
        [v for point in ring[:-1] for v in _points(point, OUTLINE_SCALE)]
        for ring in (*region.exteriors, *region.holes)
    ]


def _outlines(extent: tuple[float, float, float, float]) -> dict[str, Any]:
    """Provinces and prefecture cells that reach into the view, with their name points."""
    shapes = read_outlines()
    x0, y0, x1, y1 = extent

    def seen(region: Region) -> bool:
        a, b, c, d = region.bounds
        return a <= x1 and c >= x0 and b <= y1 and d >= y0

    provinces = [r for r in shapes.provinces if seen(r)]
    cells = [r for r in shapes.cells if seen(r)]
    weight = population_weights()  # prefectures ranked as the maps rank them

    def pack(regions: list[Region], rank: list[float]) -> dict[str, Any]:
        points = [label_point(r) for r in regions]
        return {
            "name": [latin_name(r) for r in regions],
            "local": [r.name for r in regions],
            "rings": [_rings(r) for r in regions],
            "in_model": [int(r.in_model) for r in regions],
            "lx": _points([p[0] for p in points]),
            "ly": _points([p[1] for p in points]),
            "rank": [round(v, 3) for v in rank],
        }

    area = [(r.bounds[2] - r.bounds[0]) * (r.bounds[3] - r.bounds[1]) for r in provinces]
    return {
        "provinces": pack(provinces, area),
        "cells": pack(cells, [weight.get(r.adcode, 0.0) * 1e3 for r in cells]),
        "scale": OUTLINE_SCALE,
    }


def _clock_origin(run: RunFolder) -> str | None:
    """The date of hour 0 (the scenario's ``horizon.start_date``), ISO, or None."""
    start = run.scenario_dict.get("horizon", {}).get("start_date")
    if not start:
        return None
    try:
        return date.fromisoformat(str(start)).isoformat()
    except ValueError:
        return None


def replay_data(run: RunFolder, window: Window | None = None) -> dict[str, Any]:
    """Everything the page draws, packed in columns (see the module's docstring), from a
    run folder as :func:`sim.outputs.report.load_run` reads it."""
    if run.network is None:
        raise UserInputError(
            "the run's network cannot be rebuilt from its scenario (a file it names has "
            "moved?): the replay needs the stations",
            file=str(run.path),
        )
    window = window or replay_window(run)
    rep = window.replication
    calls = every_call = run.calls[run.calls["replication"] == rep]
    units = run.units[run.units["replication"] == rep]
    moves = read_relocations(run.path)
    if moves is not None:
        moves = moves[moves["replication"] == rep]
    network = run.network
    codes = network.areas["adcode"].to_numpy(dtype=str)
    station_code = np.where(
        network.station_area >= 0, codes[np.maximum(network.station_area, 0)], ""
    )
    van_station = np.asarray(network.van_station)
    vans = np.arange(len(van_station))
    stations = np.arange(network.n_stations)
    if window.region is not None:
        prefix = window.region.adcode[:2]
        calls = calls[calls["adcode"].astype(str).str[:2] == prefix]
        in_region = np.char.startswith(station_code.astype(str), prefix)
        stations = np.flatnonzero(in_region)
        vans = vans[in_region[van_station]]
    lon = np.r_[network.station_lon[stations], calls["lon"].to_numpy(float)]
    lat = np.r_[network.station_lat[stations], calls["lat"].to_numpy(float)]
    extent = _extent(lon, lat)
    s = run.summary
    surges = [
        {
            "name": surge.name,
            "x": _points([surge.region.center_lon])[0],
            "y": _points([surge.region.center_lat])[0],
            "r_deg": surge.region.radius_km / KM_PER_DEGREE,
            "t0": _seconds(np.array([surge.start_h]), window.start_h)[0],
            "t1": _seconds(np.array([surge.end_h]), window.start_h)[0],
        }
        for surge in surges_of(run.scenario_dict)
    ]
    return {
        "meta": {
            "scenario": str(s.get("scenario_name", "run")),
            "policy": str(s.get("policy", "")),
            "seed": s.get("seed"),
            "replication": rep,
            "replications": int(run.calls["replication"].nunique()),
            "version": __version__,
            "start_h": window.start_h,
            "end_h": window.end_h,
            "warmup_h": run.warmup_h,
            "horizon_h": run.horizon_h,
            "date0": _clock_origin(run),
            "region": latin_name(window.region) if window.region is not None else None,
            "scale": POINT_SCALE,
            "extent": [round(v, 3) for v in extent],
        },
        "calls": _calls(calls, window),
        # A van of the region may serve a call across its border: every call's site.
        "legs": _legs(units, every_call, moves, run, window, vans),
        "vans": {"id": vans.tolist(), "station": van_station[vans].tolist()},
        "stations": {
            "id": stations.tolist(),
            "name": [str(network.station_name[k]) for k in stations],
            "x": _points(network.station_lon[stations]),
            "y": _points(network.station_lat[stations]),
            "vans": [int(network.vans_per_station[k]) for k in stations],
        },
        "surges": surges,
        "outlines": _outlines(extent),
        "states": list(VAN_STATES),
        "busy": [TO_SITE, ON_SITE, RETURNING, RELOCATING],
        "resting": [IDLE, OFF_DUTY, ON_BREAK],
    }


def replay_html(data: dict[str, Any]) -> str:
    """The page: the template with the data embedded as JSON (``</`` escaped)."""
    template = resources.files("sim.outputs").joinpath(TEMPLATE).read_text(encoding="utf-8")
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    title = f"{data['meta']['scenario']}, replication {data['meta']['replication']}"
    page = template.replace(DATA_MARK, text.replace("</", "<\\/"))
    return page.replace("{{TITLE}}", html.escape(title))


def day_label(run: RunFolder, start_h: float) -> str:
    """'day 3' or, with the scenario's start date, 'day 3 (2021-07-20)'."""
    day = int(start_h // 24)
    origin = _clock_origin(run)
    if origin is None:
        return f"day {day}"
    return f"day {day} ({(date.fromisoformat(origin) + timedelta(days=day)).isoformat()})"


__all__ = [
    "Window",
    "busiest_day",
    "day_label",
    "find_province",
    "replay_data",
    "replay_html",
    "replay_window",
]
