"""Demand fitted from a call trace: volume, hour and weekday profiles, places, faults, segments.

A trace is a table of recorded calls, read by the model's one trace reader
(:func:`sim.model.trace.read_trace_file`, as ``--trace`` and ``demand.trace`` read it):
times as timestamps (``time``) or hours since day 0 (``t_call_h``), ``lat``, ``lon``,
optional ``fault`` and ``segment``; or the call table of a run (``calls.parquet``: the
same plus ``prefecture`` and ``replication``, each replication an observation period of
its own). With timestamps, day 0 is the local midnight of the earliest call's day, and
its weekday is known.

Every estimate carries a 95% interval. Calls are modelled as the scenario draws them, a
Poisson process whose hourly rate is ``calls_per_day x weekday factor x hour share``, so
counts are Poisson given the hours observed (the *exposure*): a rate is ``count /
exposure`` with the exact (Garwood) interval, and a share of calls (prefecture, fault,
segment) is binomial with the Wilson interval. A period that is not a whole number of
weeks observes some hours and weekdays more often than others; dividing by the exposure
keeps the profiles free of that.

:func:`profile_chisquare` tests a given hour-of-day profile against the trace (Pearson
chi-square on the hourly counts, expected counts from the exposure), so a planner can
ask whether the profile of a scenario is compatible with what was recorded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from sim.errors import UserInputError
from sim.model.demand import locate_areas
from sim.model.reference import areas
from sim.model.scenario import Scenario
from sim.model.schema import HOURS_PER_DAY

DAYS_PER_WEEK = 7
LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """One fitted value and its 95% interval."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class DemandFit:
    """The demand a trace implies; tables are indexed by hour, weekday or name.

    ``hour_profile`` and ``weekday_profile`` are relative rates with mean 1 (columns
    value, low, high, calls, exposure_h); ``prefectures`` has adcode, name, lat, lon,
    calls and weight (share of calls) with its interval; ``faults`` and ``segments``
    calls and share with its interval.
    """

    n_calls: int
    days: float
    calls_per_day: Estimate
    hour_profile: pd.DataFrame
    weekday_profile: pd.DataFrame
    prefectures: pd.DataFrame
    faults: pd.DataFrame
    segments: pd.DataFrame


KEPT = ("adcode", "prefecture", "replication")
"""Columns of a trace kept for the fit besides the trace's own (places, periods)."""


def read_trace(path: str | Path, base: Scenario | None = None) -> pd.DataFrame:
    """A call trace (CSV, or a run's ``calls.parquet``) as the table :func:`fit_demand` fits.

    Every row is checked by the model's trace reader; errors name the file, the line (a
    Parquet file's row) and the column. Fault classes and segments must be ``base``'s
    (default: the model's defaults). Columns t_call_h (hours since day 0; a call before
    hour 0 is an error), lat, lon, fault and segment where the trace has them (None
    where a cell is empty), and adcode, prefecture, replication as written. With
    timestamps, ``attrs["day0"]`` is the date whose midnight is hour 0.
    """
    from sim.model.scenario import DEFAULT_FAULTS, DEFAULT_SEGMENTS, TraceConfig
    from sim.model.schema import MAX_DAYS
    from sim.model.trace import read_trace_file

    faults = base.demand.fault_classes if base is not None else DEFAULT_FAULTS
    segments = base.demand.segments if base is not None else DEFAULT_SEGMENTS
    # Every other setting at its default, as for --trace (the file is checked by the reader).
    config = TraceConfig.model_construct(file=Path(path))
    trace = read_trace_file(
        config,
        fault_classes=[f.name for f in faults],
        segments=[s.name for s in segments],
        keep=KEPT,
        not_before_h=0.0,
        # A trace is fitted to a scenario's demand: no longer than a horizon may be.
        before_h=MAX_DAYS * HOURS_PER_DAY,
    )
    table = pd.DataFrame({"t_call_h": trace.t_call_h, "lat": trace.lat, "lon": trace.lon})
    for name, values in (("fault", trace.fault), ("segment", trace.segment)):
        if values is not None:
            table[name] = pd.Series(values, dtype=object)
    for name, text in trace.kept.items():
        table[name] = text
    table.attrs["day0"] = trace.start
    return table


def _weekday_of_hour0(trace: pd.DataFrame, start_weekday: int | None) -> int:
    """The weekday of hour 0: the trace's day 0 when its times are dates, else given (or 0)."""
    day0 = trace.attrs.get("day0")
    if day0 is None:
        return 0 if start_weekday is None else start_weekday
    weekday = int(day0.weekday())
    if start_weekday is not None and start_weekday != weekday:
        raise UserInputError(
            f"{start_weekday}, but the trace's day 0 is {day0}, a {day0:%A} ({weekday})",
            field="--start-weekday",
        )
    return weekday


