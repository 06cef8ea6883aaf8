"""Evaluating network designs: every design run on the same replications, with diagnostics.

:func:`evaluate_designs` is the one place where the optimiser turns designs into runs. A design
is a scenario whose stations come from a CSV (``network.stations.csv``); each runs the
same replication numbers, so that all designs answer the same calls (common random
numbers) and their KPIs can be compared replication by replication
(:func:`paired_interval`). Besides the KPIs it keeps, per station, what the search
needs to propose its next moves: jobs, waits for a van, late arrivals and busy hours.

It runs on :func:`sim.experiments.runs.run.run_jobs` (the local engine) and keeps
each design's result in a cache folder, so that a search run again resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis import paired
from sim.analysis.kpis import Interval, confidence_interval, van_busy_hours
from sim.experiments.runs.executor import Engine
from sim.experiments.runs.run import Job, ProgressFn, ReplicationResult, run_jobs
from sim.model.network import Network, build_network
from sim.model.scenario import Scenario


@dataclass
class Evaluation:
    """A design's runs: KPIs by replication, and what they show station by station.

    ``stations`` (one row per station of the design, in its CSV order): ``jobs``
    dispatched to it, ``waited`` for a van, ``late`` arrivals, ``late_waited`` (late
    after waiting for a van), ``busy_h`` of its vans; summed over replications after the
    warm-up, which last ``observed_h`` in all. ``late``: where each late arrival was
    (lat, lon) and whether it waited for a van.
    """

    key: str
    kpis: pd.DataFrame
    stations: pd.DataFrame
    late: pd.DataFrame
    observed_h: float

    def interval(self, kpi: str, level: float = 0.95) -> Interval:
        return confidence_interval(self.kpis[kpi].to_numpy(float), level)

    def to_json(self) -> dict[str, Any]:
        """Plain lists of Python floats: ``json`` writes them so that they read back exactly."""

        def columns(frame: pd.DataFrame) -> dict[str, list[Any]]:
            return {str(k): frame[k].tolist() for k in frame.columns}

        return {
            "key": self.key,
            "kpis": columns(self.kpis),
            "stations": columns(self.stations),
            "late": columns(self.late),
            "observed_h": self.observed_h,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Evaluation:
        def frame(part: dict[str, list[Any]]) -> pd.DataFrame:
            return pd.DataFrame(part)

        return cls(
            str(data["key"]),
            frame(data["kpis"]),
            frame(data["stations"]),
            frame(data["late"]),
            float(data["observed_h"]),
        )


def _evaluation_key(scenario: Scenario, replications: Sequence[int]) -> str:
    """What a design's runs depend on: the scenario, its stations file's bytes, replications."""
    data = scenario.model_dump(mode="json", by_alias=True)
    csv = scenario.network.stations.csv
    if csv is not None:
        data["network"]["stations"]["csv"] = hashlib.sha256(Path(csv).read_bytes()).hexdigest()
    text = json.dumps({"scenario": data, "replications": list(replications)}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def _diagnostics(
    scenario: Scenario, network: Network, calls: pd.DataFrame, units: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    warmup_h, horizon_h = scenario.horizon.warmup_h, scenario.horizon.hours
    c = calls[calls["t_call_h"] >= warmup_h]
    station = c["station"].to_numpy()
    dispatched = ~np.isnan(c["dispatched_h"].to_numpy()) & (station >= 0)
    assigned = c["assigned_h"].to_numpy()
    waited = dispatched & (np.isnan(assigned) | (assigned > c["dispatched_h"].to_numpy() + 1e-9))
    late = c["arrival_promise_met"].eq(False).fillna(False).to_numpy(bool)
    n = network.n_stations
    at = np.where(dispatched, station, 0)

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(at[mask], minlength=n).astype(float)

    busy = van_busy_hours(units, warmup_h, horizon_h) if len(units) else np.zeros(0)
    busy = np.concatenate([busy, np.zeros(max(0, network.n_vans - len(busy)))])[: network.n_vans]
    stations = pd.DataFrame(
        {
            "jobs": count(dispatched),
            "waited": count(waited),
            "late": count(dispatched & late),
            "late_waited": count(dispatched & late & waited),
            "busy_h": np.bincount(network.van_station, weights=busy, minlength=n),
        }
    )
    late_calls = pd.DataFrame(
        {
            "lat": c["lat"].to_numpy(float)[late],
            "lon": c["lon"].to_numpy(float)[late],
            "waited": waited[late],
        }
    )
    return stations, late_calls


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write a file under a temporary name, then rename it: never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def evaluate_designs(
    scenarios: Sequence[Scenario],
    replications: Sequence[int],
    *,
    workers: int = 1,
    progress: ProgressFn | None = None,
    cache_dir: Path | None = None,
    engine: Engine | None = None,
) -> list[Evaluation]:
    """Run each design scenario on the given replications; KPIs and station diagnostics.

    Every scenario runs the same replication numbers, so all designs answer the same
    calls (common random numbers). The replications of every design not yet evaluated
    share one pool of ``workers`` processes; the results are the same for any
    ``workers``. With ``cache_dir``, a design already evaluated there (same scenario,
    same stations file bytes, same replications) is read back instead of run again: an
    interrupted search resumes where it stopped. ``engine`` (entered by the caller)
    runs them instead of a local pool: a Dask cluster, say.
    """
    keys = [_evaluation_key(scenario, replications) for scenario in scenarios]
    found: dict[str, Evaluation] = {}
    for key in keys:
        cached = _read_cached(cache_dir, key)
        if cached is not None:
            found[key] = cached
    # Each design not found runs once, however often it is asked for.
    todo = list(
        dict((key, s) for key, s in zip(keys, scenarios, strict=True) if key not in found).items()
    )
    jobs: list[Job] = [(scenario, r, None) for _, scenario in todo for r in replications]
    results = run_jobs(jobs, workers=workers, progress=progress, engine=engine) if jobs else []
    n = len(replications)
    for k, (key, scenario) in enumerate(todo):
        evaluation = _evaluation(key, scenario, results[k * n : (k + 1) * n])
        if cache_dir is not None:
            _write_json(cache_dir / f"{key}.json", evaluation.to_json())
        found[key] = evaluation
    return [found[key] for key in keys]


def _read_cached(cache_dir: Path | None, key: str) -> Evaluation | None:
    path = cache_dir / f"{key}.json" if cache_dir is not None else None
    if path is None or not path.is_file():
        return None
    try:
        return Evaluation.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError):
        return None  # unreadable: run it again


def _evaluation(key: str, scenario: Scenario, results: Sequence[ReplicationResult]) -> Evaluation:
    """A design's KPIs by replication and its station diagnostics, summed over replications."""
    network = build_network(scenario)
    kpis = pd.DataFrame([{"replication": r.replication, **r.kpis} for r in results])
    parts = [_diagnostics(scenario, network, r.calls, r.units) for r in results]
    stations = sum((p[0] for p in parts[1:]), parts[0][0])
    late = pd.concat([p[1] for p in parts], ignore_index=True)
    observed_h = (scenario.horizon.hours - scenario.horizon.warmup_h) * len(results)
    return Evaluation(key, kpis, stations, late, observed_h)


def paired_interval(
    candidate: Evaluation, reference: Evaluation, kpi: str, level: float = 0.95
) -> Interval:
    """``candidate - reference`` of a KPI, paired replication by replication
    (:func:`sim.analysis.paired.paired_interval`)."""
    return paired.paired_interval(candidate.kpis, reference.kpis, kpi, level)


__all__ = ["Evaluation", "evaluate_designs", "paired_interval"]
