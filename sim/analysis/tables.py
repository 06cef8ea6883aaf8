"""Tables derived from a run's results, for figures, reports and notebooks.

Pure functions of the call and unit tables (and of a summary or a scenario's surges),
beside the KPIs they follow: on-time arrival by prefecture is censored exactly as the
KPI (:func:`sim.analysis.kpis.arrival_outcomes`), van busy time is the KPI's spells.
Nothing here draws; :mod:`sim.outputs.plots` draws from these tables. The network
tables (:func:`station_table`, :func:`network_changes`) take Networks or plain station
tables, so a network-design step can compare the networks it builds without drawing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.kpis import KpiSettings, arrival_outcomes, call_kpis
from sim.model.records import IDLE, RESTING_STATES, VAN_STATES
from sim.model.reference import areas
from sim.model.scenario import Surge


def kpi_frame(summary: pd.DataFrame | Mapping[str, Any]) -> pd.DataFrame:
    """KPIs as a frame indexed by name with columns mean, low, high, n.

    Accepts ``RunResult.summary`` (index kpi; mean, low, high, n), a long frame with a
    ``kpi`` column, the dict of summary.json, or its ``"kpis"`` mapping.
    """
    if isinstance(summary, pd.DataFrame):
        frame = summary.set_index("kpi") if "kpi" in summary.columns else summary
        frame = frame.rename(columns={"ci95_low": "low", "ci95_high": "high", "replications": "n"})
        out = frame.reindex(columns=["mean", "low", "high", "n"])
        return out.astype(float)
    kpis = summary.get("kpis", summary)
    rows = {
        name: {
            "mean": _num(v.get("mean")),
            "low": _num(v.get("ci95_low", v.get("low"))),
            "high": _num(v.get("ci95_high", v.get("high"))),
            "n": _num(v.get("replications", v.get("n"))),
        }
        for name, v in kpis.items()
        if isinstance(v, Mapping)
    }
    return pd.DataFrame.from_dict(rows, orient="index", columns=["mean", "low", "high", "n"])


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


# --------------------------------------------------------------------------- surges


def surges_of(surges: Any) -> list[Surge]:
    """Surge objects from a Scenario, its ``surges``, a resolved scenario dict or dicts."""
    if surges is None:
        return []
    if hasattr(surges, "surges"):
        surges = surges.surges
    elif isinstance(surges, Mapping):
        surges = surges.get("surges", ())
    return [s if isinstance(s, Surge) else Surge.model_validate(s) for s in surges]


def surge_windows(surges: Any) -> list[tuple[str, float, float]]:
    """(name, start_h, end_h) of each surge (any input :func:`surges_of` accepts)."""
    return [(s.name, s.start_h, s.end_h) for s in surges_of(surges)]


def surge_regions(surges: Any) -> list[tuple[str, float, float, float]]:
    """(name, centre lat, centre lon, radius km) of each surge, from the same inputs."""
    return [
        (s.name, s.region.center_lat, s.region.center_lon, s.region.radius_km)
        for s in surges_of(surges)
    ]


# --------------------------------------------------------------------------- calls


def after_warmup(calls: pd.DataFrame, warmup_h: float) -> pd.DataFrame:
    """The calls made at or after the warm-up (those every KPI counts)."""
    return calls[calls["t_call_h"].to_numpy() >= warmup_h]


def replications_in(frame: pd.DataFrame) -> int:
    """How many replications a call or unit table holds (1 without a replication column)."""
    if "replication" not in frame.columns or len(frame) == 0:
        return 1
    return max(1, int(frame["replication"].nunique()))


def prefecture_on_time(
    calls: pd.DataFrame, *, warmup_h: float = 0.0, horizon_h: float | None = None
) -> pd.DataFrame:
    """On-time arrival by prefecture: adcode, lat, lon, calls (counted), on_time_rate.

    Censored as the KPI at ``horizon_h``; without it, the latest call time stands in
    for the horizon.
    """
    c = after_warmup(calls, warmup_h)
    if horizon_h is None:
        horizon_h = float(np.nanmax(c["t_call_h"].to_numpy(float))) if len(c) else 0.0
    known, on_time = arrival_outcomes(c, horizon_h)
    frame = pd.DataFrame(
        {"adcode": c["adcode"].astype(str).to_numpy(), "known": known, "on_time": on_time}
    )
    frame = frame[frame["known"]]
    grouped = frame.groupby("adcode").agg(calls=("on_time", "size"), on_time=("on_time", "sum"))
    grouped["on_time_rate"] = grouped["on_time"] / grouped["calls"]
    seats = areas().set_index("adcode")[["lat", "lon"]]
    out = grouped.join(seats, how="inner").reset_index()
    return out[["adcode", "lat", "lon", "calls", "on_time_rate"]]


# --------------------------------------------------------------------------- vans


def van_station_from_calls(calls: pd.DataFrame) -> dict[int, int]:
    """Each van's most frequent owning station among the calls it served (when no network)."""
    served = calls[(calls["van"].to_numpy() >= 0) & (calls["station"].to_numpy() >= 0)]
    if served.empty:
        return {}
    counts = served.groupby(["van", "station"]).size().reset_index(name="n")
    counts = counts.sort_values(["van", "n", "station"], ascending=[True, False, True])
    first = counts.drop_duplicates("van")
    return dict(zip(first["van"].astype(int), first["station"].astype(int), strict=True))


