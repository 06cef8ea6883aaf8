"""How much work a run asks for (calls, memory, disk, time), and whether this machine can take it.

The cost of a call is measured on this build, not assumed: :func:`measure_costs` runs the
bundled one-province scenario at two horizons and takes the time per call, the memory a
replication in progress grows by per call (traced allocations, the slope between the two
horizons, so fixed costs drop out), the memory of the kept call and unit tables and their
size on disk. The result is cached per build (a hash of the package's source, Python and
machine) under ``~/.cache/rescue-sim`` (``RESCUE_SIM_CACHE`` to move it).

:func:`estimate_work` scales those costs by the expected calls of every replication;
:func:`check_work` refuses an estimate past this machine's limits with one
:class:`~sim.errors.WorkLimitError` naming the field that makes the work large. Limits:
half the memory available now (``RESCUE_SIM_MEMORY_LIMIT``, e.g. ``8G``), 24 hours
(``RESCUE_SIM_TIME_LIMIT``, e.g. ``90s``, ``2h``) and the free disk at the output folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import platform
import re
import shutil
import sys
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import psutil

from sim.errors import UserInputError, WorkLimitError
from sim.model.call_volume import expected_calls_per_day
from sim.model.scenario import Scenario

# The bundled scenario the costs are measured on, and its two horizons (days).
CALIBRATION_SCENARIO = "quick.yaml"
CALIBRATION_DAYS = (1.5, 6.0)
CALIBRATION_VERSION = 1

# When results are written, the tables exist about three times at the peak: as kept, as
# concatenated over replications, and as Arrow data on their way to Parquet.
WRITE_COPIES = 3.0
DEFAULT_TIME_LIMIT_S = 24 * 3600.0
MEMORY_SHARE = 0.5  # of the memory available when the run starts
DISK_SHARE = 0.9  # of the free disk at the output folder

# Sizes of the national scenario: the field that most exceeds its own is named as the cause.
_TYPICAL = {"horizon.days": 30.0, "calls_per_day": 2000.0, "replications": 5.0}


@dataclass(frozen=True)
class Calibration:
    """Costs of one call on this build, measured on this machine."""

    seconds_per_call: float
    model_bytes_per_call: float
    table_bytes_per_call: float
    disk_bytes_per_call: float
    process_bytes: float
    build: str


@dataclass(frozen=True)
class WorkEstimate:
    """The work of a set of replications, and what it costs here."""

    calls_per_replication: float  # the largest replication
    calls_total: float
    replications: int
    workers: int
    memory_bytes: float
    disk_bytes: float
    seconds: float


@dataclass(frozen=True)
class Limits:
    """What this machine can give a run."""

    memory_bytes: float
    memory_source: str
    seconds: float
    disk_bytes: float | None  # free space at the output folder; None when nothing is written


# --------------------------------------------------------------------------- calibration


def build_id() -> str:
    """A hash of this build: the package's source files, Python's version, the machine."""
    from sim.version import code_digest

    digest = hashlib.sha256(code_digest().encode())
    digest.update(f"{sys.version}|{platform.machine()}|{CALIBRATION_VERSION}".encode())
    return digest.hexdigest()[:16]


def _cache_file(build: str) -> Path:
    base = os.environ.get("RESCUE_SIM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rescue-sim"
    )
    return Path(base) / f"calibration-{build}.json"


def _measure(build: str) -> Calibration:
    from sim.experiments.runs.run import run_replication
    from sim.model.loading import load_scenario
    from sim.model.network import build_network
    from sim.model.reference import data_dir

    base = load_scenario(data_dir("scenarios") / CALIBRATION_SCENARIO)
    process_bytes = float(psutil.Process().memory_info().rss)
    peaks, counts, seconds = [], [], []
    tables = disk = 0.0
    for days in CALIBRATION_DAYS:
        scenario = base.with_overrides(horizon={"days": days, "warmup_days": 0.0}, replications=1)
        network = build_network(scenario)
        start = time.perf_counter()
        result = run_replication(scenario, 0, network=network)
        seconds.append(time.perf_counter() - start)
        counts.append(max(1, len(result.calls)))
        tables = float(
            result.calls.memory_usage(deep=True).sum() + result.units.memory_usage(deep=True).sum()
        )
        buffer = io.BytesIO()
        result.calls.to_parquet(buffer, index=False)
        result.units.to_parquet(buffer, index=False)
        disk = float(buffer.tell())
        del result
        tracemalloc.start()
        try:
            run_replication(scenario, 0, network=network)
            peaks.append(float(tracemalloc.get_traced_memory()[1]))
        finally:
            tracemalloc.stop()
    # Slopes between the two horizons: what one more call costs, fixed costs aside. The
    # time is taken whole (a slope of two short timings is too noisy on a busy machine).
    extra_calls = max(1, counts[1] - counts[0])
    table_bytes = tables / counts[1]
    # A replication ends by building its tables: it grows by at least their size per call.
    model = max((peaks[1] - peaks[0]) / extra_calls, table_bytes)
    return Calibration(
        seconds_per_call=seconds[1] / counts[1],
        model_bytes_per_call=model,
        table_bytes_per_call=table_bytes,
        disk_bytes_per_call=disk / counts[1],
        process_bytes=process_bytes,
        build=build,
    )


def is_calibrated() -> bool:
    """Whether this build's costs are measured already (else :func:`measure_costs` takes time)."""
    return measure_costs.cache_info().currsize > 0 or _cache_file(build_id()).is_file()


