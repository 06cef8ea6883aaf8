"""Call traces: a planner's recorded calls, read, checked and placed on the model's clock.

A scenario's ``demand.trace`` (:class:`~sim.model.scenario.TraceConfig`) names a CSV of
recorded calls and which of its columns hold what. :func:`read_trace` reads it once per
process and checks every row: a bad cell is one :class:`~sim.errors.ScenarioError`
naming the file, the line as an editor shows it and the column. Times become hours since
day 0, the local midnight that begins the horizon, as wall-clock time in the trace's
time zone, so that the hour of the day of a call is the hour its clock showed.

:func:`read_trace_file` is the one reader of a call trace: ``demand.trace`` and
``--trace`` use it through :func:`read_trace`, ``rescue-sim fit-demand`` directly. It
reads timestamps (ISO 8601 or ``time_format``) or hours since day 0: a column
``t_call_h`` (the model's own name, as in a run's ``calls.parquet``) holds hours, and
is read when the trace has no ``time`` column. A ``.parquet`` file is read as a CSV
would be, its errors naming the row.

:func:`trace_calls` gives the calls of one replication: with ``bootstrap: none`` the
recorded calls inside the horizon, the same in every replication; with ``bootstrap:
days`` each day of the horizon is a day of the trace drawn with replacement from a named
stream (common random numbers: every policy compared on a replication replays the same
days). Everything else about a call (handling, patience, travel noise, repair...) is
drawn from the named streams as for a drawn call (:func:`sim.model.demand.draw_call_stream`).
:func:`trace_columns` gives what the call table keeps from the trace: the row, the id,
the priority and the observed times beside the simulated ones.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from sim.errors import ScenarioError
from sim.model.csv_input import (
    id_column,
    is_parquet,
    line_of,
    number_column,
    parquet_columns,
    read_csv_table,
    read_parquet_table,
    rows_not_lines,
)
from sim.model.scenario import Scenario, TraceColumns, TraceConfig
from sim.model.schema import HOURS_PER_DAY
from sim.model.streams import named_rng

MAX_TRACE_CALLS = 10_000_000
HOURS_FORMAT = "hours"
"""``time_format: hours``: times are numbers, hours since day 0."""
HOURS_COLUMN = "t_call_h"
"""A time column of this name holds hours since day 0 (the model's own, as in calls.parquet)."""
DEFAULT_TIME = TraceColumns().time
OBSERVED = ("answered", "arrived", "repaired")
"""Observed times a trace may carry, kept beside the simulated ``*_h`` columns."""
OPTIONAL = ("fault", "segment", "priority", "id", *OBSERVED)
WHAT = "the call trace"
# A UTC offset ending a timestamp: Z, +08:00, +0800.
_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})$"
NS_PER_HOUR = 3_600_000_000_000
# Traces read in this process, by everything their rows depend on (a few at most: a
# sweep's points share one trace).
_CACHE: dict[tuple[Any, ...], Trace] = {}
_CACHE_SIZE = 4


@dataclass(frozen=True)
class Trace:
    """Every row of a trace in file order (row k is line k + 2 of the file).

    ``t_call_h`` and ``observed_h`` are hours since day 0 (NaN: an empty cell); ``fault``
    and ``segment`` are names (None: empty, drawn instead); ``priority`` is NaN when empty.
    An optional column the trace lacks is None (``observed_h`` has only those it has).
    """

    path: Path
    start: date | None
    t_call_h: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    fault: np.ndarray | None
    segment: np.ndarray | None
    priority: np.ndarray | None
    ids: np.ndarray | None
    observed_h: dict[str, np.ndarray]
    # Other columns asked for by name (read_trace_file's ``keep``), as text ("" empty).
    kept: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.t_call_h)

    def in_horizon(self, horizon_h: float) -> np.ndarray:
        """Rows with a call from day 0 up to (not including) the horizon's end."""
        inside: np.ndarray = (self.t_call_h >= 0) & (self.t_call_h < horizon_h)
        return inside


