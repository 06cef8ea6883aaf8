"""Writing a travel matrix (``rescue-sim travel-matrix``): Parquet or CSV, by the file's suffix.

The file is claimed before any work (:class:`~sim.outputs.output_file.OutputFile`) and
written in one step: a run interrupted at any moment leaves the old file or the new one.
Floats are written exactly (Parquet as float64, CSV in their shortest round-trip form),
so that the matrix read back gives the very values written (docs/travel.md).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sim.errors import OutputError
from sim.model.csv_input import PARQUET_SUFFIXES, is_parquet
from sim.outputs.output_file import OutputFile


def check_matrix_name(path: Path) -> None:
    """Refuse a name that is not ``.parquet``/``.pq`` or ``.csv`` (the format is the suffix)."""
    if path.suffix.lower() not in (*PARQUET_SUFFIXES, ".csv"):
        raise OutputError("name a .parquet or .csv file", field="--out")


def write_travel_matrix(
    frame: pd.DataFrame, out: Path | OutputFile, *, overwrite: bool = False
) -> Path:
    """Write ``frame`` to ``out`` (``.parquet``/``.pq`` or ``.csv``) and return its path.

    ``out``: a file claimed by the caller, or a path claimed here (an existing file is
    replaced only with ``overwrite``).
    """
    if isinstance(out, OutputFile):
        return _write(frame, out)
    check_matrix_name(out)
    with OutputFile.claim(out, overwrite=overwrite) as claimed:
        return _write(frame, claimed)


def _write(frame: pd.DataFrame, out: OutputFile) -> Path:
    check_matrix_name(out.shown)
    if is_parquet(out.shown):
        return out.write(lambda tmp: frame.to_parquet(tmp, index=False))
    return out.write(lambda tmp: frame.to_csv(tmp, index=False))