def busy_share_by_hour(units: pd.DataFrame, horizon_h: float, bin_h: float = 1.0) -> np.ndarray:
    """Share of vans not idle in each ``bin_h``-hour bin from 0 to the horizon (one replication)."""
    if units.empty:
        return np.zeros(0)
    t = units["t_h"].to_numpy(float)
    van = units["van"].to_numpy(np.int64)
    state = units["state"].astype(str).to_numpy()
    order = np.lexsort((np.arange(len(t)), t, van))
    t, van, state = t[order], van[order], state[order]
    end = np.append(t[1:], horizon_h)
    end[np.append(van[1:] != van[:-1], True)] = horizon_h
    # Working: not idle, and not off duty or on a break (a rostered van).
    busy = ~np.isin(state, [VAN_STATES[k] for k in (IDLE, *RESTING_STATES)])
    start, stop = np.clip(t[busy], 0, horizon_h), np.clip(end[busy], 0, horizon_h)
    edges = np.arange(0.0, horizon_h + bin_h * 0.5, bin_h)
    if edges[-1] < horizon_h:
        edges = np.append(edges, horizon_h)
    # Busy time up to x: sum over spells of clip(x - start, 0, stop - start).
    s_sorted, e_sorted = np.sort(start), np.sort(stop)
    cs, ce = (
        np.concatenate(([0.0], np.cumsum(s_sorted))),
        np.concatenate(([0.0], np.cumsum(e_sorted))),
    )
    ns, ne = np.searchsorted(s_sorted, edges), np.searchsorted(e_sorted, edges)
    cumulative = (edges * ns - cs[ns]) - (edges * ne - ce[ne])
    n_vans = int(van.max()) + 1
    share: np.ndarray = np.diff(cumulative) / (n_vans * np.diff(edges))
    return share


# --------------------------------------------------------------------------- provinces


def province_kpis(calls: pd.DataFrame, settings: KpiSettings | None = None) -> pd.DataFrame:
    """Every call KPI of :func:`sim.analysis.kpis.call_kpis`, by province.

    One row per province (index ``province``: its adcode, ``410000``), the mean over
    replications of each replication's value, as the run summary averages them; the
    column ``calls`` counts the calls after the warm-up, all replications together.
    ``settings``: the run's (:meth:`KpiSettings.of` its scenario); without them, no
    warm-up, the horizon at the end of the last call's day and the default promises.
    """
    if settings is None:
        last = float(calls["t_call_h"].max()) if len(calls) else 24.0
        settings = KpiSettings(warmup_h=0.0, horizon_h=math.ceil(last / 24.0) * 24.0)
    frame = calls.assign(province=calls["adcode"].astype(str).str[:2] + "0000")
    per_replication = []
    replications = frame["replication"] if "replication" in frame else pd.Series(0, frame.index)
    for _, rep in frame.groupby(replications.to_numpy(), sort=True):
        rows = {
            code: call_kpis(group, settings) for code, group in rep.groupby("province", sort=True)
        }
        per_replication.append(pd.DataFrame.from_dict(rows, orient="index"))
    if not per_replication:
        return pd.DataFrame(columns=["calls"]).rename_axis("province")
    # A province without calls in a replication counts as no value there, not as zero.
    table = pd.concat(per_replication).groupby(level=0).mean()
    counted = after_warmup(frame, settings.warmup_h)
    table.insert(0, "calls", counted.groupby("province").size().reindex(table.index).fillna(0))
    return table.rename_axis("province")