@cache
def measure_costs() -> Calibration:
    """This build's costs per call: from the cache, or measured now (a second or two)."""
    build = build_id()
    path = _cache_file(build)
    try:
        cached = Calibration(**json.loads(path.read_text(encoding="utf-8")))
        if cached.build == build:
            return cached
    except (OSError, ValueError, TypeError):
        pass  # absent, unreadable or from another version of this class: measure again
    measured = _measure(build)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(measured)), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: measure again next time
    return measured


# --------------------------------------------------------------------------- estimate


def estimate_work(
    runs: Sequence[tuple[Scenario, int]],
    *,
    workers: int = 1,
    keep_tables: bool = True,
    writes_tables: bool = False,
    calibration: Calibration | None = None,
) -> WorkEstimate:
    """The work of ``runs``, each a (scenario, replications), in ``workers`` processes.

    ``keep_tables``: every replication's call and unit tables stay in memory (run and
    compare); ``writes_tables``: they are written to Parquet too (``run --out``).
    """
    cost = calibration or measure_costs()
    per_replication = [expected_calls_per_day(s) * s.horizon.days for s, _ in runs]
    replications = sum(n for _, n in runs)
    calls_total = sum(c * n for c, (_, n) in zip(per_replication, runs, strict=True))
    largest = max(per_replication, default=0.0)
    parallel = max(1, min(workers, replications, os.cpu_count() or 1))
    in_flight = largest * cost.model_bytes_per_call * parallel
    processes = cost.process_bytes * (1 + (parallel if parallel > 1 else 0))
    kept = calls_total * cost.table_bytes_per_call if keep_tables else 0.0
    memory = processes + in_flight + kept * (WRITE_COPIES if writes_tables else 1.0)
    return WorkEstimate(
        calls_per_replication=largest,
        calls_total=calls_total,
        replications=replications,
        workers=parallel,
        memory_bytes=memory,
        disk_bytes=calls_total * cost.disk_bytes_per_call if writes_tables else 0.0,
        seconds=calls_total * cost.seconds_per_call / parallel,
    )


# --------------------------------------------------------------------------- limits

_UNITS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_size(text: str, name: str) -> float:
    """``8G``, ``500M``, ``1.5e9``: bytes."""
    match = re.fullmatch(r"\s*([0-9.eE+]+)\s*([kKmMgGtT]?)[bB]?\s*", text)
    try:
        value = float(match.group(1)) * _UNITS[match.group(2).lower()] if match else math.nan
    except ValueError:
        value = math.nan
    if not value > 0 or math.isinf(value):
        raise UserInputError(f"{text!r} is not a size (write 8G, 500M)", field=name)
    return value


def parse_duration(text: str, name: str) -> float:
    """``90s``, ``30m``, ``2h``, ``1d``, ``600``: seconds."""
    match = re.fullmatch(r"\s*([0-9.eE+]+)\s*([a-z]*)\s*", text.lower())
    try:
        ok = match is not None and match.group(2) in _TIME_UNITS
        value = float(match.group(1)) * _TIME_UNITS[match.group(2)] if ok and match else math.nan
    except ValueError:
        value = math.nan
    if not value > 0 or math.isinf(value):
        raise UserInputError(f"{text!r} is not a duration (write 90s, 30m, 2h)", field=name)
    return value


