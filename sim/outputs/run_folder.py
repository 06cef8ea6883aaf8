"""Run, sweep and comparison folders: what they hold, written as a unit and read verified.

A folder is claimed before the work starts and its files are written into a staging
folder that replaces the target in one step, with a manifest (see
:mod:`sim.outputs.output_folder`): an interrupted or killed run leaves the old folder or
the new one, never a mix. Readers check every file against the manifest and turn a
missing, truncated, corrupt or foreign file into one :class:`~sim.errors.CorruptFileError`
naming it.
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from sim.errors import CorruptFileError
from sim.experiments.runs.store import concat_parts
from sim.model.loading import file_sha256, named_files
from sim.model.reference import data_dir
from sim.outputs.output_folder import OutDir, VerifiedFolder, claimed_folder, open_folder

if TYPE_CHECKING:  # `plot` and `report` only read folders: the engine is not imported for them
    from sim.experiments.runs.compare import Comparison
    from sim.experiments.runs.run import RunResult
    from sim.experiments.runs.sweep import SweepResult

RUN_FILES = ("calls.parquet", "units.parquet", "agents.parquet", "summary.json")
# Written only by a run whose policy moved vans (move-up); a reader finds none otherwise.
RELOCATIONS_FILE = "relocations.parquet"
SWEEP_FILES = ("sweep.csv", "sweep_summary.csv", "sweep.json")
COMPARISON_FILES = ("comparison.csv", "comparison.json")

# What a reader needs of each table: a file without these columns is not one of ours.
CALLS_COLUMNS = ("replication", "call_id", "t_call_h", "final_state")
UNITS_COLUMNS = ("replication", "t_h", "van", "state")
AGENTS_COLUMNS = ("replication", "t_h", "agents_on_duty")
RELOCATIONS_COLUMNS = ("replication", "t_h", "van", "from_station", "to_station", "road_km")
SUMMARY_KEYS: dict[str, type] = {"kpis": dict, "scenario": dict}
SWEEP_SUMMARY_COLUMNS = ("point", "kpi", "mean", "low", "high")


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
    files.update(named_files(result.scenario))
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


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    text = json.dumps(payload, indent=2, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")


def write_run_files(
    result: RunResult, folder: Path, scenario_path: str | Path | None = None
) -> None:
    """calls, units, agents (and relocations, if any) .parquet and summary.json, into ``folder``.

    Tables left in a result store are copied one replication at a time, never held
    whole in memory.
    """
    for kind in ("calls", "units", "agents"):
        parts = [r.table_path(kind) for r in result.replications]
        stored = [part for part in parts if part is not None]
        if stored and len(stored) == len(parts):
            concat_parts(stored, folder / f"{kind}.parquet")
        else:
            getattr(result, kind).to_parquet(folder / f"{kind}.parquet", index=False)
    relocations = result.relocations  # small: one row per move-up drive
    if len(relocations):
        relocations.to_parquet(folder / RELOCATIONS_FILE, index=False)
    _write_json(folder / "summary.json", summary_dict(result, scenario_path))


def write_run(
    result: RunResult,
    out_dir: OutDir,
    scenario_path: str | Path | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write the run folder as a unit; returns its path.

    ``out_dir`` is a path, or an :class:`OutputFolder` claimed before the run (as the
    command line does, so that a bad place is found before any work). A folder that
    already holds files is refused unless ``overwrite``.
    """
    with claimed_folder(out_dir, overwrite) as folder:
        write_run_files(result, folder.staging, scenario_path)
        return folder.commit(kind="run", seed=result.scenario.seed)


def _corrupt(folder: VerifiedFolder, name: str, what: str) -> CorruptFileError:
    return CorruptFileError(what, file=folder.file(name))