def _time_column(config: TraceConfig, header: set[str]) -> tuple[str, bool]:
    """The column of the call times, and whether it holds hours since day 0.

    The default ``time`` column, when the trace has none, is ``t_call_h`` if it has that;
    ``t_call_h`` holds hours unless a ``time_format`` says otherwise.
    """
    column = config.columns.time
    if column == DEFAULT_TIME and column not in header and HOURS_COLUMN in header:
        column = HOURS_COLUMN
    fmt = config.time_format
    return column, fmt == HOURS_FORMAT or (fmt is None and column == HOURS_COLUMN)


def _column_names(config: TraceConfig, header: set[str]) -> dict[str, str]:
    """Role -> column: the three required, the optional ones named or found by name."""
    columns = config.columns
    time, _ = _time_column(config, header)
    chosen = {"time": time, "lat": columns.lat, "lon": columns.lon}
    for role in OPTIONAL:
        name = getattr(columns, role)
        if name is not None:
            chosen[role] = name  # named in the scenario: the file must have it
        elif role in header:
            chosen[role] = role
    return chosen


def _first_bad(checks: list[tuple[np.ndarray, str]]) -> tuple[int, str] | None:
    """The first row any check flags, and that check's message."""
    found = [(int(np.flatnonzero(bad)[0]), message) for bad, message in checks if bad.any()]
    return min(found, key=lambda item: item[0]) if found else None


def _raise_at(table: pd.DataFrame, column: str, path: Path, row: int, message: str) -> NoReturn:
    """One error naming the file, the cell's line and its column."""
    value = table[column].iat[row]
    raise ScenarioError(f"{message}: {value!r}", file=path, line=line_of(row), field=column)


# Raises the reader's error for a row of the time column: (row, message).
RowError = Callable[[int, str], NoReturn]


def _local_times(
    table: pd.DataFrame, text: pd.Series, config: TraceConfig, path: Path, column: str
) -> pd.Series:
    """Timestamps as local wall-clock times (naive), NaT where empty or unreadable.

    Times with a UTC offset (``+08:00``, ``Z``) are converted to ``time_zone``; times
    without one are local already. A column must be all one or all the other: a time
    without an offset among times with one is ambiguous.
    """
    given = (text != "").to_numpy()
    offset = text.str.contains(_OFFSET, regex=True).to_numpy(bool) & given
    if offset.any() and not offset[given].all():
        row = int(np.flatnonzero(given & ~offset)[0])
        _raise_at(table, column, path, row, "no UTC offset, while other times have one")
    fmt = config.time_format or "ISO8601"
    try:
        parsed = pd.to_datetime(
            text.where(given), format=fmt, errors="coerce", utc=bool(offset.any())
        )
    except (ValueError, TypeError) as exc:
        reason = str(exc).split("\n")[0]
        raise ScenarioError(f"cannot read the times: {reason}", file=path, field=column) from None
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert(config.time_zone).dt.tz_localize(None)
    return parsed


def _since(local: pd.Series, day0: pd.Timestamp) -> np.ndarray:
    """Local wall-clock times as hours since ``day0`` (NaN for NaT)."""
    hours: np.ndarray = ((local - day0) / pd.Timedelta(hours=1)).astype(float).to_numpy()
    return hours


def _hours(
    table: pd.DataFrame,
    column: str,
    path: Path,
    config: TraceConfig,
    day0: pd.Timestamp | None,
    *,
    required: bool,
    in_hours: bool,
) -> tuple[np.ndarray, pd.Series | None]:
    """A time column as hours since ``day0`` (NaN where empty), and its local times.

    ``in_hours``: the column holds numbers, hours since day 0, not timestamps.
    ``day0`` None: the local times are returned to choose it, hours are left NaN.
    """
    text = table[column].astype(str).str.strip()
    blank = (text == "").to_numpy()
    local = None
    if in_hours:
        values = pd.to_numeric(text.where(~blank), errors="coerce").astype(float).to_numpy()
        unreadable = ~blank & ~np.isfinite(values)
        what = "not a number of hours"
    else:
        local = _local_times(table, text, config, path, column)
        unreadable = ~blank & local.isna().to_numpy()
        values = np.full(len(text), np.nan) if day0 is None else _since(local, day0)
        what = f"not a time in the format {config.time_format or 'ISO 8601'}"
    checks = [(blank, "empty cell")] if required else []
    found = _first_bad([*checks, (unreadable, what)])
    if found is not None:
        _raise_at(table, column, path, *found)
    return values, local