def _exposure_h(days: float, periods: int, start_weekday: int) -> tuple[np.ndarray, np.ndarray]:
    """Hours observed of each hour of day (24) and of each weekday (7, Monday first)."""
    n_hours = math.ceil(days * HOURS_PER_DAY)
    hours = np.arange(n_hours)
    # The last hour may be cut: count only the observed part of it.
    width = np.minimum(1.0, days * HOURS_PER_DAY - hours)
    by_hour = np.bincount(hours % HOURS_PER_DAY, weights=width, minlength=HOURS_PER_DAY)
    weekday = (hours // HOURS_PER_DAY + start_weekday) % DAYS_PER_WEEK
    by_day = np.bincount(weekday, weights=width, minlength=DAYS_PER_WEEK)
    return by_hour * periods, by_day * periods


def _poisson_interval(count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) interval of a Poisson mean from one count."""
    alpha = 1 - LEVEL
    low = np.where(count > 0, stats.chi2.ppf(alpha / 2, 2 * count) / 2, 0.0)
    high = stats.chi2.ppf(1 - alpha / 2, 2 * (count + 1)) / 2
    return low, high


def _rate_profile(count: np.ndarray, exposure_h: np.ndarray) -> pd.DataFrame:
    """Relative rates with mean 1 over the slots observed, and their intervals."""
    seen = exposure_h > 0
    rate = np.divide(count, exposure_h, out=np.zeros(len(count)), where=seen)
    scale = rate[seen].mean() if seen.any() and rate[seen].mean() > 0 else 1.0
    low, high = _poisson_interval(count.astype(float))
    with np.errstate(divide="ignore", invalid="ignore"):
        low_rate = np.where(seen, low / exposure_h, np.nan)
        high_rate = np.where(seen, high / exposure_h, np.nan)
    # A slot never observed says nothing: it gets the mean rate (1), not a rate of 0 that
    # would make the scenario draw no calls there.
    value = np.where(seen, rate / scale, 1.0)
    return pd.DataFrame(
        {
            "value": value,
            "low": low_rate / scale,
            "high": high_rate / scale,
            "calls": count.astype(np.int64),
            "exposure_h": exposure_h,
        }
    )


def _shares(names: pd.Series) -> pd.DataFrame:
    """Share of calls per name with Wilson intervals, and the first row holding each name.

    Calls without a name (an empty cell: not recorded) are left out of the shares.
    """
    names = names.reset_index(drop=True)
    names = names[names.notna()].astype(str)
    counts = names.value_counts()
    n = int(counts.sum())
    rows = []
    for name, k in counts.items():
        ci = stats.binomtest(int(k), n).proportion_ci(LEVEL, method="wilson")
        rows.append(
            {
                "name": str(name),
                "calls": int(k),
                "share": k / n,
                "low": ci.low,
                "high": ci.high,
                "first_row": int(names.index[names.to_numpy() == name][0]),
            }
        )
    columns = ["name", "calls", "share", "low", "high", "first_row"]
    return pd.DataFrame(rows, columns=columns).set_index("name")


def _prefectures(trace: pd.DataFrame) -> pd.DataFrame:
    """Calls per prefecture: the ``adcode`` or ``prefecture`` column, or else the
    prefecture whose cell holds the call (the nearest seat for a call in none)."""
    seats = areas()
    column = "adcode" if "adcode" in trace else "prefecture" if "prefecture" in trace else None
    if column is not None:
        key = trace[column].astype(str)
        seat_key = seats["adcode" if column == "adcode" else "name"].astype(str)
        unknown = sorted(set(key) - set(seat_key))
        if unknown:
            raise UserInputError(f"unknown {column} values {unknown[:5]}", field=column)
        lookup = dict(zip(seat_key, range(len(seats)), strict=True))
        index = key.map(lookup).to_numpy(np.int64)
    else:
        lat = trace["lat"].to_numpy(float)
        lon = trace["lon"].to_numpy(float)
        columns = {name: seats[name].to_numpy() for name in ("adcode", "lat", "lon")}
        index = locate_areas(columns, lat, lon)
    counts = np.bincount(index, minlength=len(seats))
    table = seats.loc[counts > 0, ["adcode", "name", "province", "lat", "lon"]].copy()
    table["calls"] = counts[counts > 0]
    shares = _shares(pd.Series(np.repeat(table["adcode"].to_numpy(), table["calls"])))
    shares = shares.reindex(table["adcode"].astype(str))
    table["weight"] = shares["share"].to_numpy()
    table["weight_low"] = shares["low"].to_numpy()
    table["weight_high"] = shares["high"].to_numpy()
    return table.sort_values("calls", ascending=False, ignore_index=True)


def fit_demand(
    trace: pd.DataFrame, *, days: float | None = None, start_weekday: int | None = None
) -> DemandFit:
    """Fit the demand of a trace observed for ``days`` (default: up to its last call's day).

    ``start_weekday`` is the weekday of hour 0 (Monday 0), as in the model: by default
    the weekday of the trace's day 0 when its times were dates (``attrs["day0"]``, see
    :func:`read_trace`; a different one is an error), else Monday. A trace with a
    ``replication`` column holds that many periods of ``days`` each.
    """
    if len(trace) == 0:
        raise UserInputError("the trace has no calls")
    start_weekday = _weekday_of_hour0(trace, start_weekday)
    t = trace["t_call_h"].to_numpy(float)
    period_days = days if days is not None else max(1.0, math.ceil(t.max() / HOURS_PER_DAY))
    if t.max() >= period_days * HOURS_PER_DAY:
        raise UserInputError(f"calls after the {period_days:g} days observed", field="--days")
    periods = int(trace["replication"].nunique()) if "replication" in trace else 1
    by_hour_h, by_day_h = _exposure_h(period_days, periods, start_weekday)
    hour = (t // 1).astype(np.int64)
    hour_counts = np.bincount(hour % HOURS_PER_DAY, minlength=HOURS_PER_DAY)
    day_counts = np.bincount(
        (hour // HOURS_PER_DAY + start_weekday) % DAYS_PER_WEEK, minlength=DAYS_PER_WEEK
    )
    n = len(trace)
    weekdays = _rate_profile(day_counts, by_day_h)
    # The scenario's calls_per_day is the mean over the week (its weekday factors have
    # mean 1): the mean hourly rate of the weekdays seen, so that a period of whole weeks
    # gives calls / days and a part week is not biased by which weekdays it saw.
    seen = by_day_h > 0
    per_day = HOURS_PER_DAY * float(np.mean(day_counts[seen] / by_day_h[seen]))
    low, high = _poisson_interval(np.array([float(n)]))
    return DemandFit(
        n_calls=n,
        days=period_days * periods,
        calls_per_day=Estimate(per_day, per_day * low[0] / n, per_day * high[0] / n),
        hour_profile=_rate_profile(hour_counts, by_hour_h),
        weekday_profile=weekdays,
        prefectures=_prefectures(trace),
        faults=_shares(trace["fault"] if "fault" in trace else pd.Series([], dtype=str)),
        segments=_shares(trace["segment"] if "segment" in trace else pd.Series([], dtype=str)),
    )


def profile_chisquare(fit: DemandFit, hour_profile: tuple[float, ...] | np.ndarray) -> float:
    """p-value of Pearson's chi-square test of the trace's hourly counts against a profile.

    Expected counts are the profile's share of each hour times the hours observed of it,
    scaled to the number of calls; the rate is fitted, so the test has 22 degrees of freedom.
    """
    weight = np.asarray(hour_profile, dtype=float) * fit.hour_profile["exposure_h"].to_numpy()
    observed = fit.hour_profile["calls"].to_numpy(float)
    expected = weight / weight.sum() * observed.sum()
    return float(stats.chisquare(observed, expected, ddof=1).pvalue)


def _rounded_shares(shares: pd.Series) -> dict[str, float]:
    """Shares rounded to 4 places that still sum to 1 (the rest goes to the largest)."""
    rounded = shares.to_numpy(float).round(4)
    if len(rounded):
        rounded[np.argmax(rounded)] += 1.0 - rounded.sum()
    return {str(k): float(v) for k, v in zip(shares.index, rounded, strict=True)}


def _named_items(
    fit_shares: pd.DataFrame, items: tuple[Any, ...], what: str, source: str
) -> list[dict[str, Any]]:
    """The base scenario's fault classes or segments with the fitted shares."""
    known = [item.name for item in items]
    unknown = [name for name in fit_shares.index if name not in known]
    if unknown:
        row = int(fit_shares.loc[unknown, "first_row"].min())
        name = fit_shares.index[fit_shares["first_row"] == row][0]
        raise UserInputError(
            f"{name!r} (row {row + 1} of the trace) is not a {what} of the base scenario;"
            f" known: {known}",
            file=source,
            field=what,
        )
    shares = _rounded_shares(fit_shares["share"].reindex(known).fillna(0.0))
    return [
        {**item.model_dump(mode="json", by_alias=True), "share": shares[item.name]}
        for item in items
    ]


def demand_section(
    fit: DemandFit, base: Scenario, spatial_csv: str, source: str = "<trace>"
) -> dict[str, Any]:
    """The ``demand`` section of a scenario from a fit: fields of ``base`` not fitted kept.

    Fault classes and segments keep the base scenario's repair times and priorities with
    the fitted shares (when the trace names them); places come from ``spatial_csv``.
    """
    demand = base.demand
    section: dict[str, Any] = {
        "calls_per_day": round(fit.calls_per_day.value, 3),
        "hour_of_day_profile": [round(float(v), 4) for v in fit.hour_profile["value"]],
        "day_of_week_profile": [round(float(v), 4) for v in fit.weekday_profile["value"]],
        "spatial": {"csv": spatial_csv, "scatter_km": demand.spatial.scatter_km},
    }
    if len(fit.faults):
        section["fault_classes"] = _named_items(fit.faults, demand.fault_classes, "fault", source)
    if len(fit.segments):
        section["segments"] = _named_items(fit.segments, demand.segments, "segment", source)
    return section
