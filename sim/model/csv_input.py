"""Reading a user's CSV (stations, demand points, call traces) with one-line errors.

Every mistake is a :class:`~sim.errors.ScenarioError` naming the file, the line as an
editor shows it (the header is line 1, so row k of the table is line k + 2) and the
column: not UTF-8, not CSV, too many rows, a missing column, an empty cell, a value out
of range, a repeated id. A table may also come from Parquet (:func:`read_parquet_table`,
cells as text as from a CSV); an error about it names the row, not a line
(:func:`rows_not_lines`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.errors import ScenarioError

if TYPE_CHECKING:  # imported where a CSV is read: decoding a scenario's text needs none
    import pandas as pd


def decode_text(raw: bytes, path: str | Path) -> str:
    """UTF-8 text of a file's bytes; anything else is one error naming line and column."""
    try:
        return raw.decode("utf-8-sig")  # a leading byte-order mark (Windows editors) is fine
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = raw[exc.start : exc.start + 1].hex()
        raise ScenarioError(
            f"not UTF-8 text: byte 0x{byte} at column {column}; save the file as UTF-8",
            file=path,
            line=line,
        ) from None


# A few hundred bytes a row at most: a file past this is not a table of stations.
MAX_CSV_BYTES = 200_000_000


def line_of(row: int) -> int:
    """The line in the file of row ``row`` of the table (line 1 is the header)."""
    return row + 2


def read_csv_table(path: Path, what: str, columns: set[str], max_rows: int) -> pd.DataFrame:
    """The rows of a CSV as text, with the ``columns`` it must have; blank lines are errors."""
    try:
        size = path.stat().st_size
        if size > MAX_CSV_BYTES:
            raise ScenarioError(f"{size:,} bytes is too large for {what}", file=path)
        text = decode_text(path.read_bytes(), path)
    except FileNotFoundError:
        raise ScenarioError(f"{what} not found", file=path) from None
    except IsADirectoryError:
        raise ScenarioError(f"a folder, not {what}", file=path) from None
    except OSError as exc:
        raise ScenarioError(f"cannot read {what}: {exc.strerror or exc}", file=path) from None
    if not text.strip():
        raise ScenarioError(f"{what} is empty; the first line names the columns", file=path)
    import pandas as pd

    try:
        # As text: a number is judged per column below, an id keeps its spelling ("007").
        table = pd.read_csv(
            io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=False
        )
    except (pd.errors.ParserError, ValueError) as exc:
        found = re.search(r"line (\d+)", str(exc))
        message = str(exc).split("\n")[0].removeprefix("Error tokenizing data. C error: ")
        line = int(found.group(1)) if found else None
        raise ScenarioError(f"not a valid CSV: {message}", file=path, line=line) from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = columns - set(table.columns)
    if missing:
        raise ScenarioError(f"{what} lacks columns {sorted(missing)}", file=path, line=1)
    if len(table.columns) != len(set(table.columns)):
        raise ScenarioError(f"{what} names a column twice", file=path, line=1)
    if len(table) == 0:
        raise ScenarioError(f"{what} has no rows", file=path, line=1)
    if len(table) > max_rows:
        raise ScenarioError(f"{len(table):,} rows; {what} may have at most {max_rows:,}", file=path)
    blank = (table == "").all(axis=1).to_numpy()
    if blank.any():
        row = int(np.flatnonzero(blank)[0])
        raise ScenarioError("empty line", file=path, line=line_of(row))
    return table


def range_checks(
    values: np.ndarray, low: float | None, high: float | None, whole: bool
) -> list[tuple[np.ndarray, str]]:
    """Where numbers fall outside [low, high] or are not whole (``whole``), and the words.

    A missing or infinite number is for the caller to check first: it fails none of these.
    """
    checks: list[tuple[np.ndarray, str]] = []
    with np.errstate(invalid="ignore"):
        if whole:
            checks.append((values != np.round(values), "must be a whole number"))
        if low is not None:
            checks.append((values < low, f"must be at least {low:g}"))
        if high is not None:
            checks.append((values > high, f"must be at most {high:g}"))
    return checks


def first_failure(checks: Sequence[tuple[np.ndarray, str]]) -> tuple[int, str] | None:
    """The first row failing any of ``checks`` and what is wrong there, None if none fails.

    Where a row fails several, the earliest check names the problem ("empty cell" rather
    than "not a number").
    """
    failing = [(int(np.flatnonzero(bad)[0]), k) for k, (bad, _) in enumerate(checks) if bad.any()]
    if not failing:
        return None
    row, k = min(failing)
    return row, checks[k][1]