def _names(table: pd.DataFrame, column: str, path: Path, known: list[str], what: str) -> np.ndarray:
    """Names of fault classes or segments; an empty cell is None (drawn instead)."""
    text = table[column].astype(str).str.strip()
    unknown = ((text != "") & ~text.isin(known)).to_numpy()
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        _raise_at(table, column, path, row, f"unknown {what} (known: {', '.join(known)})")
    names: np.ndarray = text.to_numpy(object)
    names[names == ""] = None
    return names


def _priorities(table: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    """Whole numbers from 0 (0 first), NaN where empty."""
    text = table[column].astype(str).str.strip()
    blank = (text == "").to_numpy()
    values = pd.to_numeric(text.where(~blank), errors="coerce").astype(float).to_numpy()
    with np.errstate(invalid="ignore"):
        found = _first_bad(
            [
                (~blank & ~np.isfinite(values), "not a number"),
                (~blank & (values != np.round(values)), "must be a whole number"),
                (~blank & (values < 0), "must be at least 0"),
            ]
        )
    if found is not None:
        _raise_at(table, column, path, *found)
    return values


def _table(path: Path, config: TraceConfig, keep: Sequence[str]) -> tuple[pd.DataFrame, bool]:
    """The trace's cells as text (a CSV, or a Parquet file), and whether it is Parquet."""
    if not is_parquet(path):
        return read_csv_table(path, WHAT, set(), MAX_TRACE_CALLS), False
    header = parquet_columns(path, WHAT)
    wanted = {*_column_names(config, set(header)).values(), *keep}
    # Only the columns the trace is read for: a run's calls.parquet has dozens.
    columns = [name for name in header if name in wanted]
    return read_parquet_table(path, WHAT, columns, MAX_TRACE_CALLS), True


def _missing(roles: dict[str, str], header: set[str], path: Path) -> None:
    missing = sorted(name for name in roles.values() if name not in header)
    if not missing:
        return
    hint = ""
    if roles["time"] in missing and roles["time"] == DEFAULT_TIME:
        hint = f" (the call times: {DEFAULT_TIME} as timestamps, or {HOURS_COLUMN} in hours)"
    raise ScenarioError(f"{WHAT} lacks columns {missing}{hint}", file=path, line=1)


def read_trace_file(
    config: TraceConfig,
    *,
    fault_classes: Sequence[str],
    segments: Sequence[str],
    start: date | None = None,
    keep: Sequence[str] = (),
    not_before_h: float | None = None,
    before_h: float | None = None,
    check: Callable[[Trace, RowError], None] | None = None,
) -> Trace:
    """Read and check every row of the trace ``config`` names (a CSV or a ``.parquet``).

    Times are timestamps (``config.time_format``, ISO 8601 by default) placed on the
    clock of day 0, the local midnight of ``start`` (default: the day of the earliest
    call); or hours since day 0, in a ``t_call_h`` column or with ``time_format: hours``.
    Fault classes and segments must be among the names given. ``keep``: other columns
    to return as they are written (:attr:`Trace.kept`), where the trace has them.
    ``not_before_h``: a call before this hour of day 0 is an error; ``before_h``: a call
    at or after this hour is. A bad cell is one
    :class:`~sim.errors.ScenarioError` naming the file, the line (a Parquet file's row)
    and the column. ``check``, when given, is called last with the trace and a function
    that raises that error for a row of the time column and a message.
    """
    path = config.file
    table, parquet = _table(path, config, keep)
    header = set(table.columns)
    roles = _column_names(config, header)
    _, in_hours = _time_column(config, header)
    with rows_not_lines(parquet):
        _missing(roles, header, path)
        # Every cell is read before anything is built, so that a bad row ends the run
        # before any work.
        time = roles["time"]
        t_call_h, local = _hours(table, time, path, config, None, required=True, in_hours=in_hours)
        if start is None and local is not None:
            start = local.min().date()  # day 0: the day of the earliest call
        day0 = None if start is None else pd.Timestamp(start)
        if local is not None and day0 is not None:
            t_call_h = _since(local, day0)
        if not_before_h is not None and (t_call_h < not_before_h).any():
            row = int(np.flatnonzero(t_call_h < not_before_h)[0])
            _raise_at(table, time, path, row, f"before hour {not_before_h:g} of day 0")
        if before_h is not None and (t_call_h >= before_h).any():
            row = int(np.flatnonzero(t_call_h >= before_h)[0])
            _raise_at(
                table, time, path, row, f"past hour {before_h:g} of day 0 ({before_h / 24:g} days)"
            )
        lat = number_column(table, roles["lat"], path, low=-90, high=90).to_numpy()
        lon = number_column(table, roles["lon"], path, low=-180, high=180).to_numpy()
        fault = segment = priority = ids = None
        if "fault" in roles:
            fault = _names(table, roles["fault"], path, list(fault_classes), "fault class")
        if "segment" in roles:
            segment = _names(table, roles["segment"], path, list(segments), "segment")
        if "priority" in roles:
            priority = _priorities(table, roles["priority"], path)
        if "id" in roles:
            ids = id_column(table, roles["id"], path).to_numpy(object)
        observed: dict[str, np.ndarray] = {}
        for role in OBSERVED:
            if role not in roles:
                continue
            column = roles[role]
            hours, _ = _hours(table, column, path, config, day0, required=False, in_hours=in_hours)
            with np.errstate(invalid="ignore"):
                early = hours < t_call_h
            if early.any():
                _raise_at(table, column, path, int(np.flatnonzero(early)[0]), "before the call")
            observed[role] = hours
    kept = {name: table[name].str.strip().to_numpy(object) for name in keep if name in header}
    trace = Trace(path, start, t_call_h, lat, lon, fault, segment, priority, ids, observed, kept)
    if check is not None:
        with rows_not_lines(parquet):
            check(trace, functools.partial(_raise_at, table, time, path))
    return trace


def _read(scenario: Scenario) -> Trace:
    config = scenario.demand.trace
    assert config is not None
    demand = scenario.demand
    return read_trace_file(
        config,
        fault_classes=[f.name for f in demand.fault_classes],
        segments=[s.name for s in demand.segments],
        start=config.start or scenario.horizon.start_date,
        keep=("replication",),
        check=functools.partial(_check_scenario_trace, scenario),
    )


def _check_scenario_trace(scenario: Scenario, trace: Trace, at_row: RowError) -> None:
    periods = set(trace.kept.get("replication", ()))
    if len(periods) > 1:
        # A run's calls.parquet holds one period per replication; replayed together
        # they would multiply the calls.
        raise ScenarioError(
            f"holds {len(periods)} replications of a run; a replayed trace is one observed "
            "period: keep the rows of one",
            file=trace.path,
            field="replication",
        )
    assert scenario.demand.trace is not None
    if scenario.demand.trace.bootstrap == "none":
        _check_horizon(trace, scenario, at_row)


def _check_horizon(trace: Trace, scenario: Scenario, at_row: RowError) -> None:
    """With ``outside_horizon: error``, a call before day 0 or past the horizon is an error."""
    horizon = scenario.horizon
    config = scenario.demand.trace
    assert config is not None
    inside = trace.in_horizon(horizon.hours)
    if inside.all():
        return
    if config.outside_horizon == "error":
        row = int(np.flatnonzero(~inside)[0])
        when = "before day 0" if trace.t_call_h[row] < 0 else "past the horizon"
        day0 = "" if trace.start is None else f" begins {trace.start} 00:00 and"
        at_row(
            row,
            f"{when} (day 0{day0} the horizon is {horizon.days:g} days; "
            f"outside_horizon: drop leaves such calls out)",
        )
    if not inside.any():
        raise ScenarioError(
            f"no call in the trace falls in the horizon ({len(trace):,} calls from hour "
            f"{np.min(trace.t_call_h):.1f} to {np.max(trace.t_call_h):.1f} of day 0; the "
            f"horizon is {horizon.days:g} days); check demand.trace.start or the dates",
            file=trace.path,
        )


def read_trace(scenario: Scenario) -> Trace:
    """The scenario's trace, read and checked once per process (the file's stat is the key)."""
    config = scenario.demand.trace
    if config is None:
        raise ValueError("the scenario has no demand.trace")
    try:
        stat = config.file.stat()
    except OSError:
        stat = None  # read_csv_table names the problem
    key = (
        config.model_dump_json(),
        scenario.horizon.model_dump_json(),
        tuple(f.name for f in scenario.demand.fault_classes),
        tuple(s.name for s in scenario.demand.segments),
        None if stat is None else (stat.st_mtime_ns, stat.st_size),
    )
    trace = _CACHE.get(key)
    if trace is None:
        trace = _read(scenario)
        while len(_CACHE) >= _CACHE_SIZE:
            del _CACHE[next(iter(_CACHE))]
        _CACHE[key] = trace
    return trace


def _days(t_call_h: np.ndarray) -> np.ndarray:
    day: np.ndarray = np.floor(t_call_h / HOURS_PER_DAY).astype(np.int64)
    return day


def resample_days(
    trace: Trace, horizon_h: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and time shifts (h) of a horizon made of trace days drawn with replacement.

    The days drawn from are every calendar day from the trace's first call to its last,
    days without a call included (they are observed days too). Day ``k`` of the horizon
    replays the calls of a drawn day at the same time of day.
    """
    day = _days(trace.t_call_h)
    first = int(day.min())
    pool = int(day.max()) - first + 1
    n_days = math.ceil(horizon_h / HOURS_PER_DAY)
    drawn = first + rng.integers(0, pool, size=n_days)
    order = np.argsort(day, kind="stable")
    bounds = np.searchsorted(day[order], np.arange(first, first + pool + 1))
    rows = []
    shifts = []
    for k, d in enumerate(drawn):
        chosen = order[bounds[d - first] : bounds[d - first + 1]]
        rows.append(chosen)
        shifts.append(np.full(len(chosen), float((k - d) * HOURS_PER_DAY)))
    row = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    shift = np.concatenate(shifts) if shifts else np.zeros(0)
    keep = trace.t_call_h[row] + shift < horizon_h  # a fractional last day is cut
    return row[keep], shift[keep]


def trace_calls(scenario: Scenario, replication: int) -> pd.DataFrame:
    """The calls of one replication: t_call_h, lat, lon, trace_row and fault, segment
    (names, None where the trace leaves them to be drawn) when the trace has them."""
    trace = read_trace(scenario)
    config = scenario.demand.trace
    assert config is not None
    horizon_h = scenario.horizon.hours
    if config.bootstrap == "days":
        rng = named_rng(scenario.seed, "trace_days", replication)
        rows, shift = resample_days(trace, horizon_h, rng)
    else:
        rows = np.flatnonzero(trace.in_horizon(horizon_h))
        shift = np.zeros(len(rows))
    calls = pd.DataFrame(
        {
            "t_call_h": trace.t_call_h[rows] + shift,
            "lat": trace.lat[rows],
            "lon": trace.lon[rows],
            "trace_row": rows.astype(np.int64),
        }
    )
    if trace.fault is not None:
        calls["fault"] = pd.Series(trace.fault[rows], dtype=object)
    if trace.segment is not None:
        calls["segment"] = pd.Series(trace.segment[rows], dtype=object)
    return calls


def trace_calls_per_day(scenario: Scenario) -> float:
    """Calls a day a replication of the scenario replays (for the work estimate)."""
    trace = read_trace(scenario)
    config = scenario.demand.trace
    assert config is not None
    if config.bootstrap == "days":
        day = _days(trace.t_call_h)
        return len(trace) / (int(day.max()) - int(day.min()) + 1)
    return float(trace.in_horizon(scenario.horizon.hours).sum()) / scenario.horizon.days


def describe_trace(scenario: Scenario) -> str:
    """One line on what a replication replays: calls kept, left out, or days resampled."""
    trace = read_trace(scenario)
    config = scenario.demand.trace
    assert config is not None
    name = trace.path.name
    if config.bootstrap == "days":
        day = _days(trace.t_call_h)
        pool = int(day.max()) - int(day.min()) + 1
        return f"{name}: {len(trace):,} calls over {pool} days, days resampled"
    inside = int(trace.in_horizon(scenario.horizon.hours).sum())
    outside = len(trace) - inside
    left_out = f", {outside:,} outside it left out" if outside else ""
    return f"{name}: {inside:,} calls in the horizon{left_out}"


def calls_off_land(scenario: Scenario) -> str | None:
    """A warning when calls of the trace lie outside every province outline, else None.

    A recorded call keeps its place (nothing moves it onto land), so one at sea or abroad
    (seeds/province_outlines.geojson; the outlines are simplified to a few km) is most
    likely a wrong coordinate: the warning counts them and names the first one's line.
    """
    from sim.model.outlines import read_outlines

    trace = read_trace(scenario)
    off = np.flatnonzero(read_outlines().locate(trace.lat, trace.lon) == "")
    if len(off) == 0:
        return None
    return (
        f"{trace.path.name}: {len(off):,} of {len(trace):,} calls lie outside every "
        f"province outline (at sea or abroad), the first on line {line_of(int(off[0]))}"
    )


def trace_columns(
    scenario: Scenario, trace_row: np.ndarray | None, t_call_h: np.ndarray
) -> dict[str, Any]:
    """What the call table keeps from the trace, by call: ``trace_row`` (the row of the
    file, 0 first), ``trace_id``, ``trace_priority`` and ``observed_answered_h``,
    ``observed_arrived_h``, ``observed_repaired_h`` on the run's clock (moved with the
    call when its day was resampled). Empty when the scenario replays no trace."""
    if scenario.demand.trace is None or trace_row is None:
        return {}
    trace = read_trace(scenario)
    rows = trace_row
    columns: dict[str, Any] = {"trace_row": rows}
    if trace.ids is not None:
        columns["trace_id"] = trace.ids[rows].astype(str)
    if trace.priority is not None:
        columns["trace_priority"] = pd.array(trace.priority[rows], dtype="Int64")
    shift = t_call_h - trace.t_call_h[rows]
    for role, hours in trace.observed_h.items():
        columns[f"observed_{role}_h"] = hours[rows] + shift
    return columns


def calls_as_trace(calls: pd.DataFrame, start: date) -> pd.DataFrame:
    """One replication's call table as a trace that ``demand.trace`` reads back.

    Columns time, lat, lon, fault, segment, answered, arrived, repaired: local times in
    ISO 8601 to the nanosecond, counted from local midnight of ``start`` (empty where the
    call has none: abandoned, never reached).
    """
    day0 = pd.Timestamp(start)

    def stamps(hours: pd.Series) -> pd.Series:
        ns = np.round(hours.to_numpy(float) * NS_PER_HOUR)
        times = pd.Series(day0 + pd.to_timedelta(ns, unit="ns"))
        return times.astype(str).where(times.notna(), "")

    trace = pd.DataFrame(
        {
            "time": stamps(calls["t_call_h"]),
            "lat": calls["lat"].to_numpy(float),
            "lon": calls["lon"].to_numpy(float),
            "fault": calls["fault"].astype(str).to_numpy(),
            "segment": calls["segment"].astype(str).to_numpy(),
        }
    )
    for role in OBSERVED:
        trace[role] = stamps(calls[f"{role}_h"]).to_numpy()
    return trace
