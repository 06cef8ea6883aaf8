"""The run folder: calls.parquet, units.parquet and summary.json, each written atomically.

Every file is written to a temporary name in the same folder and renamed into place,
so an interrupted run leaves either the old file or the new one, never half a file.
summary.json is written last: its presence marks a complete run folder.
"""

from __future__ import annotations

import json
import math
import os
import platform
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from sim.experiments.compare import Comparison
from sim.experiments.run import RunResult
from sim.experiments.store import concat_parts
from sim.experiments.sweep import SweepResult
from sim.model.reference import data_dir
from sim.model.scenario import file_sha256


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Write ``path`` through ``write(temporary_path)``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("rescue-sim", "simpy", "numpy", "scipy", "pandas", "pydantic"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out


def _finite(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def input_hashes(scenario_path: str | Path | None, result: RunResult) -> dict[str, str]:
    """SHA-256 of every file the run read: scenario, reference data, CSVs it names."""
    files: dict[str, Path] = {}
    if scenario_path is not None:
        files["scenario"] = Path(scenario_path)
    seeds = data_dir("seeds")
    files["seeds/prefectures.csv"] = seeds / "prefectures.csv"
    sc = result.scenario
    if sc.network.stations.csv is not None:
        files["network.stations.csv"] = sc.network.stations.csv
    if sc.demand.spatial.csv is not None:
        files["demand.spatial.csv"] = sc.demand.spatial.csv
    return {name: file_sha256(p) for name, p in files.items()}


def summary_dict(result: RunResult, scenario_path: str | Path | None = None) -> dict[str, Any]:
    summary = result.summary
    kpis = {
        name: {
            "mean": _finite(row["mean"]),
            "ci95_low": _finite(row["low"]),
            "ci95_high": _finite(row["high"]),
            "replications": int(row["n"]),
        }
        for name, row in summary.iterrows()
    }
    return {
        "scenario_name": result.scenario.name,
        "policy": result.policy,
        "seed": result.scenario.seed,
        "replications": len(result.replications),
        "kpis": kpis,
        "kpis_by_replication": json.loads(result.kpis_by_replication.to_json(orient="records")),
        "scenario": result.scenario.model_dump(mode="json", by_alias=True),
        "scenario_file": str(scenario_path) if scenario_path is not None else None,
        "input_sha256": input_hashes(scenario_path, result),
        "versions": _versions(),
    }


def _write_parquet(path: Path, frame: pd.DataFrame) -> None:
    atomic_write(path, lambda p: frame.to_parquet(p, index=False))


def write_run(
    result: RunResult, out_dir: str | Path, scenario_path: str | Path | None = None
) -> Path:
    """Write the run folder; returns its path."""
    out = Path(out_dir)
    for kind in ("calls", "units"):
        parts = [r.table_path(kind) for r in result.replications]
        stored = [part for part in parts if part is not None]
        if stored and len(stored) == len(parts):
            # Tables left in a result store: copied one replication at a time.
            concat_parts(stored, out / f"{kind}.parquet")
        else:
            _write_parquet(out / f"{kind}.parquet", getattr(result, kind))
    text = json.dumps(summary_dict(result, scenario_path), indent=2, ensure_ascii=False)
    atomic_write(out / "summary.json", lambda p: p.write_text(text + "\n", encoding="utf-8"))
    return out


def read_run(run_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The calls, units and summary of a run folder."""
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    return (
        pd.read_parquet(run_dir / "calls.parquet"),
        pd.read_parquet(run_dir / "units.parquet"),
        summary,
    )


def write_comparison(comparison: Comparison, out_dir: str | Path) -> Path:
    """comparison.csv (long table) and comparison.json (the same, with the scenario)."""
    out = Path(out_dir)
    table = comparison.table()
    atomic_write(out / "comparison.csv", lambda p: table.to_csv(p, index=False))
    payload = {
        "scenario": comparison.scenario.model_dump(mode="json", by_alias=True),
        "policies": comparison.policies,
        "reference": comparison.policies[0],
        "rows": json.loads(table.to_json(orient="records")),
        "versions": _versions(),
    }
    text = json.dumps(payload, indent=2, ensure_ascii=False)
    atomic_write(out / "comparison.json", lambda p: p.write_text(text + "\n", encoding="utf-8"))
    return out


def write_sweep(result: SweepResult, out_dir: str | Path) -> Path:
    """sweep.csv (one row per point and replication), sweep_summary.csv and sweep.json.

    sweep.json (the base scenario, the swept values and the summary) is written last:
    its presence marks a complete sweep folder.
    """
    out = Path(out_dir)
    rows = result.rows
    summary = result.summary
    counts = [len(r.replications) for r in result.results] or [0]
    atomic_write(out / "sweep.csv", lambda p: rows.to_csv(p, index=False))
    atomic_write(out / "sweep_summary.csv", lambda p: summary.to_csv(p, index=False))
    payload = {
        "base_scenario": result.base.model_dump(mode="json", by_alias=True),
        "parameters": {p.path: list(p.values) for p in result.parameters},
        "points": [point.values for point in result.points],
        # One number, or one per point when replications were added for precision.
        "replications": counts[0] if len(set(counts)) == 1 else counts,
        "summary": json.loads(summary.to_json(orient="records")),
        "versions": _versions(),
    }
    text = json.dumps(payload, indent=2, ensure_ascii=False)
    atomic_write(out / "sweep.json", lambda p: p.write_text(text + "\n", encoding="utf-8"))
    return out