PARQUET_SUFFIXES = (".parquet", ".pq")


def is_parquet(path: Path) -> bool:
    """Whether ``path`` is read as Parquet (by its suffix), else as CSV."""
    return path.suffix.lower() in PARQUET_SUFFIXES


def _parquet_error(exc: Exception, path: Path, what: str) -> ScenarioError:
    if isinstance(exc, FileNotFoundError):
        return ScenarioError(f"{what} not found", file=path)
    message = " ".join(str(exc).split()) or type(exc).__name__
    return ScenarioError(f"not a readable Parquet file: {message}", file=path)


def parquet_columns(path: Path, what: str) -> list[str]:
    """The column names of a Parquet file (nothing else is read)."""
    import pyarrow.parquet as pq

    try:
        return [str(name) for name in pq.read_schema(path).names]
    except Exception as exc:  # pyarrow raises many kinds for a file that is not Parquet
        raise _parquet_error(exc, path, what) from None


def read_parquet_table(
    path: Path, what: str, columns: Sequence[str], max_rows: int
) -> pd.DataFrame:
    """``columns`` of a Parquet file with every cell as text, as :func:`read_csv_table`
    gives a CSV's: a missing value is an empty cell, a float its shortest round-trip form."""
    import pandas as pd

    try:
        frame = pd.read_parquet(path, columns=list(columns))
    except Exception as exc:  # pyarrow raises many kinds for a file that is not Parquet
        raise _parquet_error(exc, path, what) from None
    if len(frame) == 0:
        raise ScenarioError(f"{what} has no rows", file=path)
    if len(frame) > max_rows:
        raise ScenarioError(f"{len(frame):,} rows; {what} may have at most {max_rows:,}", file=path)
    return pd.DataFrame(
        {c: frame[c].astype(str).where(frame[c].notna().to_numpy(), "") for c in columns}
    )


@contextmanager
def rows_not_lines(parquet: bool) -> Iterator[None]:
    """Inside, an error naming a line of a table read from Parquet names its row instead
    (``row 1`` is the first: a Parquet file has no lines to show in an editor)."""
    try:
        yield
    except ScenarioError as exc:
        if parquet and exc.line is not None:
            if exc.line > 1:
                exc.message = f"row {exc.line - 1}: {exc.message}"
            exc.line = None
        raise


def number_column(
    table: pd.DataFrame,
    column: str,
    path: Path,
    *,
    low: float | None = None,
    high: float | None = None,
    whole: bool = False,
) -> pd.Series:
    """A column as numbers within [low, high]; the first bad cell is one error with its line.

    The column is text as read from a CSV, or numbers already (a numeric Parquet column:
    a missing value is then NaN).
    """
    import pandas as pd

    if table[column].dtype.kind in "iuf":
        numbers = table[column].to_numpy(dtype=float)
        failure = first_failure(
            [
                (np.isnan(numbers), "missing value"),
                (np.isinf(numbers), "not a finite number"),
                *range_checks(numbers, low, high, whole),
            ]
        )
        if failure is not None:
            row, message = failure
            number = float(numbers[row])
            if not np.isnan(number):
                message = f"{message}: {number!r}"
            raise ScenarioError(message, file=path, line=line_of(row), field=column)
        return pd.Series(numbers, index=table.index)
    text = table[column].str.strip()
    values = pd.to_numeric(text, errors="coerce").astype(float)
    numbers = values.to_numpy()
    failure = first_failure(
        [
            ((text == "").to_numpy(), "empty cell"),
            (np.isnan(numbers), "not a number"),
            (np.isinf(numbers), "not a finite number"),
            *range_checks(numbers, low, high, whole),
        ]
    )
    if failure is not None:
        row, message = failure
        value = table[column].iat[row]
        raise ScenarioError(f"{message}: {value!r}", file=path, line=line_of(row), field=column)
    return values


def id_column(table: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """A column of ids: none empty, none repeated (the error names both lines)."""
    ids = table[column].str.strip()
    empty = (ids == "").to_numpy()
    if empty.any():
        row = int(np.flatnonzero(empty)[0])
        raise ScenarioError("empty id", file=path, line=line_of(row), field=column)
    repeated = ids.duplicated().to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        first = int(np.flatnonzero((ids == ids.iat[row]).to_numpy())[0])
        raise ScenarioError(
            f"id {ids.iat[row]!r} is repeated (first on line {line_of(first)})",
            file=path,
            line=line_of(row),
            field=column,
        )
    return ids
