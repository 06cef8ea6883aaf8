"""Writing a travel matrix (``rescue-sim travel-matrix``): Parquet or CSV, by the file's suffix.

The file is written in one step (:func:`~sim.outputs.run_folder.atomic_write`): a run
interrupted at any moment leaves the old file or the new one. Floats are written
exactly (Parquet as float64, CSV in their shortest round-trip form), so that the matrix
read back gives the very values written (docs/travel.md).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sim.errors import OutputError
from sim.experiments.runs.store import atomic_write

PARQUET_SUFFIXES = (".parquet", ".pq")


def write_travel_matrix(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` to ``path`` (``.parquet``/``.pq`` or ``.csv``) and return the path."""
    suffix = path.suffix.lower()
    if suffix not in (*PARQUET_SUFFIXES, ".csv"):
        raise OutputError("name a .parquet or .csv file", field="--out")
    if path.is_dir():
        raise OutputError(f"{path} is a folder; name a file", field="--out")
    if suffix == ".csv":
        atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))
    else:
        atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
    return path