# --------------------------------------------------------------------------- networks


def station_table(network: Any) -> pd.DataFrame:
    """A network's stations as the table the maps take: name, lat, lon, vans, adcode.

    ``adcode`` is the division the station serves ('' for stations read from a CSV
    without one).
    """
    codes = network.areas["adcode"].to_numpy(dtype=str)
    area = np.asarray(network.station_area)
    return pd.DataFrame(
        {
            "name": np.asarray(network.station_name, dtype=str),
            "lat": np.asarray(network.station_lat, dtype=float),
            "lon": np.asarray(network.station_lon, dtype=float),
            "vans": np.asarray(network.vans_per_station, dtype=np.int64),
            "adcode": np.where(area >= 0, codes[np.maximum(area, 0)], ""),
        }
    )


def station_frame(stations: Any) -> pd.DataFrame | None:
    """A station table (name, lat, lon, vans) from a Network, a frame with lat, lon and vans
    (name or id optional), or a ``(lat, lon, vans)`` tuple; None for None."""
    if stations is None:
        return None
    if isinstance(stations, pd.DataFrame):
        table = stations.copy()
    elif hasattr(stations, "station_lat"):
        return station_table(stations)
    else:
        lat, lon, vans = stations
        table = pd.DataFrame({"lat": lat, "lon": lon, "vans": vans})
    if "name" not in table:
        table["name"] = table["id"].astype(str) if "id" in table else table.index.astype(str)
    if "vans" not in table:
        table["vans"] = 1
    return table


CHANGES = ("opened", "closed", "more vans", "fewer vans", "unchanged")


def network_changes(before: Any, after: Any) -> pd.DataFrame:
    """Site by site, what changed from one network to another.

    ``before`` and ``after``: Networks or station tables (lat, lon, vans). A station is
    its site: stations match by position to 1e-4 degree (about 10 m), whatever their
    names, so a station moved elsewhere shows as one closed and one opened, and two
    stations at one site count as one with their vans added. Columns: name (the newer
    one), lat, lon, vans_before, vans_after, change (one of :data:`CHANGES`); vans are 0
    on the side a site is missing from.
    """
    old, new = station_frame(before), station_frame(after)
    if old is None or new is None:
        raise ValueError("network_changes needs two networks or station tables")

    def keyed(table: pd.DataFrame) -> pd.DataFrame:
        key = table["lat"].map("{:.4f}".format) + "," + table["lon"].map("{:.4f}".format)
        return (
            table.assign(key=key)
            .groupby("key", sort=True)
            .agg(name=("name", "first"), lat=("lat", "first"), lon=("lon", "first"),
                 vans=("vans", "sum"))
        )  # fmt: skip

    a, b = keyed(old), keyed(new)
    joined = pd.merge(
        a, b, how="outer", left_index=True, right_index=True, suffixes=("_before", "_after")
    )
    vans_before = joined["vans_before"].fillna(0).astype(np.int64)
    vans_after = joined["vans_after"].fillna(0).astype(np.int64)
    in_before, in_after = joined["lat_before"].notna(), joined["lat_after"].notna()
    change = np.select(
        [
            ~in_before,
            ~in_after,
            vans_after > vans_before,
            vans_after < vans_before,
        ],
        ["opened", "closed", "more vans", "fewer vans"],
        default="unchanged",
    )
    return pd.DataFrame(
        {
            "name": joined["name_after"].fillna(joined["name_before"]).astype(str),
            "lat": joined["lat_after"].fillna(joined["lat_before"]).astype(float),
            "lon": joined["lon_after"].fillna(joined["lon_before"]).astype(float),
            "vans_before": vans_before,
            "vans_after": vans_after,
            "change": pd.Categorical(change, categories=CHANGES),
        }
    ).reset_index(drop=True)


__all__ = [
    "CHANGES",
    "after_warmup",
    "busy_share_by_hour",
    "kpi_frame",
    "network_changes",
    "prefecture_on_time",
    "province_kpis",
    "replications_in",
    "station_frame",
    "station_table",
    "surge_regions",
    "surge_windows",
    "surges_of",
    "van_station_from_calls",
]
