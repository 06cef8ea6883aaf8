"""The result store: every finished run of an experiment, one Parquet part each, resumable.

An output folder's ``store/`` holds::

    runs/<key>.parquet     one row per finished run: its point, policy, replication,
                           seed, every KPI, the hotline's queue area and its run time
    calls/<key>.parquet    the run's call table, when tables are kept
    units/<key>.parquet    the run's unit log, when tables are kept
    agents/<key>.parquet   the run's record of the hotline's agents on duty, when tables
                           are kept
    failed/<key>.json      a run that raised: its point, policy, replication, error and
                           the failing call where there is one
    manifest.json          the experiment: its runs (key, point, policy, replication,
                           status), the package version and the code digest
    unreadable/<kind>/...  parts found unreadable (cut short or empty), moved aside:
                           their runs are done again, and nothing is deleted

The key of a run is a hash of everything its numbers depend on (the resolved scenario
point, the policy, the replication and seed, the package version and code, the input
files): a run is reused only when none of them changed (see
:func:`sim.experiments.runs.executor.run_key`). Every file is written to a temporary name in
its folder and renamed into place, so a part is either whole or absent, whenever the
writer stops. Tables are written before the run's row (by the worker that made them),
the row last, by the process that drives the experiment: a row marks a finished run.

A part can still be found unreadable: cut short by a file system that lost a write
the rename had made visible (a power cut, a kill on some network file systems), or
emptied by hand. Such a part is moved under ``unreadable/`` (named in one warning line on
stderr) and treated as missing, so that its run is done again and every whole run kept.

Parquet parts are plain files: ``pandas.read_parquet(out / "store" / "runs")`` reads
every finished run at once.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.errors import OutputError, UserInputError

STORE_DIR = "store"
"""The store's folder inside an output folder."""

TABLE_KINDS = ("calls", "units", "agents", "relocations")

# Columns of a run's row besides its KPIs; a KPI may not take one of these names.
RUN_COLUMNS = (
    "key",
    "point",
    "policy",
    "replication",
    "seed",
    "hotline_queue_area_h",
    "elapsed_s",
)

MANIFEST_FORMAT = 1

UNREADABLE_DIR = "unreadable"
"""Where, inside the store, unreadable parts are moved (``unreadable/<kind>/<name>``)."""

# What reading a damaged part raises: pyarrow's errors (ArrowInvalid: magic bytes not
# found, for one cut short), and, for one that reads but holds no whole row or record,
# the errors of taking that apart (json's JSONDecodeError is a ValueError).
UNREADABLE_ERRORS = (pa.ArrowException, ValueError, LookupError, TypeError)