def _read_table(folder: VerifiedFolder, name: str, columns: Sequence[str]) -> pd.DataFrame:
    """A Parquet (``.parquet``) or CSV table of the folder that holds ``columns``."""
    parquet = name.endswith(".parquet")
    kind = "Parquet" if parquet else "CSV"
    try:
        with folder.open(name) as handle:
            table = pd.read_parquet(handle) if parquet else pd.read_csv(handle)
    # pyarrow's errors are ValueError/OSError; UnicodeDecodeError is a ValueError.
    except (OSError, ValueError, TypeError, pd.errors.ParserError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _corrupt(folder, name, f"not a readable {kind} file: {first}") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise _corrupt(folder, name, f"not a rescue-sim table: no column {missing[0]!r}")
    return table


def _read_json(folder: VerifiedFolder, name: str, keys: dict[str, type]) -> dict[str, Any]:
    try:
        with folder.open(name) as handle:
            payload = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError included
        raise _corrupt(folder, name, f"not readable JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise _corrupt(folder, name, "not a rescue-sim file: not a JSON object")
    for key, kind in keys.items():
        if not isinstance(payload.get(key), kind):
            raise _corrupt(folder, name, f"not a rescue-sim file: no {key!r} {kind.__name__}")
    return payload


def read_run(run_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The calls, units and summary of a run folder, checked against its manifest."""
    with open_folder(run_dir, ("run",), RUN_FILES) as folder:
        summary = _read_json(folder, "summary.json", SUMMARY_KEYS)
        calls = _read_table(folder, "calls.parquet", CALLS_COLUMNS)
        units = _read_table(folder, "units.parquet", UNITS_COLUMNS)
    return calls, units, summary


def read_agents(run_dir: str | Path) -> pd.DataFrame:
    """The hotline's agents on duty over time (agents.parquet), checked against the manifest."""
    with open_folder(run_dir, ("run",), RUN_FILES) as folder:
        return _read_table(folder, "agents.parquet", AGENTS_COLUMNS)


def read_relocations(run_dir: str | Path) -> pd.DataFrame | None:
    """The move-up drives of a run folder (relocations.parquet), or None when it has none."""
    with open_folder(run_dir, ("run",), RUN_FILES) as folder:
        if RELOCATIONS_FILE not in folder.manifest["files"]:
            return None
        return _read_table(folder, RELOCATIONS_FILE, RELOCATIONS_COLUMNS)


def read_sweep_summary(sweep_dir: str | Path) -> pd.DataFrame:
    """sweep_summary.csv of a sweep folder, checked against its manifest."""
    with open_folder(sweep_dir, ("sweep",), SWEEP_FILES) as folder:
        return _read_table(folder, "sweep_summary.csv", SWEEP_SUMMARY_COLUMNS)


def folder_kind(path: str | Path) -> str | None:
    """``run``, ``sweep`` or ``comparison`` as the folder's manifest says; None if unreadable."""
    try:
        payload = json.loads((Path(path) / "manifest.json").read_text(encoding="utf-8"))
        kind = payload.get("kind") if isinstance(payload, dict) else None
    except (OSError, ValueError):
        return None
    return kind if isinstance(kind, str) else None


def write_comparison(
    comparison: Comparison,
    out_dir: OutDir,
    *,
    overwrite: bool = False,
) -> Path:
    """comparison.csv (long table) and comparison.json (the same, with the scenario)."""
    table = comparison.table()
    payload = {
        "scenario": comparison.scenario.model_dump(mode="json", by_alias=True),
        "policies": comparison.policies,
        "reference": comparison.policies[0],
        "rows": json.loads(table.to_json(orient="records")),
        "versions": _versions(),
    }
    with claimed_folder(out_dir, overwrite) as folder:
        table.to_csv(folder.staging / "comparison.csv", index=False)
        _write_json(folder.staging / "comparison.json", payload)
        return folder.commit(kind="comparison", seed=comparison.scenario.seed)


def write_sweep(
    result: SweepResult,
    out_dir: OutDir,
    *,
    overwrite: bool = False,
) -> Path:
    """sweep.csv (one row per point and replication), sweep_summary.csv and sweep.json.

    sweep.json holds the base scenario, the swept values and the summary.
    """
    summary = result.summary
    counts = [len(r.replications) for r in result.results] or [0]
    payload = {
        "base_scenario": result.base.model_dump(mode="json", by_alias=True),
        "parameters": {p.path: list(p.values) for p in result.parameters},
        "points": [point.values for point in result.points],
        # One number, or one per point when replications were added for precision.
        "replications": counts[0] if len(set(counts)) == 1 else counts,
        "summary": json.loads(summary.to_json(orient="records")),
        "versions": _versions(),
    }
    with claimed_folder(out_dir, overwrite) as folder:
        result.rows.to_csv(folder.staging / "sweep.csv", index=False)
        summary.to_csv(folder.staging / "sweep_summary.csv", index=False)
        _write_json(folder.staging / "sweep.json", payload)
        return folder.commit(kind="sweep", seed=result.base.seed)