def machine_limits(out_dir: Path | None = None) -> Limits:
    """This machine's limits now: memory, time, and disk at ``out_dir`` (if written)."""
    env_memory = os.environ.get("RESCUE_SIM_MEMORY_LIMIT")
    if env_memory:
        memory = parse_size(env_memory, "RESCUE_SIM_MEMORY_LIMIT")
        source = "RESCUE_SIM_MEMORY_LIMIT"
    else:
        memory = psutil.virtual_memory().available * MEMORY_SHARE
        source = "half the memory available now"
    env_time = os.environ.get("RESCUE_SIM_TIME_LIMIT")
    seconds = (
        parse_duration(env_time, "RESCUE_SIM_TIME_LIMIT") if env_time else DEFAULT_TIME_LIMIT_S
    )
    disk = None
    if out_dir is not None:
        place = Path(os.path.abspath(out_dir))
        existing = next((p for p in (place, *place.parents) if p.exists()), None)
        if existing is not None:
            disk = shutil.disk_usage(existing).free * DISK_SHARE
    return Limits(memory, source, seconds, disk)


def _bytes(value: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value / 1e3:.0f} kB"


def _duration(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def describe(estimate: WorkEstimate) -> dict[str, str]:
    """The estimate as table rows: calls, memory, disk, time."""
    rows = {
        "calls (estimate)": f"{estimate.calls_total:,.0f} in {estimate.replications} "
        f"replication(s)",
        "memory (estimate)": _bytes(estimate.memory_bytes),
        "time (estimate)": f"{_duration(estimate.seconds)} with {estimate.workers} process(es)",
    }
    if estimate.disk_bytes:
        rows["disk (estimate)"] = _bytes(estimate.disk_bytes)
    return rows


def blame(scenario: Scenario, replications: int) -> str:
    """The field that makes the work large: the one furthest above the national scenario's."""
    demand = scenario.demand
    base = demand.mean_calls_per_day
    volume = "demand.calls_per_day" if demand.calls_per_day is not None else "demand.fleet"
    ratios = {
        "horizon.days": scenario.horizon.days / _TYPICAL["horizon.days"],
        volume: base / _TYPICAL["calls_per_day"],
        "replications": replications / _TYPICAL["replications"],
    }
    # A surge's extra calls, as a multiple of the base volume, weighed like the volume.
    extra = expected_calls_per_day(scenario) - base
    if scenario.surges and extra > base:
        k = max(range(len(scenario.surges)), key=lambda i: scenario.surges[i].demand_multiplier)
        ratios[f"surges[{k}].demand_multiplier"] = (base + extra) / _TYPICAL["calls_per_day"]
    return max(ratios, key=lambda name: ratios[name])


# The most points a design may have. Every point is a scenario (and a network) held in
# memory before the first run, some 40 kB each and 12 ms to make for quick.yaml here: 10,000
# points are 0.4 GB and two minutes before any run. --force does not lift it.
MAX_DESIGN_POINTS = 10_000


def check_design_points(
    points: int, field: str, *, file: str | Path | None = None, line: int | None = None
) -> None:
    """Refuse a design of more than :data:`MAX_DESIGN_POINTS` points, counted from its
    shape before any point is made (a larger one would fill memory while it is built)."""
    if points > MAX_DESIGN_POINTS:
        raise WorkLimitError(
            f"{points:,} points, more than the {MAX_DESIGN_POINTS:,} a design may have "
            "(each is held in memory before the first run; --force does not lift this)",
            file=file,
            line=line,
            field=field,
        )


def check_work(estimate: WorkEstimate, limits: Limits, field: str) -> None:
    """Raise :class:`WorkLimitError` naming ``field`` if the estimate exceeds a limit."""
    calls = (
        f"about {estimate.calls_total:,.0f} calls ({estimate.replications} replication(s) "
        f"of {estimate.calls_per_replication:,.0f})"
    )
    hint = "make the run smaller, or pass --force to run it anyway"
    if estimate.memory_bytes > limits.memory_bytes:
        raise WorkLimitError(
            f"{calls} need about {_bytes(estimate.memory_bytes)} of memory, more than the "
            f"{_bytes(limits.memory_bytes)} limit ({limits.memory_source}); {hint}",
            field=field,
        )
    if limits.disk_bytes is not None and estimate.disk_bytes > limits.disk_bytes:
        raise WorkLimitError(
            f"{calls} need about {_bytes(estimate.disk_bytes)} on disk, more than the "
            f"{_bytes(limits.disk_bytes)} free where the results go; {hint}",
            field=field,
        )
    if estimate.seconds > limits.seconds:
        raise WorkLimitError(
            f"{calls} take about {_duration(estimate.seconds)} here, more than the "
            f"{_duration(limits.seconds)} limit (RESCUE_SIM_TIME_LIMIT); {hint}",
            field=field,
        )