def _stderr_warning(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr, flush=True)


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Write ``path`` through ``write(temporary_path)`` in the same folder, then rename it.

    The temporary name starts with a dot and ends in ``.tmp``: readers skip such names,
    and :meth:`ResultStore.clean` removes the ones a killed writer left. A place that
    cannot be written is an :class:`OutputError` naming it (one line, exit code 2).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        write(Path(tmp))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class RunFailure:
    """A run that raised: where (point, policy, replication), what, and at which call."""

    key: str
    point: int
    policy: str
    replication: int
    error_type: str
    message: str
    call_id: int | None = None
    traceback: str = ""
    # The whole one-line message of a user error (a policy that raised), else "".
    headline: str = ""
    # The exception itself when the run raised in this process (never stored).
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    def record(self) -> dict[str, Any]:
        """What the store keeps of the failure (plain values)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "exception"}

    def describe(self, point_label: str = "") -> str:
        """One line: ``point 1 (network.vans.total=140), policy p, replication 0: E: msg``."""
        where = f"point {self.point}" + (f" ({point_label})" if point_label else "")
        call = f" at call {self.call_id}" if self.call_id is not None else ""
        text = f"{where}, policy {self.policy}, replication {self.replication}: "
        return (text + f"{self.error_type}: {self.message}{call}").replace("\n", " ")


@dataclass(frozen=True)
class StoredRun:
    """A finished run read back from the store: its run columns, KPIs and move-up drives
    (the last only when its tables were asked for)."""

    row: dict[str, Any]
    kpis: dict[str, float]
    relocations: pd.DataFrame | None = None


class ResultStore:
    """The ``store/`` folder of an output folder: finished runs, their tables, failures.

    ``warn`` is given the text of the one warning about parts set aside (by default
    printed on stderr as ``warning: ...``).
    """

    def __init__(self, root: str | Path, warn: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        self.warn = warn or _stderr_warning
        self._set_aside: list[tuple[Path, str]] = []

    @classmethod
    def in_folder(cls, out_dir: str | Path) -> ResultStore:
        """The store of output folder ``out_dir`` (``out_dir/store``)."""
        return cls(Path(out_dir) / STORE_DIR)

    # ------------------------------------------------------------------ paths

    def run_path(self, key: str) -> Path:
        return self.root / "runs" / f"{key}.parquet"

    def table_path(self, kind: str, key: str) -> Path:
        if kind not in TABLE_KINDS:
            raise ValueError(f"unknown table kind {kind!r}")
        return self.root / kind / f"{key}.parquet"

    def failure_path(self, key: str) -> Path:
        return self.root / "failed" / f"{key}.json"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    # ------------------------------------------------------------------ use by one command

    @contextmanager
    def locked(self) -> Iterator[ResultStore]:
        """Hold the store for one command; a second command on the same store is refused.

        The lock is an advisory ``flock`` on ``store/.lock``: the system drops it when its
        process ends, however it ends, so a killed command never leaves the store locked.
        Leftover temporary files of a killed writer are removed once the lock is held.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # no flock on this system: one command at a time, on trust
            self.clean()
            yield self
            return
        with open(self.root / ".lock", "a+b") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UserInputError(
                    "another command is using this result store; wait for it to end",
                    file=self.root,
                ) from None
            try:
                self.clean()
                yield self
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def clean(self) -> None:
        """Remove temporary files that a writer killed mid-write left behind."""
        if not self.root.is_dir():
            return
        for leftover in self.root.glob("*/.*.tmp"):
            leftover.unlink(missing_ok=True)
        for leftover in self.root.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)

    # ------------------------------------------------------------------ runs

    def has_run(self, key: str, *, tables: bool = False) -> bool:
        """Whether run ``key`` finished (and, with ``tables``, its tables are here too)."""
        if not self.run_path(key).is_file():
            return False
        return not tables or all(self.table_path(kind, key).is_file() for kind in TABLE_KINDS)

    def write_run(self, row: Mapping[str, Any], kpis: Mapping[str, float]) -> None:
        """Record a finished run: its ``RUN_COLUMNS`` and its KPIs, as one Parquet row."""
        clash = set(kpis) & set(RUN_COLUMNS)
        if clash:
            raise ValueError(f"KPI names clash with run columns: {sorted(clash)}")
        values = {name: [row[name]] for name in RUN_COLUMNS}
        values.update({name: [float(value)] for name, value in kpis.items()})
        table = pa.Table.from_pydict(values)
        key = str(row["key"])
        atomic_write(self.run_path(key), lambda p: pq.write_table(table, p))
        self.failure_path(key).unlink(missing_ok=True)  # an earlier failure is superseded

    def read_run(self, key: str) -> tuple[dict[str, Any], dict[str, float]]:
        """The run columns and the KPIs of a finished run."""
        # No Arrow thread pool in the driving process: its workers may be forked from it.
        record = pq.read_table(self.run_path(key), use_threads=False).to_pylist()[0]
        row = {name: record.pop(name) for name in RUN_COLUMNS}
        return row, {name: float(value) for name, value in record.items()}

    def reusable_run(self, key: str, *, tables: bool = False) -> StoredRun | None:
        """Run ``key`` as stored, if it finished and every part it needs reads; else None.

        With ``tables``, its tables must be here too, each with a whole Parquet footer
        (the move-up drives, small, are read in full). A part that does not read is set
        aside (:meth:`set_aside`): the run counts as not finished, to be done again.
        """
        if not self.has_run(key, tables=tables):
            return None
        path = self.run_path(key)
        try:
            row, kpis = self.read_run(key)
            relocations = None
            if tables:
                for kind in TABLE_KINDS:
                    path = self.table_path(kind, key)
                    if kind == "relocations":
                        relocations = pd.read_parquet(path)
                    else:
                        pq.read_metadata(path)  # the footer: a part cut short has none
        except UNREADABLE_ERRORS as exc:
            self.set_aside(path, exc)
            return None
        return StoredRun(row, kpis, relocations)

    def read_runs(self, keys: Sequence[str] | None = None) -> pd.DataFrame:
        """One row per finished run (all of them, or those of ``keys`` that finished);
        a part that does not read is set aside and left out."""
        if keys is None:
            paths = sorted((self.root / "runs").glob("[!.]*.parquet"))
        else:
            paths = [self.run_path(key) for key in keys if self.run_path(key).is_file()]
        frames = []
        for path in paths:
            try:
                frames.append(pd.read_parquet(path))
            except UNREADABLE_ERRORS as exc:
                self.set_aside(path, exc)
        self.warn_set_aside()
        if not frames:
            return pd.DataFrame(columns=list(RUN_COLUMNS))
        return pd.concat(frames, ignore_index=True)

    # ------------------------------------------------------------------ unreadable parts

    def set_aside(self, path: Path, exc: BaseException) -> Path:
        """Move the unreadable part ``path`` to ``unreadable/<kind>/<name>``; the new path.

        Nothing is deleted: a part set aside before under the same name keeps it, and
        this one takes a numbered name. :meth:`warn_set_aside` names what was moved.
        """
        folder = self.root / UNREADABLE_DIR / path.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / path.name
        number = 1
        while target.exists():
            target = folder / f"{path.name}.{number}"
            number += 1
        os.replace(path, target)
        reason = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        if len(reason) > 120:
            reason = reason[:117] + "..."
        self._set_aside.append((path, reason))
        return target

    def warn_set_aside(self) -> None:
        """One warning line naming the parts set aside since the last one, if any."""
        if not self._set_aside:
            return
        moved, self._set_aside = self._set_aside, []
        names = ", ".join(str(path.relative_to(self.root)) for path, _ in moved)
        aside = self.root / UNREADABLE_DIR
        if len(moved) == 1:
            text = (
                f"unreadable part {self.root / names} ({moved[0][1]}) moved to {aside}; "
                "its run is done again"
            )
        else:
            text = (
                f"{len(moved)} unreadable parts of {self.root} ({names}) moved to {aside}; "
                "their runs are done again"
            )
        self.warn(text)

    # ------------------------------------------------------------------ failures

    def write_failure(self, failure: RunFailure) -> None:
        text = json.dumps(failure.record(), indent=2, ensure_ascii=False)
        path = self.failure_path(failure.key)
        atomic_write(path, lambda p: p.write_text(text + "\n", encoding="utf-8"))

    def failures(self) -> list[RunFailure]:
        """Every failure recorded and not superseded by a finished run (a record that
        does not read is set aside)."""
        out = []
        for path in sorted((self.root / "failed").glob("[!.]*.json")):
            try:
                failure = RunFailure(**json.loads(path.read_text(encoding="utf-8")))
            except UNREADABLE_ERRORS as exc:
                self.set_aside(path, exc)
                continue
            if not self.run_path(failure.key).is_file():
                out.append(failure)
        self.warn_set_aside()
        return out

    # ------------------------------------------------------------------ manifest

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        payload = {"format": MANIFEST_FORMAT, **manifest}
        text = json.dumps(payload, indent=2, ensure_ascii=False, default=str)
        atomic_write(self.manifest_path, lambda p: p.write_text(text + "\n", encoding="utf-8"))

    def read_manifest(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        return result


def write_table(root: str | Path, kind: str, key: str, frame: pd.DataFrame) -> Path:
    """Write one run's table into the store at ``root`` (what a worker calls); its path."""
    path = ResultStore(root).table_path(kind, key)
    atomic_write(path, lambda p: frame.to_parquet(p, index=False))
    return path


def _widened(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every dictionary column's index as int32.

    pandas stores a categorical's codes in the narrowest integer that holds its
    categories, so two runs' parts of the same column can differ in index width.
    """
    fields = [
        field.with_type(pa.dictionary(pa.int32(), field.type.value_type))
        if pa.types.is_dictionary(field.type)
        else field
        for field in schema
    ]
    return pa.schema(fields, metadata=schema.metadata)


def concat_parts(parts: Sequence[Path], destination: Path) -> None:
    """One Parquet file of the rows of ``parts``, in order, holding one part at a time.

    Each part becomes one or more row groups of ``destination`` (written atomically), so
    the memory needed is that of the largest part, not of them all.
    """

    def write(path: Path) -> None:
        writer: pq.ParquetWriter | None = None
        try:
            for part in parts:
                table = pq.read_table(part)
                if writer is None:
                    schema = _widened(table.schema)
                    writer = pq.ParquetWriter(path, schema)
                writer.write_table(table.cast(schema))
                del table
            if writer is None:
                raise ValueError("no parts to concatenate")
        finally:
            if writer is not None:
                writer.close()

    atomic_write(destination, write)
